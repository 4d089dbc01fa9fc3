package power

import (
	"math"
	"slices"

	"github.com/joulehq/joule/api"
)

// DefaultMaxSlowdown is how much slower than uncapped a balanced job may run
// at its operating point: 10% more time.
const DefaultMaxSlowdown = 0.10

// allocStepW is the smallest water-filling step: limits come down at least
// this many watts at a time (the last step only as far as needed).
const allocStepW = 5.0

// AllocGPU is one GPU as the allocator sees it.
type AllocGPU struct {
	Node  string
	Index int
	// MinLimitW and MaxLimitW are the GPU's NVML constraints.
	MinLimitW, MaxLimitW float64
	// IdleW is what the GPU draws holding no job.
	IdleW float64
	// Job is the id of the job holding the GPU, "" if idle.
	Job string
}

// AllocJob is a running job's power behaviour.
type AllocJob struct {
	// Curve is its throughput-versus-limit curve (profiled, or the model's).
	Curve JobCurve
	// Policy is api.PolicyPerformance, PolicyBalanced or PolicyEfficient.
	Policy string
	// Profiling: the agent is stepping its limits down from the one
	// allocated, so it gets the maximum limit as its operating point.
	Profiling bool
}

// AllocInput is everything one allocation decision depends on.
type AllocInput struct {
	GPUs []AllocGPU
	Jobs map[string]AllocJob
	// BudgetW bounds the sum of busy GPUs' limits plus idle GPUs' draw
	// (0: no budget); NodeMaxW bounds the same sum on each node (0: none).
	BudgetW, NodeMaxW float64
	// MaxSlowdown is the balanced policy's allowance (0: DefaultMaxSlowdown).
	MaxSlowdown float64
}

// Allocation is a limit for every GPU.
type Allocation struct {
	// LimitsW is the limit per node and GPU index.
	LimitsW map[string]map[int]float64
	// JobLimitW is each job's limit (all its GPUs get the same one) and
	// JobTargetW its operating point without budget pressure.
	JobLimitW, JobTargetW map[string]float64
	// JobRel is each job's throughput at its limit relative to its
	// throughput at its operating point (1: not slowed by the budget).
	JobRel map[string]float64
	// DrawW is the sum of busy GPUs' limits plus idle GPUs' draw: what the
	// GPUs can draw at most under these limits.
	DrawW float64
	// NodeDrawW is DrawW per node.
	NodeDrawW map[string]float64
	// Fits is false when even every GPU at its minimum limit would exceed the
	// budget or a node's cap; the limits are then all at their minimum.
	Fits bool
}

// OperatingPointW is the limit a job's policy asks for, inside [loW, hiW]:
// performance the maximum; efficient the limit with the least energy per
// unit of work (draw min(limit, uncapped) over throughput); balanced the
// lowest limit whose slowdown (1/relative throughput - 1) stays within
// maxSlowdown (0: DefaultMaxSlowdown).
func OperatingPointW(c JobCurve, loW, hiW float64, policy string, maxSlowdown float64) float64 {
	if !(c.UncappedW > 0) {
		return hiW
	}
	switch policy {
	case api.PolicyEfficient:
		best, bestW := math.Inf(1), hiW
		for l := hiW; l >= loW; l-- {
			rel := CurveRel(l/c.UncappedW, c.A, c.K)
			if e := math.Min(l, c.UncappedW) / rel; e < best-1e-9 {
				best, bestW = e, l
			}
		}
		return bestW
	case api.PolicyBalanced:
		if !(maxSlowdown > 0) {
			maxSlowdown = DefaultMaxSlowdown
		}
		rel := 1 / (1 + maxSlowdown)
		r := c.A + (1-c.A)*math.Pow(rel, c.K)
		// Round up to a whole watt so that rounding never breaks the bound.
		return math.Min(math.Max(math.Ceil(r*c.UncappedW), loW), hiW)
	default:
		return hiW
	}
}

