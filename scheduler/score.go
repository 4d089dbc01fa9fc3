package scheduler

import (
	"math"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// ScoreInput is what a scorer knows about one candidate node for one job.
// Scorers are pure functions of it, each returning a score in [0, 1]
// (higher is better), so each is a small table-tested unit.
type ScoreInput struct {
	// Need is the GPUs the job takes on this node; Free and Total are the
	// node's free and installed GPUs before placing it; Busy = Total-Free.
	Need, Free, Total int
	// Ord is the node's position by name among Nodes nodes.
	Ord, Nodes int
	// Power is the node's power state (api.PowerOn, PowerSuspended,
	// PowerResuming).
	Power string
	// GPU is the node's GPU model; NodePower its non-GPU power.
	GPU       power.Model
	NodePower power.NodePower
	// Estimate is the job's expected runtime on an H100-class GPU.
	Estimate time.Duration
	// IdleTimeout is how long an empty node stays awake before it is
	// suspended; 0 means idle nodes stay on.
	IdleTimeout time.Duration
	// IdealJ is the lowest marginal energy any awake node of any model
	// present could run the job with (the energy scorer's reference).
	IdealJ float64
}

type scorerFunc func(ScoreInput) float64

var scorerFuncs = map[string]scorerFunc{
	ScoreBinPack:  BinPackScore,
	ScoreFirstFit: FirstFitScore,
	ScoreEnergy:   EnergyScore,
}

// BinPackScore is best fit: 1 / (1 + GPUs left free after placing), so a
// node the job fills exactly scores 1 and whole nodes stay free for large
// jobs. It lies in (0, 1].
func BinPackScore(in ScoreInput) float64 {
	left := in.Free - in.Need
	if left < 0 {
		return 0
	}
	return 1 / float64(1+left)
}

// FirstFitScore prefers the first node by name: 1 - Ord/Nodes, in (0, 1].
// Alone it is first fit, the baseline; with a small weight it breaks ties
// deterministically.
func FirstFitScore(in ScoreInput) float64 {
	if in.Nodes <= 0 {
		return 0
	}
	return 1 - float64(in.Ord)/float64(in.Nodes)
}

// EnergyScore is IdealJ / MarginalEnergyJ: 1 for the node where the job adds
// the least energy to the cluster, lower where it adds more (a suspended
// node that must wake, a GPU model with less work per joule, an empty node
// that could otherwise be suspended). It lies in [0, 1].
func EnergyScore(in ScoreInput) float64 {
	m := MarginalEnergyJ(in)
	if !(m > 0) || !(in.IdealJ > 0) {
		return 1
	}
	return math.Min(in.IdealJ/m, 1)
}

// MarginalEnergyJ is the energy the cluster spends because the job runs on
// this node rather than nowhere:
//
//   - the job's GPUs above their idle draw (power.Model.DrawW at full
//     utilisation and the default limit, minus IdleW) for its runtime on
//     this model (Estimate / RelSpeed);
//   - the node baseline's rise with load (NodePower.BaselineW);
//   - on a suspended node, the wake-up (NodePower.WakeEnergyJ) and the
//     node's whole idle draw for the runtime, since it stays awake for it;
//   - on an awake node holding nothing, when idle nodes get suspended, its
//     idle draw for the part of the runtime past the idle timeout, which it
//     would otherwise have spent suspended.
func MarginalEnergyJ(in ScoreInput) float64 {
	m, p := in.GPU, in.NodePower
	speed := m.RelSpeed
	if !(speed > 0) {
		speed = 1
	}
	t := in.Estimate.Seconds() / speed
	gpuW := float64(in.Need) * (m.DrawW(1, m.DefaultLimitW) - m.IdleW)
	baseW := p.BaselineW(in.Total-in.Free+in.Need, in.Total) - p.BaselineW(in.Total-in.Free, in.Total)
	e := (gpuW + baseW) * t
	idleNodeW := p.IdleW + float64(in.Total)*m.IdleW - p.SuspendedW
	switch {
	case in.Power == api.PowerSuspended:
		e += p.WakeEnergyJ(m, in.Total) + idleNodeW*t
	case in.Free == in.Total && in.IdleTimeout > 0:
		e += idleNodeW * math.Max(0, t-in.IdleTimeout.Seconds())
	}
	return e
}
