package scheduler

import (
	"fmt"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
)

// DefaultDeadline is a deferrable job's deadline after its submission when
// its spec gives none.
const DefaultDeadline = 24 * time.Hour

// DefaultRuntime is the runtime assumed for a deferrable job with neither a
// walltime nor a synthetic duration.
const DefaultRuntime = time.Hour

// StartPlan is the off-peak planner's decision for one deferrable job.
type StartPlan struct {
	// Start is when the job should start; Start == now means now.
	Start    time.Time
	Deadline time.Time
	Runtime  time.Duration
	// At and Now are the rates in force at Start and at now.
	At, Now tariff.Rate
	// CostPerKW is what the planner minimised: the price integral over
	// [Start, Start+Runtime), in currency per kW of draw (before PUE), with
	// the tariff's carbon price on the run's CO2 added.
	CostPerKW float64
	Reason    string
}

// Deferred says whether the plan is to wait.
func (p StartPlan) Deferred(now time.Time) bool { return p.Start.After(now) }

// PlanStart picks when a deferrable job of the given runtime should start so
// that it finishes by its deadline at the least cost (price, plus CO2 at
// the tariff's carbon price when it has one): it tries now and every
// tariff edge up to deadline-runtime, takes the cheapest and, among equally
// cheap starts, the earliest. A job whose deadline cannot be met by waiting
// starts now. It is a pure function of its arguments: the daemon and the
// simulator call it with their own clocks.
func PlanStart(p *tariff.Plan, now, deadline time.Time, runtime time.Duration) StartPlan {
	return PlanStartWithMargin(p, now, deadline, runtime, 0)
}

// PlanStartWithMargin is PlanStart for a job that must start margin earlier
// than its runtime alone needs (the core's urgency margin, deadlineNeed):
// the latest start is deadline - runtime - margin; the cost is the price
// over the runtime.
func PlanStartWithMargin(p *tariff.Plan, now, deadline time.Time, runtime, margin time.Duration) StartPlan {
	plan := StartPlan{Start: now, Deadline: deadline, Runtime: runtime, Now: p.At(now)}
	plan.At = plan.Now
	latest := deadline.Add(-runtime - margin)
	if latest.Before(now) {
		plan.CostPerKW = p.PlanningIntegral(now, now.Add(runtime))
		plan.Reason = fmt.Sprintf("starts now: its deadline %s leaves no time to wait (runtime estimate %s)",
			clock(deadline, now), runtime)
		return plan
	}
	// The cost of a start s is piecewise linear in s, with corners where s
	// or s+runtime crosses a tariff edge (a carbon profile's rows are edges
	// too): its minimum over [now, latest] lies
	// at now, at latest, or at such a corner.
	cands := []time.Time{latest}
	for _, e := range p.Edges(now, latest.Add(runtime)) {
		for _, s := range []time.Time{e, e.Add(-runtime)} {
			if s.After(now) && !s.After(latest) {
				cands = append(cands, s)
			}
		}
	}
	slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
	best := p.PlanningIntegral(now, now.Add(runtime))
	plan.CostPerKW = best
	for _, t := range cands {
		if c := p.PlanningIntegral(t, t.Add(runtime)); c < best-1e-12*max(1, best) {
			best, plan.Start, plan.CostPerKW = c, t, c
		}
	}
	plan.At = p.At(plan.Start)
	if plan.Start.After(now) {
		plan.Reason = fmt.Sprintf("deferred until %s: %s (now %s); deadline %s is safe",
			clock(plan.Start, now), describeRun(p, plan.Start, runtime), describeRun(p, now, runtime), clock(deadline, now))
	} else {
		plan.Reason = fmt.Sprintf("cheapest now (%s); deadline %s", describeRun(p, now, runtime), clock(deadline, now))
	}
	return plan
}

// describeRun says what a run of this length starting at t pays: the rate's
// name and price when one rate covers it, else the average price; with a
// carbon price, the carbon intensity too, since the planner weighed it.
func describeRun(p *tariff.Plan, t time.Time, runtime time.Duration) string {
	segs := p.Segments(t, t.Add(runtime))
	if len(segs) <= 1 {
		r := p.At(t)
		s := fmt.Sprintf("%s %.2f %s/kWh", r.Name, r.PricePerKWh, p.Currency())
		if p.CarbonPrice() > 0 {
			s += fmt.Sprintf(", %.0f gCO2/kWh", r.GCO2PerKWh)
		}
		return s
	}
	h := runtime.Hours()
	s := fmt.Sprintf("%.3f %s/kWh", p.PriceIntegral(t, t.Add(runtime))/h, p.Currency())
	if p.CarbonPrice() > 0 {
		s += fmt.Sprintf(", %.0f gCO2/kWh", p.CarbonIntegral(t, t.Add(runtime))/h)
	}
	return s + " on average"
}

// clock formats t for a reason: "22:00 UTC" today, "Sun 06:00 UTC" within a
// week, "Dec 24 06:00 UTC" later.
func clock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	switch {
	case t.Format(time.DateOnly) == now.Format(time.DateOnly):
		return t.Format("15:04 MST")
	case t.Sub(now) < 6*24*time.Hour && t.After(now):
		return t.Format("Mon 15:04 MST")
	}
	return t.Format("Jan 2 15:04 MST")
}

