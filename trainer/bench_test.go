package trainer

import (
	"math/rand/v2"
	"testing"

	"github.com/joulehq/joule/api"
)

// BenchmarkMNISTStep times one training step (forward, loss, backward,
// Adam) of the MNIST MLP 784-256-128-10 at batch 128 on random data, and
// reports samples/s.
func BenchmarkMNISTStep(b *testing.B) {
	be := CPU{}
	rng := rand.New(rand.NewPCG(1, 1))
	net := NewMLP(be, []int{784, 256, 128, 10}, ReLU, 0, rng)
	params, grads := net.Params()
	opt := NewOptimizer(be, api.OptimizerSpec{Name: "adam", LR: 1e-3}, params)
	const batch = 128
	x, t, dl := be.New(batch, 784), be.New(batch, 10), be.New(batch, 10)
	for i := range x.data {
		x.data[i] = rng.Float32()
	}
	for i := range batch {
		t.data[i*10+rng.IntN(10)] = 1
	}
	b.ResetTimer()
	for b.Loop() {
		logits := net.Forward(x, true, rng)
		be.Loss(SoftmaxCrossEntropy, logits, t, dl)
		net.Backward(dl, true)
		opt.Update(params, grads, 1e-3)
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
