package gemm

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// benchSgemm times C = op(A)*op(B) for an m x n x k product and reports
// GFLOP/s (2*m*n*k flops per call).
func benchSgemm(b *testing.B, transA, transB bool, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 1))
	a := randSlice(r, m*k)
	bb := randSlice(r, k*n)
	c := make([]float32, m*n)
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	b.ResetTimer()
	for b.Loop() {
		Sgemm(transA, transB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkSgemm1024(b *testing.B) { benchSgemm(b, false, false, 1024, 1024, 1024) }

// BenchmarkSgemm1024Go is the pure-Go fallback on the same product.
func BenchmarkSgemm1024Go(b *testing.B) {
	saved := active
	active = goKernel
	defer func() { active = saved }()
	benchSgemm(b, false, false, 1024, 1024, 1024)
}

// The MNIST MLP 784-256-128-10 at batch 128: forward (NN), weight gradient
// (TN: X^T * dY) and input gradient (NT: dY * W^T) of its two big layers.
func BenchmarkSgemmMLP(b *testing.B) {
	for _, s := range []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"fwd1_128x256x784", false, false, 128, 256, 784},
		{"dW1_784x256x128", true, false, 784, 256, 128},
		{"fwd2_128x128x256", false, false, 128, 128, 256},
		{"dW2_256x128x128", true, false, 256, 128, 128},
		{"dX2_128x256x128", false, true, 128, 256, 128},
		{"fwd3_128x10x128", false, false, 128, 10, 128},
	} {
		b.Run(s.name, func(b *testing.B) { benchSgemm(b, s.transA, s.transB, s.m, s.n, s.k) })
	}
}

// BenchmarkGonumSgemm1024 is gonum's blas32 (its pure-Go implementation) on
// 1024^3, for comparison.
func BenchmarkGonumSgemm1024(b *testing.B) {
	const n = 1024
	r := rand.New(rand.NewPCG(1, 1))
	ga := blas32.General{Rows: n, Cols: n, Stride: n, Data: randSlice(r, n*n)}
	gb := blas32.General{Rows: n, Cols: n, Stride: n, Data: randSlice(r, n*n)}
	gc := blas32.General{Rows: n, Cols: n, Stride: n, Data: make([]float32, n*n)}
	b.ResetTimer()
	for b.Loop() {
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, ga, gb, 0, gc)
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
