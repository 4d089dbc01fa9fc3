package gemm

import (
	"math/rand/v2"
	"testing"
	"time"

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
	cpu0 := cpuTime()
	for b.Loop() {
		Sgemm(transA, transB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
	}
	reportCPU(b, cpu0, 2*float64(m)*float64(n)*float64(k))
}

// reportCPU reports GFLOP/s (wall clock) and, where the OS says, GFLOP per
// CPU-second: the kernel's efficiency, which other load on the machine
// disturbs much less than the wall-clock figure.
func reportCPU(b *testing.B, cpu0 time.Duration, flopsPerOp float64) {
	b.ReportMetric(flopsPerOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(flopsPerOp*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

func BenchmarkSgemm1024(b *testing.B) { benchSgemm(b, false, false, 1024, 1024, 1024) }

// BenchmarkSgemm1024Go is the pure-Go fallback on the same product.
func BenchmarkSgemm1024Go(b *testing.B) {
	saved := active
	active = goKernel
	defer func() { active = saved }()
	benchSgemm(b, false, false, 1024, 1024, 1024)
}

// The MNIST MLP 784-256-128-10 at batch 128, as the trainer calls it (W is
// out x in): forward z = x*W^T (NT), weight gradient dW = dY^T*x (TN), input
// gradient dX = dY*W (NN, not for the first layer).
var mlpShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{"fwd1_NT_128x256x784", false, true, 128, 256, 784},
	{"dW1_TN_256x784x128", true, false, 256, 784, 128},
	{"fwd2_NT_128x128x256", false, true, 128, 128, 256},
	{"dW2_TN_128x256x128", true, false, 128, 256, 128},
	{"dX2_NN_128x256x128", false, false, 128, 256, 128},
	{"fwd3_NT_128x10x128", false, true, 128, 10, 128},
	{"dW3_TN_10x128x128", true, false, 10, 128, 128},
	{"dX3_NN_128x128x10", false, false, 128, 128, 10},
}

func BenchmarkSgemmMLP(b *testing.B) {
	for _, s := range mlpShapes {
		b.Run(s.name, func(b *testing.B) { benchSgemm(b, s.transA, s.transB, s.m, s.n, s.k) })
	}
}

// BenchmarkSgemmMLPStep is one training step's worth of the products above,
// with every kernel.
func BenchmarkSgemmMLPStep(b *testing.B) {
	for _, kn := range allKernels() {
		b.Run(kn.name, func(b *testing.B) {
			saved := active
			active = kn
			defer func() { active = saved }()
			benchMLPStep(b)
		})
	}
}

func benchMLPStep(b *testing.B) {
	type op struct {
		ta, tb   bool
		m, n, k  int
		a, bb, c []float32
		lda, ldb int
	}
	r := rand.New(rand.NewPCG(1, 1))
	var ops []op
	flops := 0.0
	for _, s := range mlpShapes {
		o := op{ta: s.transA, tb: s.transB, m: s.m, n: s.n, k: s.k, lda: s.k, ldb: s.n}
		if s.transA {
			o.lda = s.m
		}
		if s.transB {
			o.ldb = s.k
		}
		o.a, o.bb, o.c = randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
		ops = append(ops, o)
		flops += 2 * float64(s.m*s.n*s.k)
	}
	cpu0 := cpuTime()
	for b.Loop() {
		for _, o := range ops {
			Sgemm(o.ta, o.tb, o.m, o.n, o.k, 1, o.a, o.lda, o.bb, o.ldb, 0, o.c, o.n)
		}
	}
	reportCPU(b, cpu0, flops)
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
	cpu0 := cpuTime()
	for b.Loop() {
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, ga, gb, 0, gc)
	}
	reportCPU(b, cpu0, 2*n*n*n)
}