// unit is one job (or one idle GPU) being allocated.
type unit struct {
	id       string
	node     string
	gpus     []AllocGPU
	loW, hiW float64
	targetW  float64
	limitW   float64
	idleW    float64 // idle units only: their draw
	curve    JobCurve
	busy     bool
	// profiling units are lowered only once every other unit is at its
	// minimum: their agent is measuring at the limit they were given.
	profiling bool
	// relW and relV remember rel at one limit (relOK: they are set):
	// water-filling asks for the relative throughput at a unit's limit
	// again after each step, and each costs a math.Pow.
	relW, relV float64
	relOK      bool
}

func (u *unit) drawW() float64 {
	if !u.busy {
		return u.idleW
	}
	return u.limitW * float64(len(u.gpus))
}

func (u *unit) rel(l float64) float64 {
	if !(u.curve.UncappedW > 0) {
		return 1
	}
	return CurveRel(l/u.curve.UncappedW, u.curve.A, u.curve.K)
}

// relAt is rel(l), remembered for the last l asked.
func (u *unit) relAt(l float64) float64 {
	if !u.relOK || l != u.relW {
		u.relW, u.relV, u.relOK = l, u.rel(l), true
	}
	return u.relV
}

// opKey is what a job's operating point depends on (OperatingPointW).
type opKey struct {
	curve    JobCurve
	loW, hiW float64
	policy   string
}

// Allocate gives every GPU a power limit. The pipeline, whole:
//
//  1. each running job gets its policy's operating point (OperatingPointW),
//     each idle GPU its minimum limit (its draw counts as IdleW);
//  2. on every node over NodeMaxW, water-fill that node's jobs down;
//  3. if the cluster is over BudgetW, water-fill all jobs down.
//
// Water-filling lowers, a step at a time, the job that loses the least
// relative throughput per watt saved, never below its GPUs' minimum limit;
// jobs being profiled come down only once all others are at their minimum.
// Limits never leave the GPUs' constraints. A job spanning GPUs with
// different constraints is held inside all of them.
func Allocate(in AllocInput) Allocation {
	out := Allocation{
		LimitsW: map[string]map[int]float64{}, JobLimitW: map[string]float64{},
		JobTargetW: map[string]float64{}, JobRel: map[string]float64{},
		NodeDrawW: map[string]float64{}, Fits: true,
	}
	// 1. Operating points.
	byJob := map[string]*unit{}
	var units []*unit
	for _, g := range in.GPUs {
		if g.Job == "" {
			units = append(units, &unit{node: g.Node, gpus: []AllocGPU{g}, loW: g.MinLimitW, hiW: g.MaxLimitW,
				limitW: g.MinLimitW, idleW: math.Min(g.IdleW, g.MinLimitW)})
			continue
		}
		u := byJob[g.Job]
		if u == nil {
			u = &unit{id: g.Job, node: g.Node, busy: true, loW: g.MinLimitW, hiW: g.MaxLimitW}
			byJob[g.Job] = u
			units = append(units, u)
		}
		u.gpus = append(u.gpus, g)
		u.loW, u.hiW = math.Max(u.loW, g.MinLimitW), math.Min(u.hiW, g.MaxLimitW)
	}
	// Jobs alike share an operating point, computed once per call (the
	// efficient policy's scans every watt of the range).
	points := map[opKey]float64{}
	for _, u := range byJob {
		if u.loW > u.hiW { // disjoint constraints: the tightest upper bound wins
			u.loW = u.hiW
		}
		j := in.Jobs[u.id]
		u.curve = j.Curve
		policy := j.Policy
		if j.Profiling {
			policy = api.PolicyPerformance
		}
		k := opKey{curve: j.Curve, loW: u.loW, hiW: u.hiW, policy: policy}
		target, ok := points[k]
		if !ok {
			target = OperatingPointW(j.Curve, u.loW, u.hiW, policy, in.MaxSlowdown)
			points[k] = target
		}
		u.targetW = target
		u.limitW = u.targetW
		u.profiling = j.Profiling
	}
	// 2. Per-node caps.
	if in.NodeMaxW > 0 {
		nodes := map[string][]*unit{}
		for _, u := range units {
			nodes[u.node] = append(nodes[u.node], u)
		}
		for _, name := range sortedNames(nodes) {
			if !waterFill(nodes[name], in.NodeMaxW) {
				out.Fits = false
			}
		}
	}
	// 3. The cluster budget.
	if in.BudgetW > 0 && !waterFill(units, in.BudgetW) {
		out.Fits = false
	}
	for _, u := range units {
		d := u.drawW()
		out.DrawW += d
		out.NodeDrawW[u.node] += d
		for _, g := range u.gpus {
			if out.LimitsW[g.Node] == nil {
				out.LimitsW[g.Node] = map[int]float64{}
			}
			out.LimitsW[g.Node][g.Index] = u.limitW
		}
		if u.busy {
			out.JobLimitW[u.id], out.JobTargetW[u.id] = u.limitW, u.targetW
			out.JobRel[u.id] = u.relAt(u.limitW) / u.rel(u.targetW)
		}
	}
	return out
}