// Estimate is a job's expected remaining runtime and where it comes from: the
// walltime, the synthetic duration, or DefaultRuntime; less the share a
// preempted job has already done.
func Estimate(spec api.JobSpec, progress *api.Progress) time.Duration {
	d := DefaultRuntime
	switch {
	case spec.Walltime != nil:
		d = spec.Walltime.Duration
	case spec.Workload.Synthetic != nil:
		d = spec.Workload.Synthetic.Duration.Duration
	}
	if progress != nil && progress.Fraction > 0 && progress.Fraction < 1 {
		d = time.Duration(float64(d) * (1 - progress.Fraction))
	}
	return d
}

// Deadline is a job's deadline: its spec's, else DefaultDeadline after its
// submission.
func Deadline(j *api.Job) time.Time {
	if j.Spec.Deadline != nil {
		return *j.Spec.Deadline
	}
	return j.SubmittedAt.Add(DefaultDeadline)
}

// deferJob plans a deferrable waiting job and says whether it waits. A
// deferred job keeps its plan until its start time comes or the tariff
// changes (Replan); then it is planned again.
func (c *Core) deferJob(j *jobRec, now time.Time, ch *Changes) bool {
	if j.State == api.StateDeferred && j.DeferredUntil != nil && now.Before(*j.DeferredUntil) && c.planned[j.ID] == c.planGen {
		return true
	}
	run, margin := c.planRuntime(j)
	plan := PlanStartWithMargin(c.tariff, now, Deadline(&j.Job), run, margin)
	c.planned[j.ID] = c.planGen
	if plan.Deferred(now) {
		if j.State != api.StateDeferred || j.Reason != plan.Reason || j.DeferredUntil == nil || !j.DeferredUntil.Equal(plan.Start) {
			t := plan.Start.UTC()
			j.State, j.DeferredUntil = api.StateDeferred, &t
			j.Reason = "" // setWaiting notes the job
			c.setWaiting(j, plan.Reason, ch)
		}
		return true
	}
	if j.State == api.StateDeferred {
		j.State, j.DeferredUntil, j.Reason = api.StateQueued, nil, ""
		c.setWaiting(j, plan.Reason, ch)
	}
	return false
}

// SetTariff replaces the tariff and re-plans every deferred job at now.
func (c *Core) SetTariff(p *tariff.Plan, now time.Time) Changes {
	c.UseTariff(p)
	return c.Replan(now)
}

// UseTariff replaces the tariff without scheduling (for a core being
// restored); the next Schedule re-plans.
func (c *Core) UseTariff(p *tariff.Plan) {
	c.tariff = p
	c.planGen++
}

// Tariff is the tariff in force.
func (c *Core) Tariff() *tariff.Plan { return c.tariff }

// Replan forgets every deferred job's plan and schedules again: the daemon
// calls it on each tariff window edge.
func (c *Core) Replan(now time.Time) Changes {
	c.planGen++
	var ch Changes
	if c.CheckpointAtPeak {
		c.checkpointForPeak(now, &ch)
	}
	ch.Merge(c.Schedule(now))
	return ch
}

// checkpointForPeak asks the agents to checkpoint and stop every running
// deferrable train job whose remaining work would cost less later with its
// deadline still met; the job is requeued when its agent reports it
// preempted, and the planner then defers it to that cheaper window.
func (c *Core) checkpointForPeak(now time.Time, ch *Changes) {
	for _, j := range c.Jobs() {
		if j.State != api.StateRunning || !j.Spec.Deferrable || j.Spec.Workload.Train == nil || c.preempting[j.ID] || c.jobs[j.ID].Stopping {
			continue
		}
		run, margin := c.planRuntime(c.jobs[j.ID])
		plan := PlanStartWithMargin(c.tariff, now, Deadline(&j), run, margin)
		if !plan.Deferred(now) {
			continue
		}
		c.preempting[j.ID] = true
		jj := c.jobs[j.ID]
		jj.Reason = "checkpointing for cheaper hours: " + plan.Reason
		ch.addJob(jj)
	}
}

// urgencyMargin is the slack a deferrable job keeps before its deadline on
// top of its slowed runtime estimate, for the queue ahead of it and estimate
// error: a node's wake-up, and half the estimate or a quarter of its
// deadline window (submission to deadline: 6 h of the default 24 h),
// whichever is more. A job that needs whole nodes may wait hours for them.
func (c *Core) urgencyMargin(j *jobRec, est time.Duration) time.Duration {
	return c.policy.Node.WakeDelay + max(est/2, Deadline(&j.Job).Sub(j.SubmittedAt)/4)
}

// planRuntime is a deferrable job's runtime for the planner: its estimate
// at the balanced slowdown allowed under a power cap; and its urgency
// margin.
func (c *Core) planRuntime(j *jobRec) (time.Duration, time.Duration) {
	est := Estimate(j.Spec, j.Progress)
	slow := 0.0
	if c.policy.PowerCap {
		slow = c.Power.MaxSlowdown
		if !(slow > 0) {
			slow = power.DefaultMaxSlowdown
		}
	}
	return time.Duration(float64(est) * (1 + slow)), c.urgencyMargin(j, est)
}

