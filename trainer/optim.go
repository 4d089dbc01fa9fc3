package trainer

import (
	"math"

	"github.com/joulehq/joule/api"
)

// Optimizer updates parameters from their gradients. Its state (moments,
// velocities, step count) is part of a checkpoint.
type Optimizer struct {
	be          Backend
	Name        string // sgd | adam
	Momentum    float32
	WeightDecay float32
	Beta1       float32
	Beta2       float32
	Eps         float32
	// Step counts the updates made, from 0.
	Step int
	// State holds one or two tensors per parameter: sgd's velocity, or
	// adam's first and second moments (m for all params, then v).
	State []*Tensor
}

// NewOptimizer makes the optimiser the spec names for params, with
// torch.optim's defaults for Adam (0.9, 0.999, 1e-8).
func NewOptimizer(be Backend, spec api.OptimizerSpec, params []*Tensor) *Optimizer {
	o := &Optimizer{be: be, Name: spec.Name, Momentum: float32(spec.Momentum), WeightDecay: float32(spec.WeightDecay),
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	copies := 1
	if o.Name == "adam" {
		copies = 2
	}
	for range copies {
		for _, p := range params {
			o.State = append(o.State, be.New(p.Rows, p.Cols))
		}
	}
	return o
}

// StateNames names State for checkpoints, given the parameter names.
func (o *Optimizer) StateNames(paramNames []string) []string {
	var names []string
	prefix := []string{"optim.momentum."}
	if o.Name == "adam" {
		prefix = []string{"optim.exp_avg.", "optim.exp_avg_sq."}
	}
	for _, p := range prefix {
		for _, n := range paramNames {
			names = append(names, p+n)
		}
	}
	return names
}

// Update applies one step with learning rate lr.
func (o *Optimizer) Update(params, grads []*Tensor, lr float64) {
	o.Step++
	n := len(params)
	for i, p := range params {
		if o.Name == "adam" {
			o.be.Adam(p, grads[i], o.State[i], o.State[n+i], float32(lr), o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.Step)
		} else {
			o.be.SGD(p, grads[i], o.State[i], float32(lr), o.Momentum, o.WeightDecay)
		}
	}
}

// LearningRate is the rate for epoch (from 0) under the spec's schedule:
// step multiplies by gamma every step_epochs epochs (torch's StepLR); cosine
// anneals from lr to 0 over the run (CosineAnnealingLR with T_max = epochs).
func LearningRate(spec api.OptimizerSpec, epoch, epochs int) float64 {
	switch spec.Schedule {
	case "step":
		return spec.LR * math.Pow(spec.Gamma, float64(epoch/spec.StepEpochs))
	case "cosine":
		return spec.LR * 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/float64(epochs)))
	}
	return spec.LR
}