// waterFill lowers busy units' limits until their draw plus the rest fits
// capW, cheapest relative throughput per watt first. It reports whether it
// fits; when it cannot, every busy unit ends at its minimum.
func waterFill(units []*unit, capW float64) bool {
	var total float64
	for _, u := range units {
		total += u.drawW()
	}
	excess := total - capW
	if excess <= 1e-9 {
		return true
	}
	// Steps are allocStepW, or larger while the excess is large (a quarter
	// of the excess per busy GPU), so that the work stays proportional to
	// the number of jobs rather than to the watts to shed.
	h := &stepHeap{}
	var busyGPUs float64
	for _, u := range units {
		if u.busy {
			busyGPUs += float64(len(u.gpus))
		}
	}
	stepW := func() float64 { return math.Max(allocStepW, excess/(4*math.Max(busyGPUs, 1))) }
	for _, u := range units {
		if u.busy && u.limitW > u.loW {
			h.push(newStep(u, stepW()))
		}
	}
	for excess > 1e-9 && len(*h) > 0 {
		s := h.pop()
		u := s.u
		n := float64(len(u.gpus))
		d := math.Min(s.dW, excess/n)
		u.limitW -= d
		if u.limitW-u.loW < 1e-9 {
			u.limitW = u.loW
		}
		excess -= d * n
		if u.limitW > u.loW {
			h.push(newStep(u, stepW()))
		}
	}
	return excess <= 1e-6
}

// step is lowering one unit's limit by dW, at a cost of lossPerW relative
// throughput per watt saved (per GPU: a job's GPUs all lose and save alike).
type step struct {
	u        *unit
	dW       float64
	lossPerW float64
}

func newStep(u *unit, stepW float64) step {
	d := math.Min(stepW, u.limitW-u.loW)
	if uw := u.curve.UncappedW; uw > 0 && u.limitW-uw > d {
		// Above the uncapped draw the limit does not bind: one free step
		// down to it (never below the minimum).
		d = u.limitW - math.Max(uw, u.loW)
	}
	// rel at the limit is usually the rel at the end of the unit's last
	// step (relAt remembers it); rel below it is then remembered for the
	// next.
	return step{u: u, dW: d, lossPerW: (u.relAt(u.limitW) - u.relAt(u.limitW-d)) / d}
}

// stepHeap is a binary min-heap of steps: profiling jobs last, then by
// lossPerW, ties by job id (so the result is deterministic). It is typed to
// avoid container/heap's boxing.
type stepHeap []step

func (h stepHeap) less(i, j int) bool {
	if pi, pj := h[i].u.profiling, h[j].u.profiling; pi != pj {
		return pj
	}
	if h[i].lossPerW != h[j].lossPerW {
		return h[i].lossPerW < h[j].lossPerW
	}
	return h[i].u.id < h[j].u.id
}

func (h *stepHeap) push(s step) {
	*h = append(*h, s)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *stepHeap) pop() step {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && a.less(l, m) {
			m = l
		}
		if r < n && a.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// ModelCurve is the curve a job follows on a GPU of model m at utilisation
// util before it is profiled: the model's own (a, k) from its knee
// (Model.KneeW), relative throughput.
func ModelCurve(m Model, util float64) JobCurve {
	return JobCurve{UncappedW: m.KneeW(util), MaxThroughput: 1, A: m.A, K: m.K}
}
