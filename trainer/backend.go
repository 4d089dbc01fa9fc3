package trainer

import "github.com/joulehq/joule/trainer/internal/cuda"

// Tensor is a row-major float32 matrix owned by a Backend. Layers, losses and
// optimisers only pass tensors to Backend methods; host code reads and writes
// them through Backend.Upload and Backend.Download. The CPU backend keeps
// the values in data, the CUDA backend (cuda.go) in dev.
type Tensor struct {
	Rows, Cols int
	data       []float32
	dev        *cuda.Buffer
}

// Len is the number of elements.
func (t *Tensor) Len() int { return t.Rows * t.Cols }

// Activation is a hidden layer's nonlinearity.
type Activation int

const (
	ReLU Activation = iota
	Sigmoid
	Tanh
)

func (a Activation) String() string {
	switch a {
	case ReLU:
		return "relu"
	case Sigmoid:
		return "sigmoid"
	case Tanh:
		return "tanh"
	}
	return "unknown"
}

// LossKind is the output layer's loss, which follows from the task.
type LossKind int

const (
	SoftmaxCrossEntropy LossKind = iota // multiclass: targets are one-hot rows
	BCEWithLogits                       // binary: targets are 0 or 1
	MeanSquaredError                    // regression
)

// Backend is the small set of tensor operations the trainer needs. Every
// method works on tensors made by the same backend. Results must not depend
// on the number of threads, so that a seed gives the same run everywhere.
type Backend interface {
	// Name is the device as metrics.json reports it, e.g. "cpu".
	Name() string
	// New returns a zeroed rows x cols tensor.
	New(rows, cols int) *Tensor
	// Upload copies src (row-major, t.Len() values) into t.
	Upload(t *Tensor, src []float32)
	// Download copies t into dst (t.Len() values).
	Download(dst []float32, t *Tensor)

	// Gemm computes c = alpha*op(a)*op(b) + beta*c, op transposing when asked.
	Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor)
	// AddRowVector adds the 1 x Cols vector v to every row of x.
	AddRowVector(x, v *Tensor)
	// SumRows sets dst (1 x Cols) to the column sums of x.
	SumRows(dst, x *Tensor)
	// Mul sets dst to the elementwise product of a and b.
	Mul(dst, a, b *Tensor)

	// Activate sets y = f(x); y may be x.
	Activate(f Activation, y, x *Tensor)
	// ActivateGrad sets dx = dy * f'(x), written through the output y = f(x).
	ActivateGrad(f Activation, dx, dy, y *Tensor)

	// Loss returns the mean loss of logits against target over the rows and,
	// if grad is not nil, sets grad to its gradient with respect to logits.
	Loss(kind LossKind, logits, target, grad *Tensor) float64
	// Output turns logits into predictions: softmax probabilities,
	// sigmoid probabilities or the values themselves; dst may be logits.
	Output(kind LossKind, dst, logits *Tensor)

	// SGD does p -= lr*v after v = momentum*v + g + weightDecay*p.
	SGD(p, g, v *Tensor, lr, momentum, weightDecay float32)
	// Adam does one bias-corrected Adam step (step counts from 1) with L2
	// weight decay added to the gradient, as torch.optim.Adam does.
	Adam(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay float32, step int)
}
