package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// h100s builds n H100 GPUs with NVML's constraints (200..700 W), each
// drawing powerW.
func h100s(node string, n int, powerW float64) []api.GPU {
	out := gpus(node, n, 0)
	for i := range out {
		out[i].Model, out[i].MinLimitW, out[i].MaxLimitW, out[i].LimitW, out[i].PowerW = "NVIDIA H100 80GB HBM3", 200, 700, 700, powerW
	}
	return out
}

func powerSpec(name, policy string, gpus int) api.JobSpec {
	s := spec(name, gpus, 50)
	s.EnergyPolicy = policy
	return s
}

func TestLimitsWithoutBudget(t *testing.T) {
	c := New()
	c.Power.Profile = false
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	perf, _ := c.Submit(powerSpec("p", api.PolicyPerformance, 2), t0)
	bal, _ := c.Submit(powerSpec("b", api.PolicyBalanced, 2), t0)
	c.Schedule(t0) // submits run a scheduling pass, as schedulerd does
	reply, ch := c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0.Add(time.Second))
	pj, _ := c.Job(perf.ID)
	bj, _ := c.Job(bal.ID)
	h100, _ := power.ModelFor("h100")
	c90 := power.ModelCurve(h100, 0.9)
	wantBal := power.OperatingPointW(c90, 200, 700, api.PolicyBalanced, 0.1)
	for _, i := range pj.GPUIndices {
		if reply.LimitsW[i] != 700 {
			t.Errorf("performance GPU %d at %v W, want 700", i, reply.LimitsW[i])
		}
	}
	for _, i := range bj.GPUIndices {
		if reply.LimitsW[i] != wantBal {
			t.Errorf("balanced GPU %d at %v W, want %v", i, reply.LimitsW[i], wantBal)
		}
	}
	idle := 0
	for i, l := range reply.LimitsW {
		if l == 200 {
			idle++
		} else if l != 700 && l != wantBal {
			t.Errorf("GPU %d at %v W", i, l)
		}
	}
	if idle != 4 || len(reply.LimitsW) != 8 {
		t.Errorf("limits %v: want the 4 idle GPUs at the minimum", reply.LimitsW)
	}
	if pj.PowerLimitW != 700 || bj.PowerLimitW != wantBal || len(ch.Jobs) == 0 {
		t.Errorf("jobs' limits %v, %v not recorded (changes %d)", pj.PowerLimitW, bj.PowerLimitW, len(ch.Jobs))
	}
}

func TestBudgetChangeLowersLimitsAndHoldsNewJobs(t *testing.T) {
	c := New()
	c.Power.Profile = false
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	c.Heartbeat("b", api.Heartbeat{GPUs: h100s("b", 8, 72)}, t0)
	for i := range 3 {
		if _, err := c.Submit(powerSpec(fmt.Sprintf("big-%d", i), api.PolicyPerformance, 4), t0); err != nil {
			t.Fatal(err)
		}
	}
	c.Schedule(t0)
	// 3 jobs x 4 GPUs at 700 W + 4 idle GPUs at 72 W = 8688 W; cap at 4000 W:
	// (4000 - 4 x 72) / 12 = 309 W per busy GPU, r = 309/448 = 0.69, which
	// keeps ((0.69-0.37)/0.63)^(1/3.5) = 82% of full speed.
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 4000}); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, n := range []string{"a", "b"} {
		reply, _ := c.Heartbeat(n, api.Heartbeat{GPUs: h100s(n, 8, 72)}, t0.Add(time.Second))
		for i, l := range reply.LimitsW {
			if l < 200 || l > 700 {
				t.Errorf("%s/%d: %v W outside 200..700", n, i, l)
			}
			if l == 200 {
				sum += 72 // an idle GPU draws its idle power
			} else {
				sum += l
			}
		}
	}
	if sum > 4000+1e-6 || sum < 4000-1 {
		t.Errorf("limits + idle draw = %v W, want the whole 4000 W budget used", sum)
	}
	// A fourth job would leave 4000/16 = 250 W per GPU, r = 0.56: 71% of
	// full speed, below the 80% admission floor. It waits.
	j4, _ := c.Submit(powerSpec("late", api.PolicyPerformance, 4), t0.Add(2*time.Second))
	c.Schedule(t0.Add(2 * time.Second))
	got, _ := c.Job(j4.ID)
	if got.State != api.StateQueued || !strings.HasPrefix(got.Reason, "waiting for power: under the 4000 W budget in force") {
		t.Errorf("fourth job: %s, %q", got.State, got.Reason)
	}
	// Lift the budget: it starts.
	if _, err := c.SetBudget(api.PowerBudget{}); err != nil {
		t.Fatal(err)
	}
	c.Schedule(t0.Add(3 * time.Second))
	if got, _ := c.Job(j4.ID); got.State != api.StateRunning {
		t.Errorf("with no budget the fourth job is %s (%q)", got.State, got.Reason)
	}
}

