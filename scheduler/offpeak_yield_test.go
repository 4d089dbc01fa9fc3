package scheduler

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// offPeakCore is a core under energy+cap+offpeak (levers as given) with one
// 2-GPU node, the peak tariff, at now.
func offPeakCore(t *testing.T, now time.Time, yield bool, point string) *Core {
	t.Helper()
	p, err := PolicyByName("energy+cap+offpeak")
	if err != nil {
		t.Fatal(err)
	}
	p.DeferrableYield, p.DeferrableEnergyPolicy = yield, point
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTariff(peakPlan(t), now)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 2, 0)}, now)
	return c
}

func whole(s api.JobSpec) api.JobSpec { s.GPUs = 2; return s }

// Off-peak (nothing to wait for), a deferrable job submitted first and an
// ordinary job submitted a minute later want the same node. Under
// DeferrableYield the ordinary job starts and the deferrable one fills in
// later; without it the queue's order (submission) wins.
func TestDeferrableJobYieldsToOrdinaryOnes(t *testing.T) {
	now := at("2026-11-26 21:00") // Thursday, off-peak
	for _, yield := range []bool{true, false} {
		c := offPeakCore(t, now, yield, "")
		d, _ := c.Submit(whole(deferrable("later", time.Hour, nil)), now)
		o, _ := c.Submit(whole(spec("now", 2, 50)), now.Add(time.Minute))
		c.Schedule(now.Add(time.Minute))
		first, second := o.ID, d.ID
		if !yield {
			first, second = d.ID, o.ID
		}
		if j, _ := c.Job(first); j.State != api.StateRunning {
			t.Errorf("yield=%v: %s is %s (%s), want running", yield, j.Spec.Name, j.State, j.Reason)
		}
		if j, _ := c.Job(second); j.State != api.StateQueued {
			t.Errorf("yield=%v: %s is %s, want queued behind the other", yield, j.Spec.Name, j.State)
		}
	}
}

// A deferrable job whose deadline nears (20 minutes left for a 10-minute
// run: less than its runtime at the balanced slowdown, 11 min, plus the
// margin, 5 min wake-up + 5 min) goes
// ahead of an ordinary job submitted before it, at the performance point,
// so it does not lose speed to the cap.
func TestUrgentDeferrableJobGoesFirstAtPerformance(t *testing.T) {
	now := at("2026-11-26 14:00") // peak: without urgency it would wait
	c := offPeakCore(t, now, true, api.PolicyEfficient)
	o, _ := c.Submit(whole(spec("ordinary", 2, 50)), now.Add(-time.Minute))
	dl := now.Add(20 * time.Minute)
	d, _ := c.Submit(whole(deferrable("urgent", 10*time.Minute, &dl)), now)
	c.Schedule(now)
	j, _ := c.Job(d.ID)
	if j.State != api.StateRunning {
		t.Fatalf("urgent deferrable job is %s (%s), want running", j.State, j.Reason)
	}
	if j.Spec.EnergyPolicy != api.PolicyPerformance {
		t.Errorf("urgent deferrable job runs %s, want performance", j.Spec.EnergyPolicy)
	}
	if j, _ := c.Job(o.ID); j.State != api.StateQueued {
		t.Errorf("ordinary job is %s, want queued behind the urgent one", j.State)
	}
}

// With a 24 h deadline, a deferrable job of one hour has room for the
// efficient point's slowdown (about 1.5x on an H100): it starts there. With
// the lever off it keeps its own (balanced) point.
func TestDeferrableJobRunsEfficientWhenItsDeadlineAllows(t *testing.T) {
	now := at("2026-11-26 21:00")
	for _, point := range []string{api.PolicyEfficient, ""} {
		c := offPeakCore(t, now, true, point)
		d, _ := c.Submit(whole(deferrable("slack", time.Hour, nil)), now)
		c.Schedule(now)
		j, _ := c.Job(d.ID)
		want := api.PolicyEfficient
		if point == "" {
			want = api.PolicyBalanced
		}
		if j.State != api.StateRunning || j.Spec.EnergyPolicy != want {
			t.Errorf("lever %q: job %s at %q, want running at %s", point, j.State, j.Spec.EnergyPolicy, want)
		}
	}
	// 75 minutes before its deadline, a one-hour job has no room for 1.5x.
	c := offPeakCore(t, now, true, api.PolicyEfficient)
	dl := now.Add(75 * time.Minute)
	d, _ := c.Submit(whole(deferrable("tight", time.Hour, &dl)), now)
	c.Schedule(now)
	if j, _ := c.Job(d.ID); j.Spec.EnergyPolicy == api.PolicyEfficient {
		t.Errorf("a job with 75 minutes for an hour's work runs efficient (%s)", j.State)
	}
}

// When a deferred job's planned start comes while every GPU is busy and the
// pass stops at the head of the queue, the job shows queued, not deferred.
func TestDeferredJobWhoseStartHasComeShowsQueued(t *testing.T) {
	c := New()
	now := at("2026-11-26 14:00")
	c.SetTariff(peakPlan(t), now)
	freeNode(t, c, "n1", 8, 0, now)
	c.Submit(spec("ahead", 1, 50), now)
	d, _ := c.Submit(deferrable("night", time.Hour, nil), now)
	c.Schedule(now)
	if j, _ := c.Job(d.ID); j.State != api.StateDeferred {
		t.Fatalf("at 14:00 the job is %s, want deferred", j.State)
	}
	now = at("2026-11-26 20:00")
	ch := c.Tick(now)
	j, _ := c.Job(d.ID)
	if j.State != api.StateQueued || j.DeferredUntil != nil || !strings.Contains(j.Reason, "off-peak start reached") {
		t.Errorf("at 20:00 with no GPU free the job is %s until %v (%s), want queued", j.State, j.DeferredUntil, j.Reason)
	}
	found := false
	for _, cj := range ch.Jobs {
		found = found || cj.ID == d.ID
	}
	if !found {
		t.Errorf("the release is not among the tick's changes, so it would not be stored")
	}
}

// The margin moves the latest start earlier; the reason names the real
// deadline, and the cost is priced over the runtime alone.
func TestPlanStartWithMargin(t *testing.T) {
	p := peakPlan(t)
	now, dl := at("2026-11-26 14:00"), at("2026-11-27 00:30")
	if got := PlanStartWithMargin(p, now, dl, 2*time.Hour, 0); !got.Start.Equal(at("2026-11-26 20:00")) {
		t.Errorf("no margin: start %s, want 20:00", got.Start)
	}
	// 00:30 - 2 h - 3 h = 19:30: half an hour of peak, then off-peak.
	got := PlanStartWithMargin(p, now, dl, 2*time.Hour, 3*time.Hour)
	if !got.Start.Equal(at("2026-11-26 19:30")) {
		t.Errorf("3 h margin: start %s, want 19:30 (%s)", got.Start, got.Reason)
	}
	if !strings.Contains(got.Reason, "deadline Fri 00:30 UTC") {
		t.Errorf("reason %q does not name the deadline Fri 00:30", got.Reason)
	}
	if want := 0.5*0.20 + 1.5*0.08; math.Abs(got.CostPerKW-want) > 1e-9 {
		t.Errorf("cost per kW %v, want %v (2 h from 19:30)", got.CostPerKW, want)
	}
}
