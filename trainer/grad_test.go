package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The worked example: one sigmoid neuron with x = [1, 2], w = [1, 2], b = 0
// computes sigmoid(1*1 + 2*2) = sigmoid(5) = 0.99331.
func TestSigmoidNeuron(t *testing.T) {
	be := CPU{}
	d := &Dense{W: be.New(1, 2), B: be.New(1, 1), GW: be.New(1, 2), GB: be.New(1, 1)}
	be.Upload(d.W, []float32{1, 2})
	x, y := be.New(1, 2), be.New(1, 1)
	be.Upload(x, []float32{1, 2})
	be.Gemm(false, true, 1, x, d.W, 0, y)
	be.AddRowVector(y, d.B)
	be.Activate(Sigmoid, y, y)
	if got := y.data[0]; math.Abs(float64(got)-0.99331) > 5e-6 {
		t.Errorf("sigmoid neuron: %.6f, want 0.99331", got)
	}
	// The same through the output path of a binary model.
	be.Upload(y, []float32{5})
	be.Output(BCEWithLogits, y, y)
	if got := y.data[0]; math.Abs(float64(got)-0.99331) > 5e-6 {
		t.Errorf("binary output for logit 5: %.6f, want 0.99331", got)
	}
}

// gradCheckNet builds a small network and data for a loss kind.
func gradCheckNet(act Activation, kind LossKind, dropout float32) (*MLP, *Tensor, *Tensor) {
	be := CPU{}
	rng := rand.New(rand.NewPCG(21, 22))
	out := 3
	if kind != SoftmaxCrossEntropy {
		out = 2
	}
	net := NewMLP(be, []int{4, 5, 6, out}, act, dropout, rng)
	// Non-zero biases so that every parameter matters.
	for _, l := range net.Layers {
		for i := range l.B.data {
			l.B.data[i] = float32(rng.NormFloat64() * 0.3)
		}
	}
	const n = 7
	x, t := be.New(n, 4), be.New(n, out)
	for i := range x.data {
		x.data[i] = float32(rng.NormFloat64())
	}
	for i := range n {
		switch kind {
		case SoftmaxCrossEntropy:
			t.data[i*out+rng.IntN(out)] = 1
		case BCEWithLogits:
			for j := range out {
				t.data[i*out+j] = float32(rng.IntN(2))
			}
		default:
			for j := range out {
				t.data[i*out+j] = float32(rng.NormFloat64())
			}
		}
	}
	return net, x, t
}

// TestGradients compares every parameter's backpropagated gradient with a
// central finite difference, for every activation, every loss and with
// dropout (the same masks on every evaluation).
func TestGradients(t *testing.T) {
	for _, act := range []Activation{ReLU, Sigmoid, Tanh} {
		for _, kind := range []LossKind{SoftmaxCrossEntropy, BCEWithLogits, MeanSquaredError} {
			for _, dropout := range []float32{0, 0.3} {
				t.Run(fmt.Sprintf("%s/loss%d/dropout%g", act, kind, dropout), func(t *testing.T) {
					checkGradients(t, act, kind, dropout)
				})
			}
		}
	}
}

func checkGradients(t *testing.T, act Activation, kind LossKind, dropout float32) {
	be := CPU{}
	net, x, target := gradCheckNet(act, kind, dropout)
	train := dropout > 0
	// pattern records which ReLUs are on, to skip finite differences that
	// straddle a kink (where the derivative is not defined).
	pattern := func() string {
		var b []byte
		for _, h := range net.hidden[:len(net.Layers)-1] {
			for _, v := range h.data {
				b = append(b, '0'+btoiByte(v > 0))
			}
		}
		return string(b)
	}
	lossAt := func(grad *Tensor) (float64, string) {
		logits := net.Forward(x, train, rand.New(rand.NewPCG(5, 6)))
		return be.Loss(kind, logits, target, grad), pattern()
	}
	dl := be.New(x.Rows, target.Cols)
	_, base := lossAt(dl)
	net.Backward(dl, train)
	params, grads := net.Params()
	names := net.ParamNames()
	h := float32(1e-2)
	if act == ReLU {
		h = 1e-3
	}
	checked, skipped := 0, 0
	for p, param := range params {
		analytic := append([]float32(nil), grads[p].data...)
		for i := range param.data {
			saved := param.data[i]
			param.data[i] = saved + h
			up, pu := lossAt(nil)
			param.data[i] = saved - h
			down, pd := lossAt(nil)
			param.data[i] = saved
			if act == ReLU && (pu != base || pd != base) {
				skipped++
				continue
			}
			checked++
			numeric := (up - down) / (2 * float64(h))
			if diff := math.Abs(numeric - float64(analytic[i])); diff > 2e-3+2e-2*math.Abs(numeric) {
				t.Errorf("%s[%d]: backprop %.6g, finite difference %.6g", names[p], i, analytic[i], numeric)
			}
		}
	}
	if skipped > checked/10 {
		t.Errorf("skipped %d of %d parameters at ReLU kinks; pick other test data", skipped, checked+skipped)
	}
}

func btoiByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// TestLossGradients checks each loss's gradient with respect to the logits
// by finite differences (in float64 through float32 logits).
func TestLossGradients(t *testing.T) {
	be := CPU{}
	for _, kind := range []LossKind{SoftmaxCrossEntropy, BCEWithLogits, MeanSquaredError} {
		_, _, target := gradCheckNet(ReLU, kind, 0)
		rng := rand.New(rand.NewPCG(1, 1))
		z := be.New(target.Rows, target.Cols)
		for i := range z.data {
			z.data[i] = float32(rng.NormFloat64() * 2)
		}
		grad := be.New(z.Rows, z.Cols)
		be.Loss(kind, z, target, grad)
		const h = 1e-2
		for i := range z.data {
			saved := z.data[i]
			z.data[i] = saved + h
			up := be.Loss(kind, z, target, nil)
			z.data[i] = saved - h
			down := be.Loss(kind, z, target, nil)
			z.data[i] = saved
			numeric := (up - down) / (2 * h)
			if math.Abs(numeric-float64(grad.data[i])) > 1e-4+1e-3*math.Abs(numeric) {
				t.Errorf("loss %d, logit %d: gradient %.6g, finite difference %.6g", kind, i, grad.data[i], numeric)
			}
		}
	}
}

// TestActivationGradients checks f' (written through y = f(x)) against a
// finite difference of f, away from ReLU's kink.
func TestActivationGradients(t *testing.T) {
	be := CPU{}
	xs := []float32{-3, -1.2, -0.4, 0.3, 0.9, 2.5}
	for _, act := range []Activation{ReLU, Sigmoid, Tanh} {
		x, y, dy, dx := be.New(1, len(xs)), be.New(1, len(xs)), be.New(1, len(xs)), be.New(1, len(xs))
		be.Upload(x, xs)
		for i := range dy.data {
			dy.data[i] = 1
		}
		be.Activate(act, y, x)
		be.ActivateGrad(act, dx, dy, y)
		f := func(v float32) float64 {
			a, b := be.New(1, 1), be.New(1, 1)
			a.data[0] = v
			be.Activate(act, b, a)
			return float64(b.data[0])
		}
		const h = 1e-2
		for i, v := range xs {
			numeric := (f(v+h) - f(v-h)) / (2 * h)
			if math.Abs(numeric-float64(dx.data[i])) > 1e-4 {
				t.Errorf("%s'(%g) = %g, finite difference %g", act, v, dx.data[i], numeric)
			}
		}
	}
}

// TestGemmShapes checks the backend's GEMM against a float64 triple loop in
// all four transpose cases.
func TestGemmShapes(t *testing.T) {
	be := CPU{}
	rng := rand.New(rand.NewPCG(2, 3))
	const m, n, k = 5, 7, 9
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a, b := be.New(m, k), be.New(k, n)
			if ta {
				a = be.New(k, m)
			}
			if tb {
				b = be.New(n, k)
			}
			for i := range a.data {
				a.data[i] = float32(rng.NormFloat64())
			}
			for i := range b.data {
				b.data[i] = float32(rng.NormFloat64())
			}
			c := be.New(m, n)
			for i := range c.data {
				c.data[i] = 1
			}
			be.Gemm(ta, tb, 2, a, b, 0.5, c)
			at := func(i, p int) float64 {
				if ta {
					return float64(a.data[p*m+i])
				}
				return float64(a.data[i*k+p])
			}
			bt := func(p, j int) float64 {
				if tb {
					return float64(b.data[j*k+p])
				}
				return float64(b.data[p*n+j])
			}
			for i := range m {
				for j := range n {
					want := 0.5
					for p := range k {
						want += 2 * at(i, p) * bt(p, j)
					}
					if got := float64(c.data[i*n+j]); math.Abs(got-want) > 1e-4 {
						t.Fatalf("transA=%v transB=%v: c[%d][%d] = %g, want %g", ta, tb, i, j, got, want)
					}
				}
			}
		}
	}
}
