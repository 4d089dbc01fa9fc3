package scheduler

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// randomPowerCluster builds a core with random nodes (H100s and A100s of 4
// or 8 GPUs, some with a lowered maximum limit, some without constraints)
// and random jobs (1..16 GPUs, so some span nodes; every policy; some
// profiled), placed and heartbeated once.
func randomPowerCluster(t *testing.T, rng *rand.Rand) (*Core, time.Time) {
	t.Helper()
	p, err := PolicyByName(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	p.MultiNode = true // jobs larger than a node span whole nodes
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.Power.Profile = rng.IntN(2) == 0
	nodes := 1 + rng.IntN(8)
	hbs := map[string][]api.GPU{}
	for i := range nodes {
		name := fmt.Sprintf("n%02d", i)
		size := 4 + 4*rng.IntN(2)
		gs := h100s(name, size, 72)
		if i%3 == 1 {
			for k := range gs {
				gs[k].Model, gs[k].MinLimitW, gs[k].MaxLimitW, gs[k].LimitW = "NVIDIA A100-SXM4-80GB", 100, 400, 400
			}
		}
		for k := range gs {
			switch rng.IntN(6) {
			case 0:
				gs[k].MaxLimitW -= float64(25 * (1 + rng.IntN(8)))
			case 1:
				gs[k].MinLimitW, gs[k].MaxLimitW = 0, 0 // reports no constraints: not capped
			}
		}
		hbs[name] = gs
		c.Heartbeat(name, api.Heartbeat{GPUs: gs}, t0)
	}
	policies := []string{api.PolicyPerformance, api.PolicyBalanced, api.PolicyEfficient}
	for i := range rng.IntN(12) {
		s := powerSpec(fmt.Sprintf("job-%d", i), policies[rng.IntN(3)], 1+rng.IntN(16))
		if rng.IntN(3) == 0 {
			s.Workload.Synthetic.Utilization = 0.3 + 0.7*rng.Float64()
		}
		if _, err := c.Submit(s, t0); err != nil {
			continue // larger than any node group: refused
		}
	}
	c.Schedule(t0)
	now := t0.Add(time.Second)
	for _, name := range c.sortedNodeNames() {
		c.Heartbeat(name, api.Heartbeat{GPUs: hbs[name]}, now)
	}
	return c, now
}

// TestPerNodeAllocationEqualsGlobal: over 300 random clusters, the per-node
// allocation (no budget in force) gives every node exactly the limits the
// global power.Allocate gives it without a budget, and with a budget that
// does not bind (the sum of every GPU's maximum limit); each job's recorded
// limit is the global one.
func TestPerNodeAllocationEqualsGlobal(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	gangs := 0
	for trial := range 300 {
		c, now := randomPowerCluster(t, rng)
		global := power.Allocate(c.allocInput(now))
		in := c.allocInput(now)
		for _, g := range in.GPUs {
			in.BudgetW += g.MaxLimitW
		}
		unbound := power.Allocate(in)
		for _, name := range c.sortedNodeNames() {
			n := c.nodes[name]
			var ch Changes
			got := c.applyLimits(n, now, &ch)
			if !maps.Equal(got, global.LimitsW[name]) {
				t.Fatalf("trial %d node %s: per-node limits %v, global %v", trial, name, got, global.LimitsW[name])
			}
			if !maps.Equal(got, unbound.LimitsW[name]) {
				t.Fatalf("trial %d node %s: per-node limits %v, global under a %v W budget %v", trial, name, got, in.BudgetW, unbound.LimitsW[name])
			}
		}
		for id, j := range c.jobs {
			if j.State == api.StateRunning && j.PowerLimitW != global.JobLimitW[id] {
				t.Fatalf("trial %d job %s: recorded limit %v, global %v", trial, id, j.PowerLimitW, global.JobLimitW[id])
			}
			if len(j.GangNodes) > 1 {
				gangs++
			}
		}
	}
	if gangs == 0 {
		t.Fatal("no trial placed a multi-node job: the test does not cover them")
	}
}

// TestBudgetSwitchesToGlobalAndBack: a budget in force makes the heartbeat
// use the global allocation (limits come down to fit it), removing it goes
// back to per-node limits at the operating points, and each job's recorded
// limit follows.
func TestBudgetSwitchesToGlobalAndBack(t *testing.T) {
	c := New()
	c.Power.Profile = false
	for _, n := range []string{"a", "b"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: h100s(n, 8, 72)}, t0)
	}
	for i := range 4 {
		if _, err := c.Submit(powerSpec(fmt.Sprintf("p%d", i), api.PolicyPerformance, 4), t0); err != nil {
			t.Fatal(err)
		}
	}
	c.Schedule(t0)
	beat := func(at time.Time) map[string]map[int]float64 {
		out := map[string]map[int]float64{}
		for _, n := range []string{"a", "b"} {
			r, _ := c.Heartbeat(n, api.Heartbeat{GPUs: h100s(n, 8, 72)}, at)
			out[n] = r.LimitsW
		}
		return out
	}
	jobLimits := func() (sum float64) {
		for _, j := range c.jobs {
			sum += j.PowerLimitW
		}
		return sum
	}
	at := t0.Add(time.Second)
	free := beat(at)
	if free["a"][0] != 700 || jobLimits() != 4*700 {
		t.Fatalf("no budget: limits %v, jobs' limits sum %v; want 700 W each", free, jobLimits())
	}
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 8000}); err != nil {
		t.Fatal(err)
	}
	capped := beat(at.Add(time.Second))
	var sum float64
	for _, ls := range capped {
		for _, l := range ls {
			sum += l
		}
	}
	// (How far they come down is power.Allocate's business; here: they do.)
	if sum >= 16*700 || capped["a"][0] >= 700 || jobLimits() >= 4*700 {
		t.Fatalf("8 kW budget: limits %v (sum %v W), jobs' limits sum %v; want them lowered to fit", capped, sum, jobLimits())
	}
	if _, err := c.SetBudget(api.PowerBudget{}); err != nil {
		t.Fatal(err)
	}
	again := beat(at.Add(2 * time.Second))
	if !maps.Equal(again["a"], free["a"]) || !maps.Equal(again["b"], free["b"]) || jobLimits() != 4*700 {
		t.Fatalf("budget removed: limits %v, jobs' limits sum %v; want %v and 2800", again, jobLimits(), free)
	}
}

