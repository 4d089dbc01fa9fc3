package scheduler

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power/tariff"
)

// peakPlan: weekdays 08:00-20:00 UTC cost 0.20, the rest 0.08.
func peakPlan(t *testing.T) *tariff.Plan {
	t.Helper()
	p, err := tariff.Compile(tariff.Tariff{Currency: "EUR", PricePerKWh: 0.08, GCO2PerKWh: 250, PUE: 1.2, Name: "off-peak",
		Windows: []tariff.Window{{Name: "peak", Start: "0 8 * * 1-5", End: "0 20 * * 1-5", PricePerKWh: 0.20, GCO2PerKWh: 420}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPlanStart(t *testing.T) {
	p := peakPlan(t)
	for _, tc := range []struct {
		name      string
		now       string
		deadline  string
		runtime   time.Duration
		wantStart string
		reason    string
	}{
		{"peak, night is cheap and safe", "2026-11-26 14:00", "2026-11-27 06:00", 2 * time.Hour, "2026-11-26 20:00",
			"deferred until 20:00 UTC: off-peak 0.08 EUR/kWh (now peak 0.20 EUR/kWh); deadline Fri 06:00 UTC is safe"},
		{"already off-peak", "2026-11-26 21:00", "2026-11-27 06:00", 2 * time.Hour, "2026-11-26 21:00", "cheapest now"},
		{"deadline too close to wait", "2026-11-26 14:00", "2026-11-26 17:00", 2 * time.Hour, "2026-11-26 14:00", "cheapest now"},
		{"deadline already unreachable", "2026-11-26 14:00", "2026-11-26 15:00", 2 * time.Hour, "2026-11-26 14:00",
			"starts now: its deadline 15:00 UTC leaves no time to wait"},
		// Waiting until 20:00 would end at 04:00, past 03:00; starting at
		// 19:00 (the latest start) pays one peak hour and seven off-peak ones.
		{"latest start that meets the deadline", "2026-11-26 14:00", "2026-11-27 03:00", 8 * time.Hour, "2026-11-26 19:00",
			"deferred until 19:00 UTC: 0.095 EUR/kWh on average (now 0.170 EUR/kWh on average)"},
		{"half an hour to the window", "2026-11-26 19:30", "2026-11-27 06:00", 8 * time.Hour, "2026-11-26 20:00", "deferred until 20:00"},
		// Off-peak now, but a 4 h run from 07:00 runs into the 08:00 peak.
		{"a run that would cross into the peak", "2026-11-27 07:00", "2026-11-28 12:00", 4 * time.Hour, "2026-11-27 20:00",
			"deferred until 20:00 UTC: off-peak 0.08 EUR/kWh (now 0.170 EUR/kWh on average)"},
	} {
		plan := PlanStart(p, at(tc.now), at(tc.deadline), tc.runtime)
		if !plan.Start.Equal(at(tc.wantStart)) {
			t.Errorf("%s: start %s, want %s (%s)", tc.name, plan.Start.Format(time.DateTime), tc.wantStart, plan.Reason)
		}
		if !strings.Contains(plan.Reason, tc.reason) {
			t.Errorf("%s: reason %q; want it to contain %q", tc.name, plan.Reason, tc.reason)
		}
		if plan.Start.Add(tc.runtime).After(at(tc.deadline)) && plan.Start.After(at(tc.now)) {
			t.Errorf("%s: deferred to %s, which misses the deadline", tc.name, plan.Start)
		}
	}
}

// carbonPlan: a flat 0.10 EUR/kWh, 400 gCO2/kWh outside a grid operator's
// profile whose midday hours (11:00-15:00 on Nov 26) run on sun at 100 g;
// the planner prices CO2 at perTonne.
func carbonPlan(t *testing.T, perTonne float64) *tariff.Plan {
	t.Helper()
	p, err := tariff.Compile(tariff.Tariff{Currency: "EUR", PricePerKWh: 0.10, GCO2PerKWh: 400, PUE: 1, CarbonPricePerTonne: perTonne,
		CarbonCSV: "time,gco2_per_kwh\n2026-11-26T09:00:00Z,400\n2026-11-26T11:00:00Z,100\n2026-11-26T15:00:00Z,400\n2026-11-26T17:00:00Z,380\n"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// With a carbon price the planner waits for clean hours even at one price;
// without one it starts at once, as nothing is cheaper later.
func TestPlanStartWeighsCarbon(t *testing.T) {
	now, deadline := at("2026-11-26 08:30"), at("2026-11-27 08:30")
	if plan := PlanStart(carbonPlan(t, 0), now, deadline, 2*time.Hour); plan.Deferred(now) {
		t.Errorf("no carbon price: deferred to %s (%s); a flat price should start now", plan.Start, plan.Reason)
	}
	plan := PlanStart(carbonPlan(t, 100), now, deadline, 2*time.Hour)
	if !plan.Start.Equal(at("2026-11-26 11:00")) {
		t.Fatalf("carbon price 100 EUR/t: start %s, want 11:00 (%s)", plan.Start.Format(time.DateTime), plan.Reason)
	}
	if want := "deferred until 11:00 UTC: default rate 0.10 EUR/kWh, 100 gCO2/kWh (now default rate 0.10 EUR/kWh, 400 gCO2/kWh)"; !strings.HasPrefix(plan.Reason, want) {
		t.Errorf("reason %q; want it to start %q", plan.Reason, want)
	}
	// A 6 h run covers all four clean hours from any start in 09:00-11:00;
	// the earliest of those equally clean starts wins.
	if plan := PlanStart(carbonPlan(t, 100), now, deadline, 6*time.Hour); !plan.Start.Equal(at("2026-11-26 09:00")) {
		t.Errorf("6 h run: start %s (%s)", plan.Start.Format(time.DateTime), plan.Reason)
	}
}

// Among starts that meet the deadline, PlanStart finds the cheapest: checked
// against every start on a one-minute grid, for a two-rate tariff and for a
// carbon-priced profile.
func TestPlanStartIsCheapest(t *testing.T) {
	for _, p := range []*tariff.Plan{peakPlan(t), carbonPlan(t, 100)} {
		planStartIsCheapest(t, p)
	}
}

func planStartIsCheapest(t *testing.T, p *tariff.Plan) {
	now := at("2026-11-26 09:13")
	for _, runtime := range []time.Duration{30 * time.Minute, 3 * time.Hour, 11 * time.Hour} {
		for _, dl := range []time.Duration{4 * time.Hour, 12 * time.Hour, 20 * time.Hour, 40 * time.Hour} {
			deadline := now.Add(dl)
			plan := PlanStart(p, now, deadline, runtime)
			best := math.Inf(1)
			for s := now; !s.Add(runtime).After(deadline); s = s.Add(time.Minute) {
				best = min(best, p.PlanningIntegral(s, s.Add(runtime)))
			}
			if deadline.Add(-runtime).Before(now) {
				best = p.PlanningIntegral(now, now.Add(runtime))
			}
			if math.Abs(plan.CostPerKW-best) > 1e-9 {
				t.Errorf("runtime %s deadline +%s: plan costs %.4f per kW, the cheapest start costs %.4f", runtime, dl, plan.CostPerKW, best)
			}
		}
	}
}

func deferrable(name string, d time.Duration, deadline *time.Time) api.JobSpec {
	s := spec(name, 1, 50)
	s.Deferrable = true
	s.Workload.Synthetic.Duration = api.Duration{Duration: d}
	s.Deadline = deadline
	return s
}

// The core defers a deferrable job in the peak, keeps it deferred as the
// clock moves, starts it when the window opens, and never defers an ordinary
// job.
func TestCoreDefersUntilOffPeak(t *testing.T) {
	c := New()
	now := at("2026-11-26 14:00") // Thursday, peak
	c.SetTariff(peakPlan(t), now)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0)}, now)
	dl := at("2026-11-27 06:00")
	d, _ := c.Submit(deferrable("night", 2*time.Hour, &dl), now)
	o, _ := c.Submit(spec("now", 1, 50), now)
	c.Schedule(now)
	if j, _ := c.Job(o.ID); j.State != api.StateRunning {
		t.Fatalf("ordinary job is %s, want running", j.State)
	}
	j, _ := c.Job(d.ID)
	if j.State != api.StateDeferred || j.DeferredUntil == nil || !j.DeferredUntil.Equal(at("2026-11-26 20:00")) {
		t.Fatalf("deferrable job: %s until %v (%s); want deferred until 20:00", j.State, j.DeferredUntil, j.Reason)
	}
	if want := "deferred until 20:00 UTC: off-peak 0.08 EUR/kWh"; !strings.HasPrefix(j.Reason, want) {
		t.Errorf("reason %q, want it to start %q", j.Reason, want)
	}
	for _, tick := range []string{"2026-11-26 16:00", "2026-11-26 19:59"} {
		now = at(tick)
		c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0)}, now)
		c.Tick(now) // schedulerd ticks every second; heartbeats alone do not schedule
		if j, _ := c.Job(d.ID); j.State != api.StateDeferred {
			t.Fatalf("at %s the job is %s, want still deferred", tick, j.State)
		}
	}
	now = at("2026-11-26 20:00")
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0)}, now)
	c.Tick(now)
	if j, _ := c.Job(d.ID); j.State != api.StateRunning || j.DeferredUntil != nil {
		t.Fatalf("at 20:00 the job is %s (until %v), want running", j.State, j.DeferredUntil)
	}
}