// A budget of a per-node cap alone, with no cluster budget, holds each
// node's GPUs under the cap; it is kept, not dropped as "no budget".
func TestNodeMaxAloneCapsEachNode(t *testing.T) {
	c := New()
	c.Power.Profile = false
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	for i := range 2 {
		c.Submit(powerSpec(fmt.Sprintf("big-%d", i), api.PolicyPerformance, 4), t0)
	}
	c.Schedule(t0)
	if _, err := c.SetBudget(api.PowerBudget{NodeMaxW: 3000}); err != nil {
		t.Fatal(err)
	}
	if st := c.BudgetStatus(t0); st.Budget.NodeMaxW != 3000 || st.WattsNow != 0 {
		t.Fatalf("budget status %+v: want node_max_w 3000 kept and no cluster budget", st)
	}
	reply, _ := c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0.Add(time.Second))
	var sum float64
	for _, l := range reply.LimitsW {
		sum += l
	}
	if sum > 3000+1e-6 || sum < 2900 {
		t.Errorf("node a's limits add up to %v W (%v); want at most the 3000 W node cap, and most of it used", sum, reply.LimitsW)
	}
}

// A budget lowered below what the running jobs' GPUs draw at their minimum
// limits (accepted under a policy that suspends idle nodes: its floor is one
// node's minimum) stops jobs until the rest fit, lowest priority first, then
// the most recently started. The victim is preempted and requeued, waits
// for power, and the cluster is under the new budget once its agent has
// stopped it.
func TestLoweredBudgetPreemptsUntilItFits(t *testing.T) {
	c := New()
	c.Power.Profile = false
	for _, n := range []string{"a", "b"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: h100s(n, 8, 72)}, t0)
	}
	hi := powerSpec("hi", api.PolicyPerformance, 8)
	hi.Priority = 80
	ids := map[string]string{}
	for i, s := range []api.JobSpec{hi, powerSpec("lo-old", api.PolicyPerformance, 4), powerSpec("lo-new", api.PolicyPerformance, 4)} {
		at := t0.Add(time.Duration(i) * time.Second)
		j, _ := c.Submit(s, at)
		c.Schedule(at)
		ids[s.Name] = j.ID
	}
	for name, id := range ids {
		if j, _ := c.Job(id); j.State != api.StateRunning {
			t.Fatalf("%s is %s (%s), want running", name, j.State, j.Reason)
		}
	}
	// 16 GPUs at 200 W = 3200 W at the least. Without lo-new: 12 x 200 W
	// + its 4 GPUs idle at 72 W = 2688 W, under 2700 W.
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 2700}); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Second)
	c.Schedule(now)
	for name, stopping := range map[string]bool{"hi": false, "lo-old": false, "lo-new": true} {
		j, _ := c.Job(ids[name])
		if j.Stopping != stopping || j.State != api.StateRunning {
			t.Errorf("%s: %s, stopping %v (%s); want running, stopping %v", name, j.State, j.Stopping, j.Reason, stopping)
		}
	}
	victim, _ := c.Job(ids["lo-new"])
	reply, _ := c.Heartbeat(victim.Node, api.Heartbeat{GPUs: h100s(victim.Node, 8, 72), Jobs: []api.JobReport{
		{ID: ids["lo-old"], State: api.StateRunning}, {ID: ids["lo-new"], State: api.StateRunning}}}, now.Add(time.Second))
	if !slices.Contains(reply.Preempt, ids["lo-new"]) || len(reply.Preempt) != 1 {
		t.Fatalf("reply preempts %v, want %s alone (checkpoint and requeue)", reply.Preempt, ids["lo-new"])
	}
	// Its agent stops it: it is requeued and waits for power.
	c.Heartbeat(victim.Node, api.Heartbeat{GPUs: h100s(victim.Node, 8, 72), Jobs: []api.JobReport{
		{ID: ids["lo-old"], State: api.StateRunning}, {ID: ids["lo-new"], State: api.StatePreempted}}}, now.Add(2*time.Second))
	c.Schedule(now.Add(2 * time.Second))
	if j, _ := c.Job(ids["lo-new"]); j.State != api.StateQueued || !strings.Contains(j.Reason, "waiting for power") {
		t.Errorf("victim after its stop: %s (%s); want queued, waiting for power", j.State, j.Reason)
	}
	if st := c.BudgetStatus(now.Add(2 * time.Second)); st.AllocatedW > 2700+1e-6 {
		t.Errorf("allocated %v W over the 2700 W budget", st.AllocatedW)
	}
}