// deadlineNeed is how long before its deadline a deferrable job must start:
// planRuntime's runtime plus margin. The planner plans with the same, so a
// job is released no later than it turns urgent.
func (c *Core) deadlineNeed(j *jobRec) time.Duration {
	run, margin := c.planRuntime(j)
	return run + margin
}

// isUrgent says whether a deferrable job under a DeferrableYield policy must
// start now to keep its deadline: it no longer yields, and goes first.
func (c *Core) isUrgent(j *jobRec, now time.Time) bool {
	return c.policy.DeferrableYield && j.Spec.Deferrable && !now.Before(Deadline(&j.Job).Add(-c.deadlineNeed(j)))
}

// sweepDeferrable runs at the start of every pass, over the waiting
// deferrable jobs only. A job not yet planned is planned (deferJob), even
// when the pass will stop before it in the queue. A deferred job whose planned start has come is
// released into the queue at once (so it never shows deferred while it
// waits for GPUs), as is one that turned urgent (its plan was made with an
// estimate that has grown since). It returns the urgent ones, earliest
// deadline first, when the policy yields (DeferrableYield).
func (c *Core) sweepDeferrable(now time.Time, ch *Changes) []*jobRec {
	var out []*jobRec
	for id, j := range c.waitingDeferrable {
		if j.State != api.StateQueued && j.State != api.StateDeferred {
			delete(c.waitingDeferrable, id)
			continue
		}
		if j.State == api.StateQueued && c.planned[id] != c.planGen {
			// Not planned yet (a pass that stops early never reached it).
			c.deferJob(j, now, ch)
		}
		urgent := c.isUrgent(j, now)
		if j.State == api.StateDeferred && (urgent || (j.DeferredUntil != nil && !now.Before(*j.DeferredUntil))) {
			j.State, j.DeferredUntil = api.StateQueued, nil
			j.Reason = "planned off-peak start reached; waiting in the queue"
			if urgent {
				j.Reason = fmt.Sprintf("deadline %s near; going first", clock(Deadline(&j.Job), now))
			}
			ch.addJob(j)
		}
		if urgent {
			out = append(out, j)
		}
	}
	sortByDeadline(out)
	return out
}

// holdForUrgent readies the nodes reserved for an urgent deferrable job
// that cannot start yet: none of them is suspended while it waits
// (keepAwake, until a pass reserves differently), and a suspended one is
// woken as soon as the reservation is due within a wake-up, so the wake
// delay runs while the job waits for the other nodes instead of after it.
// A job with minutes of slack cannot afford the wake-up on top (a 32-GPU
// job waiting for four whole nodes otherwise wakes three of them only once
// the fourth is free).
func (c *Core) holdForUrgent(res *reservation, now time.Time, ch *Changes) {
	nodes := make([]*nodeState, 0, len(res.nodes))
	for n := range res.nodes {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *nodeState) int { return a.ord - b.ord })
	due := !res.at.After(now.Add(c.policy.Node.WakeDelay))
	for _, n := range nodes {
		c.keepAwake[n] = true
		if due && n.power() == api.PowerSuspended {
			c.setPower(n, api.PowerResuming, now)
			c.markAllocStale()
			ch.addNode(n)
		}
	}
}

// sortByDeadline orders jobs earliest deadline first, then by submission.
func sortByDeadline(js []*jobRec) {
	slices.SortFunc(js, func(a, b *jobRec) int {
		if c := Deadline(&a.Job).Compare(Deadline(&b.Job)); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
}

// deferrablePoint sets the operating point of a deferrable job about to
// start on decision d: the policy's DeferrableEnergyPolicy when its
// deadline leaves room for that point's slowdown on d's GPU model, else
// performance when it is urgent, else its own. The spec records the point,
// so the API shows what the job runs at.
func (c *Core) deferrablePoint(j *jobRec, d *decision, now time.Time) {
	if !j.Spec.Deferrable || (!c.policy.DeferrableYield && c.policy.DeferrableEnergyPolicy == "") {
		return
	}
	est := Estimate(j.Spec, j.Progress)
	left := Deadline(&j.Job).Sub(now)
	if p := c.policy.DeferrableEnergyPolicy; p != "" && len(d.nodes) > 0 {
		m := c.modelList[d.nodes[0].model].model
		cv := c.allocJob(&j.Job, m).Curve
		lim := power.OperatingPointW(cv, m.MinLimitW, m.MaxLimitW, p, c.Power.MaxSlowdown)
		if rel := power.CurveRel(lim/cv.UncappedW, cv.A, cv.K); rel > 0 &&
			time.Duration(float64(est)/rel)+c.urgencyMargin(j, est) <= left {
			j.Spec.EnergyPolicy = p
			return
		}
	}
	if c.isUrgent(j, now) {
		j.Spec.EnergyPolicy = api.PolicyPerformance
	}
}