// A tariff change re-plans deferred jobs at once.
func TestSetTariffReplans(t *testing.T) {
	c := New()
	now := at("2026-11-26 14:00")
	c.SetTariff(peakPlan(t), now)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0)}, now)
	d, _ := c.Submit(deferrable("night", time.Hour, nil), now)
	c.Schedule(now)
	if j, _ := c.Job(d.ID); j.State != api.StateDeferred {
		t.Fatalf("job is %s, want deferred", j.State)
	}
	flat, _ := tariff.Compile(tariff.Default())
	ch := c.SetTariff(flat, now.Add(time.Minute))
	if j, _ := c.Job(d.ID); j.State != api.StateRunning {
		t.Fatalf("after a flat tariff the job is %s (%s), want running", j.State, j.Reason)
	}
	if len(ch.Jobs) != 1 {
		t.Errorf("changes list %d jobs, want the started one", len(ch.Jobs))
	}
}

func TestEstimate(t *testing.T) {
	s := spec("x", 1, 50) // synthetic, 1 min
	if got := Estimate(s, nil); got != time.Minute {
		t.Errorf("synthetic: %s", got)
	}
	s.Walltime = &api.Duration{Duration: 2 * time.Hour}
	if got := Estimate(s, &api.Progress{Fraction: 0.25}); got != 90*time.Minute {
		t.Errorf("walltime 2h, a quarter done: %s, want 1h30m", got)
	}
	s.Walltime, s.Workload.Synthetic = nil, nil
	if got := Estimate(s, nil); got != DefaultRuntime {
		t.Errorf("no estimate: %s, want %s", got, DefaultRuntime)
	}
}