func TestSetBudgetRefusals(t *testing.T) {
	c := New()
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	c.Heartbeat("b", api.Heartbeat{GPUs: h100s("b", 8, 72)}, t0)
	for _, tt := range []struct {
		b    api.PowerBudget
		says string
	}{
		// The energy policy suspends idle nodes: one node's GPUs at their
		// minimum limits is the floor.
		{api.PowerBudget{DefaultW: 1500}, "below the GPUs' minimum possible draw of 1600 W (node a's GPUs at their minimum power limits, the other nodes suspended)"},
		{api.PowerBudget{DefaultW: 5000, NodeMaxW: 1500}, "node_max_w"},
		{api.PowerBudget{DefaultW: 5000, Windows: []api.BudgetWindow{{Start: "0 8 * * *", End: "0 20 * * *", Watts: 100}}}, "windows[0].watts"},
		{api.PowerBudget{DefaultW: 5000, Windows: []api.BudgetWindow{{Start: "CRON_TZ=UTC", End: "0 20 * * *", Watts: 4000}}}, "no schedule"},
	} {
		if _, err := c.SetBudget(tt.b); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%+v: %v, want an error saying %q", tt.b, err, tt.says)
		}
		if st := c.BudgetStatus(t0); st.WattsNow != 0 {
			t.Errorf("a refused budget changed what is in force: %+v", st)
		}
	}
	if st := c.BudgetStatus(t0); st.MinDrawW != 1600 {
		t.Errorf("min draw %v, want 1600", st.MinDrawW)
	}
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 3000}); err != nil {
		t.Errorf("3000 W with idle nodes suspended: %v", err)
	}
	// A policy that keeps idle nodes on: every GPU at its minimum limit.
	p, _ := PolicyByName("fifo-firstfit")
	f, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	f.Heartbeat("b", api.Heartbeat{GPUs: h100s("b", 8, 72)}, t0)
	if _, err := f.SetBudget(api.PowerBudget{DefaultW: 3000}); err == nil || !strings.Contains(err.Error(), "minimum possible draw of 3200 W (every GPU at its minimum power limit)") {
		t.Errorf("fifo-firstfit, 3000 W: %v, want the 3200 W floor", err)
	}
}

