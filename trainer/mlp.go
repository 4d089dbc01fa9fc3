package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Dense is a fully connected layer y = x*W^T + b. W is Out x In, the layout
// of torch.nn.Linear, so a saved model loads into PyTorch unchanged.
type Dense struct {
	W, B   *Tensor // parameters
	GW, GB *Tensor // their gradients, set by Backward
}

// MLP is a multi-layer perceptron: Dense layers with an activation and
// (in training) inverted dropout between them; the last layer is linear and
// produces logits.
type MLP struct {
	be      Backend
	Layers  []*Dense
	Act     Activation
	Dropout float32 // drop probability after each hidden activation

	// Per-batch buffers, reallocated when the batch size changes.
	inputs []*Tensor // inputs[i] is layer i's input (after dropout)
	hidden []*Tensor // hidden[i] is activation output of layer i (before dropout)
	masks  []*Tensor // dropout masks, values 0 or 1/(1-p)
	grads  []*Tensor // gradient buffers with the shape of hidden[i]
	logits *Tensor
	mask   []float32 // host scratch for masks
}

// NewMLP makes an MLP with the given layer sizes (input, hidden..., output),
// initialised from rng: He-uniform for ReLU, Glorot-uniform for sigmoid and
// tanh, biases zero.
func NewMLP(be Backend, sizes []int, act Activation, dropout float32, rng *rand.Rand) *MLP {
	m := &MLP{be: be, Act: act, Dropout: dropout}
	for i := 0; i+1 < len(sizes); i++ {
		in, out := sizes[i], sizes[i+1]
		limit := math.Sqrt(6 / float64(in))
		if act != ReLU {
			limit = math.Sqrt(6 / float64(in+out))
		}
		w := make([]float32, in*out)
		for j := range w {
			w[j] = float32((2*rng.Float64() - 1) * limit)
		}
		d := &Dense{W: be.New(out, in), B: be.New(1, out), GW: be.New(out, in), GB: be.New(1, out)}
		be.Upload(d.W, w)
		m.Layers = append(m.Layers, d)
	}
	return m
}

// Sizes returns the layer sizes: input, hidden..., output.
func (m *MLP) Sizes() []int {
	s := []int{m.Layers[0].W.Cols}
	for _, l := range m.Layers {
		s = append(s, l.W.Rows)
	}
	return s
}

// Params lists the parameter tensors and their gradients, in a fixed order:
// layer 0 weight, layer 0 bias, layer 1 weight, ...
func (m *MLP) Params() (params, grads []*Tensor) {
	for _, l := range m.Layers {
		params = append(params, l.W, l.B)
		grads = append(grads, l.GW, l.GB)
	}
	return params, grads
}

// ParamNames names Params for checkpoints: "layers.0.weight", "layers.0.bias", ...
func (m *MLP) ParamNames() []string {
	var names []string
	for i := range m.Layers {
		names = append(names, fmt.Sprintf("layers.%d.weight", i), fmt.Sprintf("layers.%d.bias", i))
	}
	return names
}

func (m *MLP) ensure(t *Tensor, rows, cols int) *Tensor {
	if t != nil && t.Rows == rows && t.Cols == cols {
		return t
	}
	return m.be.New(rows, cols)
}

// Forward runs x (batch x inputs) through the network and returns the logits
// (owned by m, valid until the next call). In training, dropout masks are
// drawn from rng.
func (m *MLP) Forward(x *Tensor, train bool, rng *rand.Rand) *Tensor {
	be, n, L := m.be, x.Rows, len(m.Layers)
	if len(m.inputs) != L {
		m.inputs = make([]*Tensor, L)
		m.hidden = make([]*Tensor, L)
		m.masks = make([]*Tensor, L)
		m.grads = make([]*Tensor, L)
	}
	m.inputs[0] = x
	for i, l := range m.Layers {
		out := l.W.Rows
		var z *Tensor
		if i == L-1 {
			m.logits = m.ensure(m.logits, n, out)
			z = m.logits
		} else {
			m.hidden[i] = m.ensure(m.hidden[i], n, out)
			z = m.hidden[i]
		}
		be.Gemm(false, true, 1, m.inputs[i], l.W, 0, z)
		be.AddRowVector(z, l.B)
		if i == L-1 {
			break
		}
		be.Activate(m.Act, z, z)
		next := z
		if train && m.Dropout > 0 {
			m.masks[i] = m.ensure(m.masks[i], n, out)
			if cap(m.mask) < n*out {
				m.mask = make([]float32, n*out)
			}
			mask, keep := m.mask[:n*out], 1/(1-m.Dropout)
			for j := range mask {
				if rng.Float32() < m.Dropout {
					mask[j] = 0
				} else {
					mask[j] = keep
				}
			}
			be.Upload(m.masks[i], mask)
			m.inputs[i+1] = m.ensure(m.inputs[i+1], n, out)
			if m.inputs[i+1] == z {
				m.inputs[i+1] = be.New(n, out)
			}
			be.Mul(m.inputs[i+1], z, m.masks[i])
			next = m.inputs[i+1]
		}
		m.inputs[i+1] = next
	}
	return m.logits
}

// Backward takes the loss gradient with respect to the logits of the last
// Forward (in training mode, or without dropout) and sets every layer's
// GW and GB.
func (m *MLP) Backward(dlogits *Tensor, train bool) {
	be, n := m.be, dlogits.Rows
	dy := dlogits
	for i := len(m.Layers) - 1; i >= 0; i-- {
		l := m.Layers[i]
		be.Gemm(true, false, 1, dy, m.inputs[i], 0, l.GW)
		be.SumRows(l.GB, dy)
		if i == 0 {
			break
		}
		// Gradient with respect to this layer's input, then back through
		// the previous layer's dropout and activation.
		in := l.W.Cols
		m.grads[i-1] = m.ensure(m.grads[i-1], n, in)
		dx := m.grads[i-1]
		be.Gemm(false, false, 1, dy, l.W, 0, dx)
		if train && m.Dropout > 0 {
			be.Mul(dx, dx, m.masks[i-1])
		}
		be.ActivateGrad(m.Act, dx, dx, m.hidden[i-1])
		dy = dx
	}
}
