package gemm

import (
	"fmt"
	"runtime"
	"sync"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices, where
// op(X) is X, or its transpose when transX is true. op(A) is m x k, op(B) is
// k x n and C is m x n; lda, ldb and ldc are the row strides (in elements) of
// a, b and c as stored.
//
// When beta is 0, C is overwritten and its old contents (NaN included) are
// never read. When alpha is 0 or k is 0, A and B are not read.
//
// Sgemm panics when a dimension is negative, a stride is shorter than its
// row, or a slice is too short for its matrix: these are programming errors
// of the caller, as in BLAS.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("a", ar, ac, a, lda)
	checkMatrix("b", br, bc, b, ldb)
	checkMatrix("c", m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	p := &problem{
		transA: transA, transB: transB,
		m: m, n: n, k: k,
		alpha: alpha, a: a, lda: lda,
		b: b, ldb: ldb,
		beta: beta, c: c, ldc: ldc,
		kern: active,
	}
	p.run()
}

// checkMatrix panics unless s can hold a rows x cols matrix with row stride ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("gemm: ld%s=%d is less than the row length %d", name, ld, max(1, cols)))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("gemm: len(%s)=%d, need %d for a %dx%d matrix with stride %d", name, len(s), need, rows, cols, ld))
	}
}

// scaleC sets C = beta*C; beta == 0 writes zeros without reading C.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// parallelMinFMA is the smallest product (m*n*k multiply-adds) worth a second
// goroutine: below it, starting and joining costs more than it saves.
const parallelMinFMA = 1 << 18

// problem is one call of Sgemm.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
	kern           *kernel
}

// run splits C into rectangles, one per worker, and computes them.
func (p *problem) run() {
	workers := 1
	if p.m*p.n*p.k >= parallelMinFMA {
		workers = runtime.GOMAXPROCS(0)
	}
	kn := p.kern
	tilesM := (p.m + kn.mr - 1) / kn.mr
	tilesN := (p.n + kn.nr - 1) / kn.nr
	// Grid of gm x gn workers: split the side with more tiles first, so each
	// worker gets whole tiles and the pieces stay close to square.
	gm, gn := 1, 1
	for gm*gn < workers {
		f := smallestFactor(workers / (gm * gn))
		if tilesM/gm >= tilesN/gn && tilesM/gm >= f {
			gm *= f
		} else if tilesN/gn >= f {
			gn *= f
		} else {
			break
		}
	}
	if gm*gn == 1 {
		p.rect(0, p.m, 0, p.n)
		return
	}
	var wg sync.WaitGroup
	for wi := 0; wi < gm; wi++ {
		m0, m1 := split(tilesM, gm, wi)
		m0, m1 = m0*kn.mr, min(m1*kn.mr, p.m)
		for wj := 0; wj < gn; wj++ {
			n0, n1 := split(tilesN, gn, wj)
			n0, n1 = n0*kn.nr, min(n1*kn.nr, p.n)
			if wi == gm-1 && wj == gn-1 {
				p.rect(m0, m1, n0, n1) // the caller's goroutine takes the last piece
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.rect(m0, m1, n0, n1)
			}()
		}
	}
	wg.Wait()
}

// split returns the i-th of parts near-equal ranges of [0, total).
func split(total, parts, i int) (lo, hi int) {
	q, r := total/parts, total%parts
	lo = i*q + min(i, r)
	hi = lo + q
	if i < r {
		hi++
	}
	return lo, hi
}

func smallestFactor(x int) int {
	for f := 2; f*f <= x; f++ {
		if x%f == 0 {
			return f
		}
	}
	return x
}

// buffers are one worker's pack areas, sized for its kernel's blocking.
type buffers struct {
	a, b []float32
	tile []float32
}

// rect computes rows [m0, m1) and columns [n0, n1) of C, blocked GotoBLAS style.
func (p *problem) rect(m0, m1, n0, n1 int) {
	kn := p.kern
	buf := kn.pool.Get().(*buffers)
	defer kn.pool.Put(buf)
	mr, nr := kn.mr, kn.nr
	for jc := n0; jc < n1; jc += kn.nc {
		nc := min(kn.nc, n1-jc)
		for pc := 0; pc < p.k; pc += kn.kc {
			kc := min(kn.kc, p.k-pc)
			beta := p.beta
			if pc > 0 {
				beta = 1
			}
			packB(buf.b, p.b, p.ldb, p.transB, pc, kc, jc, nc, nr, kn.asmPack)
			for ic := m0; ic < m1; ic += kn.mc {
				mc := min(kn.mc, m1-ic)
				packA(buf.a, p.a, p.lda, p.transA, ic, mc, pc, kc, mr, kn.asmPack)
				for jr := 0; jr < nc; jr += nr {
					bp := buf.b[jr*kc : jr*kc+kc*nr]
					w := min(nr, nc-jr)
					for ir := 0; ir < mc; ir += mr {
						ap := buf.a[ir*kc : ir*kc+kc*mr]
						h := min(mr, mc-ir)
						off := (ic+ir)*p.ldc + jc + jr
						if h == mr && w == nr {
							kn.fn(kc, ap, bp, p.c[off:], p.ldc, p.alpha, beta)
							continue
						}
						kn.fn(kc, ap, bp, buf.tile, nr, p.alpha, 0)
						mergeTile(p.c[off:], p.ldc, buf.tile, nr, h, w, beta)
					}
				}
			}
		}
	}
}

// mergeTile sets the h x w corner of C to tile + beta*C.
func mergeTile(c []float32, ldc int, tile []float32, ldt, h, w int, beta float32) {
	for i := 0; i < h; i++ {
		cr := c[i*ldc : i*ldc+w]
		tr := tile[i*ldt : i*ldt+w]
		switch beta {
		case 0:
			copy(cr, tr)
		case 1:
			for j, v := range tr {
				cr[j] += v
			}
		default:
			for j, v := range tr {
				cr[j] = v + beta*cr[j]
			}
		}
	}
}