func TestOverBudgetSeconds(t *testing.T) {
	c := New()
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 400)}, t0) // 3200 W measured
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 2000, Windows: []api.BudgetWindow{
		{Start: "0 13 * * *", End: "0 14 * * *", Watts: 4000}}}); err != nil {
		t.Fatal(err)
	}
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 100)}, t0.Add(10*time.Second)) // 10 s over
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 400)}, t0.Add(20*time.Second)) // 800 W: under
	st := c.BudgetStatus(t0.Add(20 * time.Second))
	if st.OverBudgetS != 10 || st.WattsNow != 2000 || st.Window != -1 || st.MeasuredW != 3200 {
		t.Errorf("status %+v: want 10 s over, 2000 W in force, 3200 W measured", st)
	}
	// At 13:00 the window raises it to 4000 W: 3200 W is under.
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 400)}, t0.Add(time.Hour))
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 400)}, t0.Add(time.Hour+30*time.Second))
	st = c.BudgetStatus(t0.Add(time.Hour + 30*time.Second))
	if st.WattsNow != 4000 || st.Window != 0 || st.OverBudgetS != 10+3600-20 {
		t.Errorf("status %+v: want the window's 4000 W and %v s over", st, 10+3600-20)
	}
}

func TestProfileFittedStoredAndInherited(t *testing.T) {
	c := New()
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	j, _ := c.Submit(powerSpec("resnet", api.PolicyBalanced, 1), t0)
	c.Schedule(t0)
	reply, _ := c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0.Add(time.Second))
	if len(reply.Run) != 1 || !reply.Run[0].Profile {
		t.Fatalf("run %+v: want the job with profile set", reply.Run)
	}
	// Profiling: the job gets the maximum limit as its ceiling.
	if l := reply.LimitsW[reply.Run[0].GPUIndices[0]]; l != 700 {
		t.Errorf("profiling ceiling %v W, want 700", l)
	}
	truth := power.JobCurve{UncappedW: 450, MaxThroughput: 800, A: 0.3, K: 3}
	prof := []api.ProfileSample{{LimitW: 700, Throughput: 800, PowerW: 450}}
	for l := 425.0; l >= 200; l -= 25 {
		prof = append(prof, api.ProfileSample{LimitW: l, Throughput: truth.ThroughputAt(l), PowerW: l})
	}
	report := api.JobReport{ID: j.ID, State: api.StateRunning, Profile: prof}
	reply, ch := c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72), Jobs: []api.JobReport{report}}, t0.Add(2*time.Second))
	got, _ := c.Job(j.ID)
	pc := got.PowerCurve
	if pc == nil || pc.From != j.ID || pc.Samples != 11 || !within(pc.A, 0.3, 0.01) || !within(pc.K, 3, 0.1) || !within(pc.MaxThroughput, 800, 1) {
		t.Fatalf("curve %+v (error %q)", pc, got.ProfileError)
	}
	if len(ch.Jobs) == 0 {
		t.Errorf("the fitted job must be stored")
	}
	if len(reply.Run) != 0 {
		t.Errorf("run %+v: a job the agent reports running is not sent again", reply.Run)
	}
	// An agent that lost the job (it stops reporting it) gets it again,
	// no longer asked to profile.
	if again, _ := c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0.Add(3*time.Second)); len(again.Run) != 1 || again.Run[0].Profile {
		t.Errorf("run %+v: want the job again, not profiled", again.Run)
	}
	wantBal := power.OperatingPointW(truth, 200, 700, api.PolicyBalanced, 0.1)
	if l := reply.LimitsW[got.GPUIndices[0]]; !within(l, wantBal, 3) {
		t.Errorf("after profiling the limit is %v W, want the balanced point %v W", l, wantBal)
	}
	// The same name and project later starts from the curve; another project does not.
	again, _ := c.Submit(powerSpec("resnet", api.PolicyBalanced, 1), t0.Add(time.Minute))
	other := powerSpec("resnet", api.PolicyBalanced, 1)
	other.Project = "elsewhere"
	fresh, _ := c.Submit(other, t0.Add(time.Minute))
	if again.PowerCurve == nil || again.PowerCurve.From != j.ID || fresh.PowerCurve != nil {
		t.Errorf("repeat %+v, other project %+v", again.PowerCurve, fresh.PowerCurve)
	}
	// A profile that cannot be fitted is an error kept with the job, not a retry.
	bad, _ := c.Submit(powerSpec("odd", api.PolicyBalanced, 1), t0.Add(time.Minute))
	c.Schedule(t0.Add(time.Minute))
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0.Add(61*time.Second))
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72), Jobs: []api.JobReport{{ID: bad.ID, State: api.StateRunning,
		Profile: []api.ProfileSample{{LimitW: 700, Throughput: 1, PowerW: 450}}}}}, t0.Add(62*time.Second))
	if b, _ := c.Job(bad.ID); b.PowerCurve != nil || !strings.Contains(b.ProfileError, "at least two") {
		t.Errorf("one-sample profile: curve %+v, error %q", b.PowerCurve, b.ProfileError)
	}
}

