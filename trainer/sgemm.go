package trainer

import (
	"runtime"
	"sync"
)

// sgemm is the GEMM the CPU backend calls. It has the signature of
// trainer/gemm.Sgemm (row-major, c = alpha*op(a)*op(b) + beta*c); until that
// package is used, it is the pure-Go goSgemm below.
var sgemm = goSgemm

// goSgemm is a simple, correct, parallel float32 GEMM: op(a) and op(b) are
// packed into plain row-major form, then each worker owns a band of rows of c
// and runs an i-p-j loop over it. Every element of c is summed in the same
// order whatever the number of workers, so results are reproducible.
func goSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if k == 0 || alpha == 0 {
		return
	}
	// Pack op(a) as m x k and op(b) as k x n, both dense.
	ap := a
	if transA {
		ap = make([]float32, m*k)
		for p := range k {
			for i := range m {
				ap[i*k+p] = a[p*lda+i]
			}
		}
		lda = k
	}
	bp := b
	if transB {
		bp = make([]float32, k*n)
		for j := range n {
			for p := range k {
				bp[p*n+j] = b[j*ldb+p]
			}
		}
		ldb = n
	}
	band := func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			ci := c[i*ldc : i*ldc+n]
			ai := ap[i*lda : i*lda+k]
			for p, av := range ai {
				if av == 0 {
					continue
				}
				axpy(alpha*av, bp[p*ldb:p*ldb+n], ci)
			}
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if workers > m {
		workers = m
	}
	if workers <= 1 || m*n*k < 1<<15 {
		band(0, m)
		return
	}
	var wg sync.WaitGroup
	per := (m + workers - 1) / workers
	for i0 := 0; i0 < m; i0 += per {
		wg.Go(func() { band(i0, min(i0+per, m)) })
	}
	wg.Wait()
}

// axpy does y += alpha*x, unrolled by four.
func axpy(alpha float32, x, y []float32) {
	n := len(y)
	x = x[:n]
	j := 0
	for ; j+4 <= n; j += 4 {
		y[j] += alpha * x[j]
		y[j+1] += alpha * x[j+1]
		y[j+2] += alpha * x[j+2]
		y[j+3] += alpha * x[j+3]
	}
	for ; j < n; j++ {
		y[j] += alpha * x[j]
	}
}
