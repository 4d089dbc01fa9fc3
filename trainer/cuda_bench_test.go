package trainer

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// BenchmarkGPUStepMNIST and BenchmarkGPUStepWide time training steps
// (upload of the batch, forward, loss, backward, Adam) on the CUDA backend
// and report samples/s; scripts/gpu-bench.sh runs them against PyTorch.
// JOULE_BENCH_PRECISION picks fp32 (default), tf32 or bf16 GEMM. Each run
// prints "gpu_bench_region NAME START_NS END_NS SAMPLES": the timed region
// in wall-clock time, for the script's NVML energy reading.
func BenchmarkGPUStepMNIST(b *testing.B) { benchGPUStep(b, "mnist", []int{784, 256, 128, 10}, 128) }

func BenchmarkGPUStepWide(b *testing.B) { benchGPUStep(b, "wide", []int{4096, 4096, 4096, 10}, 1024) }

func benchGPUStep(b *testing.B, name string, sizes []int, batch int) {
	be, err := openCUDA(nil, cmp.Or(os.Getenv("JOULE_BENCH_PRECISION"), "fp32"))
	if err != nil {
		b.Skipf("no usable CUDA GPU here: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	net := NewMLP(be, sizes, ReLU, 0, rng)
	params, grads := net.Params()
	opt := NewOptimizer(be, api.OptimizerSpec{Name: "adam", LR: 1e-3}, params)
	in, out := sizes[0], sizes[len(sizes)-1]
	// Two host batches, alternated, as a data loader would hand them over.
	var xs, ts [2][]float32
	for i := range 2 {
		xs[i], ts[i] = make([]float32, batch*in), make([]float32, batch*out)
		for j := range xs[i] {
			xs[i][j] = rng.Float32()
		}
		for r := range batch {
			ts[i][r*out+rng.IntN(out)] = 1
		}
	}
	x, t, dl := be.New(batch, in), be.New(batch, out), be.New(batch, out)
	step := func(i int) {
		be.Upload(x, xs[i%2])
		be.Upload(t, ts[i%2])
		logits := net.Forward(x, true, rng)
		be.Loss(SoftmaxCrossEntropy, logits, t, dl)
		net.Backward(dl, true)
		opt.Update(params, grads, 1e-3)
	}
	for i := range 5 { // warm-up: cuBLAS picks its kernels, buffers are allocated
		step(i)
	}
	if err := be.d.Synchronize(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		step(i)
		i++
	}
	if err := be.d.Synchronize(); err != nil {
		b.Fatal(err)
	}
	end := time.Now()
	b.ReportMetric(float64(batch*i)/b.Elapsed().Seconds(), "samples/s")
	fmt.Printf("gpu_bench_region %s %d %d %d\n", name, start.UnixNano(), end.UnixNano(), batch*i)
}