func within(got, want, tol float64) bool { return got >= want-tol && got <= want+tol }

func TestPowerConfigValidate(t *testing.T) {
	if err := DefaultPowerConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []PowerConfig{{MaxSlowdown: 0, AdmitRel: 0.8}, {MaxSlowdown: -0.1, AdmitRel: 0.8}, {MaxSlowdown: 0.1, AdmitRel: 1.5}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// After a restart the curves still pass to repeated jobs: the index is
// rebuilt from the stored jobs, and the latest curve of a name wins.
func TestCurveInheritedAfterRestore(t *testing.T) {
	c := New()
	old := powerSpec("resnet", api.PolicyBalanced, 1)
	c.Restore([]api.Job{
		{ID: "j-3", Spec: old, State: api.StateSucceeded, PowerCurve: &api.PowerCurve{A: 0.3, From: "j-3"}},
		{ID: "j-9", Spec: old, State: api.StateSucceeded, PowerCurve: &api.PowerCurve{A: 0.4, From: "j-9"}},
		{ID: "j-5", Spec: old, State: api.StateSucceeded, PowerCurve: &api.PowerCurve{A: 0.2, From: "j-5"}},
	}, nil)
	j, err := c.Submit(old, t0)
	if err != nil {
		t.Fatal(err)
	}
	if j.PowerCurve == nil || j.PowerCurve.From != "j-9" {
		t.Fatalf("inherited %+v, want j-9's curve (the latest)", j.PowerCurve)
	}
}

// nodePower is a node's power state as Nodes reports it.
func nodePower(c *Core, name string) string {
	for _, n := range c.Nodes() {
		if n.Name == name {
			return n.Power
		}
	}
	return ""
}

// TestBudgetSuspendsIdleNodes: two awake H100 nodes, a balanced 4-GPU job
// and a 2200 W budget. With both nodes awake the job's 4 x 409 W plus 12
// idle GPUs x 72 W is 2500 W: the budget would hold the job below its
// operating point, so the idle node b is suspended (before its idle
// timeout) and the job runs at its operating point (4 x 409 + 4 x 72 = 1924 W).
func TestBudgetSuspendsIdleNodes(t *testing.T) {
	c := New()
	c.Power.Profile = false
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
	c.Heartbeat("b", api.Heartbeat{GPUs: h100s("b", 8, 72)}, t0)
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 2200}); err != nil {
		t.Fatal(err)
	}
	s := powerSpec("j", api.PolicyBalanced, 4)
	s.Workload.Synthetic.Utilization = 1
	j, _ := c.Submit(s, t0)
	c.Schedule(t0)
	c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0.Add(time.Second))
	got, _ := c.Job(j.ID)
	if got.State != api.StateRunning || got.Node != "a" {
		t.Fatalf("job %s on %q, want running on a", got.State, got.Node)
	}
	if p := nodePower(c, "b"); p != api.PowerSuspended {
		t.Errorf("idle node b is %q, want suspended: the budget needs its idle draw", p)
	}
	if p := nodePower(c, "a"); p == api.PowerSuspended {
		t.Errorf("node a, running the job, is suspended")
	}
	m, _ := power.ModelFor("h100")
	want := power.OperatingPointW(power.ModelCurve(m, 1), 200, 700, api.PolicyBalanced, 0)
	if got.PowerLimitW != want {
		t.Errorf("job limit %v W, want its operating point %v W", got.PowerLimitW, want)
	}
	if st := c.BudgetStatus(t0.Add(time.Second)); st.AllocatedW > 2200 {
		t.Errorf("allocated %v W over the 2200 W budget", st.AllocatedW)
	}
}

