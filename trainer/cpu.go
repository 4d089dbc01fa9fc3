package trainer

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/joulehq/joule/trainer/gemm"
)

// sgemm is the GEMM the CPU backend calls; tests may swap it.
var sgemm = gemm.Sgemm

// CPU is the float32 CPU backend. GEMM runs parallel across cores
// (trainer/gemm: packed, cache-blocked, AVX2/AVX-512 kernels where the CPU has
// them, pure Go elsewhere);
// the other operations are memory-bound and run on one core.
type CPU struct{}

func (CPU) Name() string { return "cpu" }

func (CPU) New(rows, cols int) *Tensor {
	return &Tensor{Rows: rows, Cols: cols, data: make([]float32, rows*cols)}
}

func (CPU) Upload(t *Tensor, src []float32) { copy(t.data, src[:t.Len()]) }

func (CPU) Download(dst []float32, t *Tensor) { copy(dst[:t.Len()], t.data) }

func (CPU) Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor) {
	m, k := a.Rows, a.Cols
	if transA {
		m, k = k, m
	}
	kb, n := b.Rows, b.Cols
	if transB {
		kb, n = n, kb
	}
	if k != kb || c.Rows != m || c.Cols != n {
		panic(fmt.Sprintf("trainer: gemm shapes %dx%d (T=%v) * %dx%d (T=%v) -> %dx%d", a.Rows, a.Cols, transA, b.Rows, b.Cols, transB, c.Rows, c.Cols))
	}
	sgemm(transA, transB, m, n, k, alpha, a.data, a.Cols, b.data, b.Cols, beta, c.data, c.Cols)
}

func (CPU) AddRowVector(x, v *Tensor) {
	for i := range x.Rows {
		row := x.data[i*x.Cols : (i+1)*x.Cols]
		for j, b := range v.data[:x.Cols] {
			row[j] += b
		}
	}
}

func (CPU) SumRows(dst, x *Tensor) {
	d := dst.data[:x.Cols]
	clear(d)
	for i := range x.Rows {
		for j, v := range x.data[i*x.Cols : (i+1)*x.Cols] {
			d[j] += v
		}
	}
}

func (CPU) Mul(dst, a, b *Tensor) {
	bd := b.data[:len(a.data)]
	for i, v := range a.data {
		dst.data[i] = v * bd[i]
	}
}

func (CPU) Activate(f Activation, y, x *Tensor) {
	yd := y.data[:len(x.data)]
	switch f {
	case ReLU:
		gemm.Relu(yd, x.data)
	case Sigmoid:
		for i, v := range x.data {
			yd[i] = sigmoid32(v)
		}
	case Tanh:
		for i, v := range x.data {
			yd[i] = float32(math.Tanh(float64(v)))
		}
	}
}

func (CPU) ActivateGrad(f Activation, dx, dy, y *Tensor) {
	yd, dyd := y.data, dy.data[:len(y.data)]
	dxd := dx.data[:len(y.data)]
	switch f {
	case ReLU:
		gemm.ReluGrad(dxd, dyd, yd)
	case Sigmoid:
		for i, v := range yd {
			dxd[i] = dyd[i] * v * (1 - v)
		}
	case Tanh:
		for i, v := range yd {
			dxd[i] = dyd[i] * (1 - v*v)
		}
	}
}

func sigmoid32(x float32) float32 {
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return float32(e / (1 + e))
}

func (CPU) Loss(kind LossKind, logits, target, grad *Tensor) float64 {
	n, c := logits.Rows, logits.Cols
	if n == 0 {
		return 0
	}
	inv := 1 / float64(n)
	var sum float64
	switch kind {
	case SoftmaxCrossEntropy:
		for i := range n {
			z := logits.data[i*c : (i+1)*c]
			t := target.data[i*c : (i+1)*c]
			zmax := z[0]
			for _, v := range z {
				zmax = max(zmax, v)
			}
			var s float64
			for _, v := range z {
				s += math.Exp(float64(v - zmax))
			}
			logS := math.Log(s)
			for j, v := range z {
				logp := float64(v-zmax) - logS
				if t[j] != 0 {
					sum -= float64(t[j]) * logp
				}
				if grad != nil {
					grad.data[i*c+j] = float32((math.Exp(logp) - float64(t[j])) * inv)
				}
			}
		}
	case BCEWithLogits:
		for i, v := range logits.data {
			z, t := float64(v), float64(target.data[i])
			sum += max(z, 0) - z*t + math.Log1p(math.Exp(-math.Abs(z)))
			if grad != nil {
				grad.data[i] = float32((float64(sigmoid32(v)) - t) * inv / float64(c))
			}
		}
		sum /= float64(c)
	case MeanSquaredError:
		for i, v := range logits.data {
			d := float64(v) - float64(target.data[i])
			sum += d * d
			if grad != nil {
				grad.data[i] = float32(2 * d * inv / float64(c))
			}
		}
		sum /= float64(c)
	}
	return sum * inv
}

func (CPU) Output(kind LossKind, dst, logits *Tensor) {
	n, c := logits.Rows, logits.Cols
	switch kind {
	case SoftmaxCrossEntropy:
		for i := range n {
			z := logits.data[i*c : (i+1)*c]
			d := dst.data[i*c : (i+1)*c]
			zmax := z[0]
			for _, v := range z {
				zmax = max(zmax, v)
			}
			var s float64
			for j, v := range z {
				e := math.Exp(float64(v - zmax))
				d[j] = float32(e)
				s += e
			}
			for j := range d {
				d[j] = float32(float64(d[j]) / s)
			}
		}
	case BCEWithLogits:
		for i, v := range logits.data {
			dst.data[i] = sigmoid32(v)
		}
	case MeanSquaredError:
		copy(dst.data, logits.data)
	}
}

func (CPU) SGD(p, g, v *Tensor, lr, momentum, weightDecay float32) {
	parallelFor(len(p.data), func(lo, hi int) {
		pd, gd, vd := p.data[lo:hi], g.data[lo:hi], v.data[lo:hi]
		for i, w := range pd {
			grad := gd[i] + weightDecay*w
			vd[i] = momentum*vd[i] + grad
			pd[i] = w - lr*vd[i]
		}
	})
}

func (CPU) Adam(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay float32, step int) {
	// A vector kernel that gives the same bits as the plain loop.
	gemm.Adam(p.data, g.data, m.data, v.data, lr, beta1, beta2, eps, weightDecay, step)
}

// parallelFor splits [0, n) into one contiguous range per core when n is
// large enough to pay for the goroutines. Each index is handled by exactly
// one call, so results do not depend on the number of cores.
func parallelFor(n int, fn func(lo, hi int)) {
	const minPerWorker = 1 << 14
	workers := min(runtime.GOMAXPROCS(0), n/minPerWorker)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		wg.Go(func() { fn(lo, min(lo+per, n)) })
	}
	wg.Wait()
}
