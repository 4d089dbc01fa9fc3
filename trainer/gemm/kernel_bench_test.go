package gemm

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkKernel times each micro-kernel alone on panels that stay in L1:
// the ceiling for Sgemm on one core.
func BenchmarkKernel(b *testing.B) {
	for _, kn := range allKernels() {
		b.Run(kn.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			kc := kn.kc
			a := randSlice(r, kn.mr*kc)
			bp := randSlice(r, kn.nr*kc)
			c := make([]float32, kn.mr*kn.nr)
			for b.Loop() {
				kn.fn(kc, a, bp, c, kn.nr, 1, 1)
			}
			b.ReportMetric(2*float64(kn.mr*kn.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm1024Kernels runs 1024^3 with every kernel, one core and all.
func BenchmarkSgemm1024Kernels(b *testing.B) {
	for _, kn := range allKernels() {
		b.Run(kn.name, func(b *testing.B) {
			saved := active
			active = kn
			defer func() { active = saved }()
			benchSgemm(b, false, false, 1024, 1024, 1024)
		})
	}
}