// budgetedH100s is a core under the energy policy with multi-node jobs, no
// profiling, idle 8-GPU H100 nodes and a budget of budgetW.
func budgetedH100s(t *testing.T, budgetW float64, nodes ...string) *Core {
	t.Helper()
	p, _ := PolicyByName("energy")
	p.MultiNode = true
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.Power.Profile = false
	for _, n := range nodes {
		c.Heartbeat(n, api.Heartbeat{GPUs: h100s(n, 8, 72)}, t0)
	}
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: budgetW}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnrunnableUnderBudget: a 16-GPU job on two H100 nodes under a 3000 W
// budget draws 3200 W at its minimum limits: it waits with a reason that
// says it can never run under this budget, and a 1-GPU job still starts.
func TestUnrunnableUnderBudget(t *testing.T) {
	c := budgetedH100s(t, 3000, "a", "b")
	big, _ := c.Submit(powerSpec("big", api.PolicyBalanced, 16), t0)
	small, _ := c.Submit(powerSpec("small", api.PolicyBalanced, 1), t0)
	c.Schedule(t0)
	b, _ := c.Job(big.ID)
	s, _ := c.Job(small.ID)
	if b.State != api.StateQueued || !strings.HasPrefix(b.Reason, UnrunnablePrefix) || !strings.Contains(b.Reason, "3200 W") {
		t.Errorf("16-GPU job %s, reason %q: want queued, %q... 3200 W", b.State, b.Reason, UnrunnablePrefix)
	}
	if s.State != api.StateRunning {
		t.Errorf("1-GPU job %s (%s), want running", s.State, s.Reason)
	}
}

// TestLargeJobStartsAlone: a 16-GPU job under a 3500 W budget gets at most
// 3500/16 = 219 W per GPU, about 65% of its balanced speed, below AdmitRel's
// 80% however empty the cluster is. It starts anyway on an empty cluster
// (what it would get alone is the bar), and a small job queued behind it
// waits, since starting it would slow the big one below that.
func TestLargeJobStartsAlone(t *testing.T) {
	c := budgetedH100s(t, 3500, "a", "b", "c")
	big, _ := c.Submit(powerSpec("big", api.PolicyBalanced, 16), t0)
	small, _ := c.Submit(powerSpec("small", api.PolicyBalanced, 1), t0.Add(time.Second))
	c.Schedule(t0.Add(time.Second))
	b, _ := c.Job(big.ID)
	s, _ := c.Job(small.ID)
	if b.State != api.StateRunning {
		t.Fatalf("16-GPU job %s (%s), want running: nothing else runs", b.State, b.Reason)
	}
	if s.State != api.StateQueued || !strings.Contains(s.Reason, "waiting for power") {
		t.Errorf("1-GPU job %s (%q), want waiting for power", s.State, s.Reason)
	}
}

