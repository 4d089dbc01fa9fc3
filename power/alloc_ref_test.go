package power

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/joulehq/joule/api"
)

// allocateRef is Allocate as it was before its operating points and
// relative throughputs were remembered within a call: the reference that
// TestAllocateMatchesReference holds the faster one to, bit for bit.
//
// The original comment: Allocate gives every GPU a power limit. The pipeline, whole:
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
func allocateRef(in AllocInput) Allocation {
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
		u.targetW = OperatingPointW(j.Curve, u.loW, u.hiW, policy, in.MaxSlowdown)
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
			if !waterFillRef(nodes[name], in.NodeMaxW) {
				out.Fits = false
			}
		}
	}
	// 3. The cluster budget.
	if in.BudgetW > 0 && !waterFillRef(units, in.BudgetW) {
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
			out.JobRel[u.id] = u.rel(u.limitW) / u.rel(u.targetW)
		}
	}
	return out
}

// waterFill lowers busy units' limits until their draw plus the rest fits
// capW, cheapest relative throughput per watt first. It reports whether it
// fits; when it cannot, every busy unit ends at its minimum.
func waterFillRef(units []*unit, capW float64) bool {
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
	h := &stepHeapRef{}
	var busyGPUs float64
	for _, u := range units {
		if u.busy {
			busyGPUs += float64(len(u.gpus))
		}
	}
	stepW := func() float64 { return math.Max(allocStepW, excess/(4*math.Max(busyGPUs, 1))) }
	for _, u := range units {
		if u.busy && u.limitW > u.loW {
			h.push(newStepRef(u, stepW()))
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
			h.push(newStepRef(u, stepW()))
		}
	}
	return excess <= 1e-6
}

// step is lowering one unit's limit by dW, at a cost of lossPerW relative
// throughput per watt saved (per GPU: a job's GPUs all lose and save alike).
type stepRef struct {
	u        *unit
	dW       float64
	lossPerW float64
}

func newStepRef(u *unit, stepW float64) stepRef {
	d := math.Min(stepW, u.limitW-u.loW)
	if uw := u.curve.UncappedW; uw > 0 && u.limitW-uw > d {
		// Above the uncapped draw the limit does not bind: one free step
		// down to it (never below the minimum).
		d = u.limitW - math.Max(uw, u.loW)
	}
	return stepRef{u: u, dW: d, lossPerW: (u.rel(u.limitW) - u.rel(u.limitW-d)) / d}
}

// stepHeapRef is a binary min-heap of steps: profiling jobs last, then by
// lossPerW, ties by job id (so the result is deterministic). It is typed to
// avoid container/heap's boxing.
type stepHeapRef []stepRef

func (h stepHeapRef) less(i, j int) bool {
	if pi, pj := h[i].u.profiling, h[j].u.profiling; pi != pj {
		return pj
	}
	if h[i].lossPerW != h[j].lossPerW {
		return h[i].lossPerW < h[j].lossPerW
	}
	return h[i].u.id < h[j].u.id
}

func (h *stepHeapRef) push(s stepRef) {
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

func (h *stepHeapRef) pop() stepRef {
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

// TestAllocateMatchesReference: over random clusters, Allocate gives
// exactly (bit for bit) what allocateRef gives, under a budget, per-node
// caps, both or neither. Half the trials fill the nodes with jobs alike
// (one curve, one policy), so that operating points are shared and
// water-filling steps tie.
func TestAllocateMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 6))
	kinds := []Model{models["h100"], models["h200"], models["a100"]}
	policies := []string{api.PolicyPerformance, api.PolicyBalanced, api.PolicyEfficient}
	for trial := range 400 {
		alike := trial%2 == 0
		in := AllocInput{Jobs: map[string]AllocJob{}, MaxSlowdown: rng.Float64() * 0.3}
		var minSum, maxSum float64
		shared := AllocJob{Curve: ModelCurve(kinds[0], 0.9), Policy: policies[rng.IntN(3)]}
		jobSeq := 0
		for n := range 1 + rng.IntN(12) {
			node := fmt.Sprintf("n%d", n)
			m := kinds[rng.IntN(len(kinds))]
			for i := 0; i < 8; {
				size := 1 + rng.IntN(4)
				job := ""
				if rng.Float64() < 0.8 {
					jobSeq++
					job = fmt.Sprintf("j%d", jobSeq)
					c := ModelCurve(m, rng.Float64())
					c.A, c.K = rng.Float64()*0.8, 0.5+rng.Float64()*6
					in.Jobs[job] = AllocJob{Curve: c, Policy: policies[rng.IntN(3)], Profiling: rng.Float64() < 0.1}
					if alike {
						in.Jobs[job] = shared
					}
				}
				for k := 0; k < size && i < 8; k++ {
					g := AllocGPU{Node: node, Index: i, MinLimitW: m.MinLimitW, MaxLimitW: m.MaxLimitW, IdleW: m.IdleW, Job: job}
					if rng.IntN(8) == 0 {
						g.MaxLimitW -= 50 // a job across GPUs of different constraints
					}
					in.GPUs = append(in.GPUs, g)
					i++
					minSum += g.MinLimitW
					maxSum += g.MaxLimitW
				}
			}
		}
		if rng.IntN(4) != 0 {
			in.BudgetW = minSum + rng.Float64()*(maxSum-minSum)
		}
		if rng.IntN(2) == 0 {
			in.NodeMaxW = 1000 + rng.Float64()*4000 // sometimes below a node's minimum: Fits false
		}
		if got, want := Allocate(in), allocateRef(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d (budget %v W, node cap %v W): Allocate\n%+v\nthe reference\n%+v", trial, in.BudgetW, in.NodeMaxW, got, want)
		}
	}
}