// With CheckpointAtPeak, a running deferrable train job is checkpointed when
// the peak starts, then deferred to the next cheap window; an ordinary job
// and a job that must finish now keep running.
func TestCheckpointAtPeak(t *testing.T) {
	c := New()
	c.CheckpointAtPeak = true
	now := at("2026-11-26 06:00") // Thursday, off-peak
	c.SetTariff(peakPlan(t), now)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0)}, now)
	train := func(name string, walltime time.Duration, deadline string) api.JobSpec {
		s := spec(name, 1, 50)
		s.Workload = api.Workload{Train: &api.TrainSpec{Epochs: 10}}
		s.Deferrable, s.Walltime = true, &api.Duration{Duration: walltime}
		dl := at(deadline)
		s.Deadline = &dl
		return s
	}
	// Both are expected to end by 07:00 (07:35 with the planner's margin,
	// deadlineNeed), before the peak; they run late.
	long, _ := c.Submit(train("long", time.Hour, "2026-11-27 12:00"), now)
	tight, _ := c.Submit(train("tight", time.Hour, "2026-11-26 09:20"), now)
	plain, _ := c.Submit(spec("plain", 1, 50), now)
	c.Schedule(now)
	for _, id := range []string{long.ID, tight.ID, plain.ID} {
		if j, _ := c.Job(id); j.State != api.StateRunning {
			t.Fatalf("%s is %s at 06:00 (%s), want running", id, j.State, j.Reason)
		}
	}
	now = at("2026-11-26 08:00")
	// long has half its work left (30 min: cheaper tonight); tight's deadline
	// leaves no room to wait.
	running := []api.JobReport{{ID: long.ID, State: api.StateRunning, Progress: &api.Progress{Fraction: 0.5}},
		{ID: tight.ID, State: api.StateRunning}, {ID: plain.ID, State: api.StateRunning}}
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0), Jobs: running}, now)
	c.Replan(now) // the cron entry on the peak's start
	reply, _ := c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0), Jobs: running}, now)
	if len(reply.Preempt) != 1 || reply.Preempt[0] != long.ID {
		t.Fatalf("preempt %v, want [%s]", reply.Preempt, long.ID)
	}
	for _, a := range reply.Run {
		if a.ID == long.ID {
			t.Errorf("the job being checkpointed is still in Run")
		}
	}
	// The agent checkpoints it and says so.
	running[0].State = api.StatePreempted
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 8, 0), Jobs: running}, now.Add(time.Second))
	j, _ := c.Job(long.ID)
	if j.State != api.StateDeferred || !strings.HasPrefix(j.Reason, "deferred until 20:00 UTC") {
		t.Errorf("after its checkpoint the job is %s (%s), want deferred until 20:00", j.State, j.Reason)
	}
	for _, id := range []string{tight.ID, plain.ID} {
		if j, _ := c.Job(id); j.State != api.StateRunning {
			t.Errorf("%s is %s, want still running", id, j.State)
		}
	}
}