// TestHeartbeatTelemetryOnly: a heartbeat that only reports energy and
// progress is marked Telemetry; registering, a job ending and a placement
// are transitions.
func TestHeartbeatTelemetryOnly(t *testing.T) {
	c := New()
	c.Power.Profile = false
	if _, ch := c.Heartbeat("a", api.Heartbeat{GPUs: gpus("a", 8, 0)}, t0); ch.Telemetry {
		t.Error("registration marked telemetry only")
	}
	j, _ := c.Submit(spec("x", 2, 50), t0)
	c.Schedule(t0)
	running := []api.JobReport{{ID: j.ID, State: api.StateRunning, Progress: &api.Progress{Fraction: 0.5}}}
	_, ch := c.Heartbeat("a", api.Heartbeat{GPUs: gpus("a", 8, 100), Jobs: running}, t0.Add(time.Second))
	if !ch.Telemetry || len(ch.Jobs) == 0 {
		t.Errorf("energy and progress: telemetry %v, %d jobs changed; want telemetry only, the job changed", ch.Telemetry, len(ch.Jobs))
	}
	done := []api.JobReport{{ID: j.ID, State: api.StateSucceeded}}
	if _, ch := c.Heartbeat("a", api.Heartbeat{GPUs: gpus("a", 8, 200), Jobs: done}, t0.Add(2*time.Second)); ch.Telemetry {
		t.Error("a job's end marked telemetry only")
	}
	c.Submit(spec("y", 1, 50), t0.Add(2*time.Second))
	c.freed = true // as after a release: this heartbeat's pass places y
	if _, ch := c.Heartbeat("a", api.Heartbeat{GPUs: gpus("a", 8, 300)}, t0.Add(3*time.Second)); ch.Telemetry {
		t.Error("a heartbeat that placed a job marked telemetry only")
	}
}