// While a job waits for GPUs, a running balanced job runs at full speed
// (Policy.HurryWhenQueued); once nothing waits, it is back at its balanced
// limit. A policy without the option keeps it balanced throughout.
func TestBalancedJobHurriesWhileAJobWaits(t *testing.T) {
	h100, _ := power.ModelFor("h100")
	wantBal := power.OperatingPointW(power.ModelCurve(h100, 0.9), 200, 700, api.PolicyBalanced, 0.1)
	for _, tc := range []struct {
		hurry               bool
		whileWaiting, after float64
	}{
		{true, 700, wantBal},
		{false, wantBal, wantBal},
	} {
		t.Run(fmt.Sprintf("hurry=%v", tc.hurry), func(t *testing.T) {
			p := energyPolicy()
			p.HurryWhenQueued = tc.hurry
			c, err := NewWithPolicy(p)
			if err != nil {
				t.Fatal(err)
			}
			c.Power.Profile = false
			c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, t0)
			bal, _ := c.Submit(powerSpec("b", api.PolicyBalanced, 4), t0)
			wait, _ := c.Submit(powerSpec("w", api.PolicyBalanced, 6), t0)
			c.Schedule(t0)
			limit := func(at time.Time) float64 {
				t.Helper()
				reply, _ := c.Heartbeat("a", api.Heartbeat{GPUs: h100s("a", 8, 72)}, at)
				j, _ := c.Job(bal.ID)
				for _, i := range j.GPUIndices {
					if reply.LimitsW[i] != j.PowerLimitW {
						t.Errorf("GPU %d at %v W, job recorded at %v W", i, reply.LimitsW[i], j.PowerLimitW)
					}
				}
				if hurried := j.PowerNote == HurryNote; hurried != (j.PowerLimitW == 700 && tc.hurry) {
					t.Errorf("at %v W the job's power note is %q", j.PowerLimitW, j.PowerNote)
				}
				return j.PowerLimitW
			}
			if w, _ := c.Job(wait.ID); w.State != api.StateQueued {
				t.Fatalf("job w is %s, want it waiting for GPUs", w.State)
			}
			if got := limit(t0.Add(time.Second)); got != tc.whileWaiting {
				t.Errorf("while w waits: balanced job at %v W, want %v", got, tc.whileWaiting)
			}
			if _, err := c.Cancel(wait.ID, t0.Add(2*time.Second)); err != nil {
				t.Fatal(err)
			}
			c.Schedule(t0.Add(2 * time.Second))
			if got := limit(t0.Add(3 * time.Second)); got != tc.after {
				t.Errorf("with nothing waiting: balanced job at %v W, want %v", got, tc.after)
			}
		})
	}
}

// Under a budget, a queued job is admitted if every running job keeps 80% of
// its own operating speed: while jobs hurry (another waits for GPUs), that is
// still their balanced speed, not the full speed they hurry at.
func TestAdmissionProtectsOwnPointWhileHurrying(t *testing.T) {
	h100, _ := power.ModelFor("h100")
	// Two balanced jobs on 6 GPUs at the limit that gives 78.5% of full
	// speed, 86% of balanced speed, with 2 idle GPUs: just the budget.
	l := h100.LimitForRelW(0.9, 0.785)
	c := budgetedH100s(t, 6*h100.DrawW(0.9, l)+2*h100.IdleW+1, "a")
	long := powerSpec("r", api.PolicyBalanced, 4)
	long.Walltime = &api.Duration{Duration: time.Hour} // s ends long before it: backfill lets it past w
	run, _ := c.Submit(long, t0)
	c.Schedule(t0)
	wait, _ := c.Submit(powerSpec("w", api.PolicyBalanced, 8), t0.Add(time.Second))
	c.Schedule(t0.Add(time.Second)) // w waits for GPUs: r hurries
	if j, _ := c.Job(wait.ID); j.State != api.StateQueued || !c.pw.hurry {
		t.Fatalf("job w %s, hurry %v: want it waiting for GPUs and r hurrying", j.State, c.pw.hurry)
	}
	short := powerSpec("s", api.PolicyBalanced, 2)
	short.Walltime = &api.Duration{Duration: time.Minute}
	small, _ := c.Submit(short, t0.Add(2*time.Second))
	c.Schedule(t0.Add(2 * time.Second))
	if j, _ := c.Job(small.ID); j.State != api.StateRunning {
		t.Errorf("job s %s (%s): want it admitted, job %s keeping 86%% of its balanced speed", j.State, j.Reason, run.ID)
	}
}
