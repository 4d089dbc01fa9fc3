package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// One 1-GPU job of an hour (at full speed) on one H100 node under
// energy+cap with a budget that does not bind: the job runs at the balanced
// limit (the lowest whose slowdown is within 10%) for 1/rel hours.
func TestCapRunsAtTheBalancedPoint(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\nx,0,3600,1,,\n")
	r, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 10000})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := power.ModelFor("h100")
	limit := power.OperatingPointW(power.ModelCurve(m, 1), m.MinLimitW, m.MaxLimitW, api.PolicyBalanced, 0)
	rel := m.RelThroughput(1, limit)
	secs := 3600 / rel
	// 490 W uncapped, so the cap binds below 1.1 x 490 = 539 W;
	// r = 0.36 + 0.64 (1/1.1)^5 = 0.757 of that: 409 W, 10% slower, drawing
	// 409 / 1.1 = 372 W on average.
	if limit != 409 || rel < 1/1.1 || rel > 1/1.1+0.002 {
		t.Fatalf("balanced limit %v W, relative speed %v", limit, rel)
	}
	wantKWh := (m.DrawW(1, limit) + 7*m.IdleW) * secs / 3.6e6
	if math.Abs(r.MeanJCTS-secs) > 1e-3 || math.Abs(r.GPUEnergyKWh-wantKWh) > 1e-6 || r.BudgetViolationS != 0 {
		t.Fatalf("JCT %v s (want %v), GPU energy %v kWh (want %v), over budget %v s", r.MeanJCTS, secs, r.GPUEnergyKWh, wantKWh, r.BudgetViolationS)
	}
	if _, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "energy+cap")}); err == nil {
		t.Error("energy+cap without a budget ran")
	}
}

// Four 8-GPU jobs at once on two H100 nodes under a 4 kW budget (both nodes
// busy at 250 W per GPU): the GPUs never draw more than the budget, every
// job finishes, later than without the cap, on less GPU energy.
func TestCapHoldsTheBudget(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\na,0,3600,8,,\nb,0,3600,8,,\nc,0,3600,8,,\nd,0,3600,8,,\n")
	free, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: pol(t, "energy")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 4 || r.BudgetViolationS != 0 || !(r.MeanJCTS > free.MeanJCTS) || !(r.GPUEnergyKWh < free.GPUEnergyKWh) {
		t.Fatalf("capped %+v\nuncapped %+v", r, free)
	}
}

// A smaller balanced slowdown runs the job closer to full speed: within 1%
// of its uncapped hour, never slower than that allowance.
func TestCapBalancedSlowdown(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\nx,0,3600,1,,\n")
	r, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 10000, BalancedSlowdown: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if r.MeanJCTS < 3600 || r.MeanJCTS > 3600*1.01+1e-6 {
		t.Fatalf("JCT %v s at a 1%% balanced slowdown", r.MeanJCTS)
	}
	if _, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 10000, BalancedSlowdown: -1}); err == nil {
		t.Error("a negative balanced slowdown ran")
	}
}

// Three idle H100 nodes draw 24 x 72 = 1728 W, above a 1700 W budget: the
// replay starts with the idle nodes suspended, so the GPUs are never over
// budget, not even before the idle timeout. A 16-GPU job, 3200 W at its
// minimum limits, can never run: it is counted, with the reason, and the
// replay still finishes the others.
func TestCapIdleNodesAndUnrunnable(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\na,3600,3600,1,,\nbig,3600,3600,16,,\nb,7200,600,1,,\n")
	r, err := Run(jobs, Config{Cluster: Uniform(3, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 1700})
	if err != nil {
		t.Fatal(err)
	}
	if r.BudgetViolationS != 0 || r.Jobs != 2 || r.Unrunnable != 1 ||
		!strings.Contains(r.UnrunnableReason, "trace job big: cannot run under the power budget") {
		t.Fatalf("over budget %v s, %d jobs, %d unrunnable (%q); want 0 s, 2 jobs, big unrunnable", r.BudgetViolationS, r.Jobs, r.Unrunnable, r.UnrunnableReason)
	}
	// The daemon's floor: below one node's GPUs at their minimum limits
	// (8 x 200 W) the budget is refused, naming the floor.
	if _, err := Run(jobs, Config{Cluster: Uniform(3, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 1500}); err == nil ||
		!strings.Contains(err.Error(), "minimum possible draw of 1600 W") {
		t.Errorf("1500 W budget: %v, want a refusal naming the 1600 W floor", err)
	}
}

// A budget with a window (10 kW, but 1700 W from 08:00 to 20:00 UTC) on two
// H100 nodes: an 8-GPU job started at midnight is held to its minimum limits
// at 08:00 (8 x 200 W, the idle node suspended), and a second 8-GPU job is
// not started before a drop that the two could not get under. The GPUs are
// never over the budget in force, and the window costs time against the
// same trace under the flat 10 kW.
func TestCapBudgetWindows(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\na,0,36000,8,,\nb,3600,36000,8,,\n")
	b := &api.PowerBudget{DefaultW: 10000, Windows: []api.BudgetWindow{{Start: "0 8 * * *", End: "0 20 * * *", Watts: 1700}}}
	r, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: pol(t, "energy+cap"), Budget: b, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	flat, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 10000, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.BudgetViolationS != 0 || r.Jobs != 2 || !(r.MeanJCTS > flat.MeanJCTS) {
		t.Fatalf("windowed: %v s over, %d jobs, mean JCT %v s (flat 10 kW: %v s); want 0 s, 2 jobs, slower", r.BudgetViolationS, r.Jobs, r.MeanJCTS, flat.MeanJCTS)
	}
	// b submitted at 01:00 would run into 08:00 beside a: it waits.
	if got := r.Placements["b"].Start.Sub(DefaultStart); got < 8*time.Hour {
		t.Errorf("b started %v after midnight, before the 08:00 drop it could not get under", got)
	}
	// (Node 2 was suspended after its idle timeout: b waits for its wake-up.)
	if got := flat.Placements["b"].Start.Sub(DefaultStart); got > time.Hour+power.DefaultNodePower.WakeDelay {
		t.Errorf("under the flat budget b started at %v, want at once (1h, plus a node's wake-up)", got)
	}
	// A bad window is refused as PUT /api/v1/power/budget refuses it.
	bad := &api.PowerBudget{DefaultW: 10000, Windows: []api.BudgetWindow{{Start: "0 25 * * *", End: "0 20 * * *", Watts: 1700}}}
	if _, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: pol(t, "energy+cap"), Budget: bad}); err == nil || !strings.Contains(err.Error(), "windows") {
		t.Errorf("bad cron: %v, want an error naming the windows", err)
	}
}
