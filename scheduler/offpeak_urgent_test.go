package scheduler

import (
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// An urgent deferrable job that needs two whole 2-GPU nodes arrives when
// one node is busy (its job past its 1 h estimate) and the other is
// suspended: the ITP replays' 23 h, 32-GPU jobs with half an hour of
// slack. The suspended node is woken at once, so its wake-up runs while the
// job waits for the busy node, and it is not suspended again when it has
// stood idle past the idle timeout; when the busy node frees, the job
// starts that instant. Before holdForUrgent the sleeping node was woken
// only once the busy one was free, and the job started a wake-up (5 min)
// late, or, had the wait been longer than the idle timeout after an early
// wake, found it suspended again.
func TestUrgentGangJobWakesReservedNodesWhileItWaits(t *testing.T) {
	c := multiNodeOffpeakCore(t, true)
	t0 := at("2026-11-26 09:00")
	c.SetTariff(peakPlan(t), t0)
	for _, n := range []string{"n1", "n2"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: gpus(n, 2, 0)}, t0)
	}
	o, _ := c.Submit(spec("ordinary", 2, 50), t0)
	c.Schedule(t0)
	busy, _ := c.Job(o.ID)
	if busy.State != api.StateRunning {
		t.Fatalf("ordinary job is %s (%s), want running", busy.State, busy.Reason)
	}
	other := "n2"
	if busy.Node == "n2" {
		other = "n1"
	}
	c.Tick(t0.Add(c.policy.IdleTimeout + time.Minute))
	if got := c.nodes[other].power(); got != api.PowerSuspended {
		t.Fatalf("setup: idle %s is %s, want suspended", other, got)
	}

	// Two hours on, the ordinary job is an hour past its estimate. The
	// urgent job: 50 minutes of work, deadline in 60.
	t1 := t0.Add(2 * time.Hour)
	dl := t1.Add(time.Hour)
	u := deferrable("urgent", 50*time.Minute, &dl)
	u.GPUs = 4
	uj, err := c.Submit(u, t1)
	if err != nil {
		t.Fatal(err)
	}
	c.Schedule(t1)
	if j, _ := c.Job(uj.ID); j.State != api.StateQueued {
		t.Fatalf("urgent job is %s (%s), want queued for the busy node", j.State, j.Reason)
	}
	if got := c.nodes[other].power(); got != api.PowerResuming {
		t.Fatalf("%s is %s while the urgent job waits for it, want resuming (woken now)", other, got)
	}
	// Awake and idle past the idle timeout while the job still waits.
	t2 := t1.Add(c.policy.Node.WakeDelay + c.policy.IdleTimeout + 5*time.Minute)
	c.Tick(t2)
	if got := c.nodes[other].power(); got != api.PowerOn {
		t.Fatalf("%s is %s after %s idle, want on: it is reserved for the urgent job", other, got, t2.Sub(t1))
	}
	// The busy node frees: the urgent job starts now, on both nodes.
	c.Heartbeat(busy.Node, api.Heartbeat{GPUs: gpus(busy.Node, 2, 0),
		Jobs: []api.JobReport{{ID: o.ID, State: api.StateSucceeded}}}, t2)
	c.Schedule(t2)
	j, _ := c.Job(uj.ID)
	if j.State != api.StateRunning || j.StartedAt == nil {
		t.Fatalf("urgent job is %s (%s), want running", j.State, j.Reason)
	}
	if !j.StartedAt.Equal(t2) {
		t.Errorf("urgent job starts at %s, want %s (the moment the busy node freed, no wake-up after it)",
			j.StartedAt.Format(time.TimeOnly), t2.Format(time.TimeOnly))
	}
	if len(j.GangNodes) != 2 {
		t.Errorf("urgent job runs on %v, want both nodes", j.GangNodes)
	}
	// The next pass no longer holds the nodes: nothing waits for them.
	if len(c.keepAwake) != 0 {
		t.Errorf("keepAwake holds %d nodes after the urgent job started, want none", len(c.keepAwake))
	}
}

// Preemption under DeferrableYield, on one 4-GPU node whose GPUs hold two
// released deferrable jobs (2 GPUs each, hours of slack):
//   - an ordinary 4-GPU job waits for them (it does not stop deferrable
//     work, which yields but is not cut short for ordinary work);
//   - an urgent deferrable 4-GPU job stops both; while the second still
//     stops, the GPUs the first freed stay reserved for it: the first
//     victim, requeued, does not take them back;
//   - once both stopped, the urgent job starts, and the victims keep the
//     work they had done (their progress) for the planner's estimate.
func TestUrgentDeferrableJobPreemptsDeferrableWork(t *testing.T) {
	t0 := at("2026-11-26 21:00") // Thursday, off-peak: nothing waits
	c := offPeakCore(t, t0, true, "")
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 4, 0)}, t0) // 4 GPUs
	var victims []string
	for _, name := range []string{"d1", "d2"} {
		s := deferrable(name, 2*time.Hour, nil) // deadline 24 h on
		s.GPUs = 2
		j, _ := c.Submit(s, t0)
		victims = append(victims, j.ID)
	}
	c.Schedule(t0)
	for _, id := range victims {
		if j, _ := c.Job(id); j.State != api.StateRunning {
			t.Fatalf("setup: %s is %s (%s), want running", id, j.State, j.Reason)
		}
	}
	t1 := t0.Add(30 * time.Minute)
	o, _ := c.Submit(spec("ordinary", 4, 50), t1)
	c.Schedule(t1)
	for _, id := range victims {
		if j, _ := c.Job(id); j.Stopping {
			t.Fatalf("an ordinary job preempts deferrable %s; under DeferrableYield it waits", id)
		}
	}
	if _, err := c.Cancel(o.ID, t1); err != nil {
		t.Fatal(err)
	}

	dl := t1.Add(70 * time.Minute) // 50 min of work: urgent
	u := deferrable("urgent", 50*time.Minute, &dl)
	u.GPUs = 4
	uj, _ := c.Submit(u, t1)
	ch := c.Schedule(t1)
	for _, id := range victims {
		if j, _ := c.Job(id); !j.Stopping {
			t.Fatalf("%s is not being stopped for the urgent job (%s); changes: %d jobs", id, j.Reason, len(ch.Jobs))
		}
	}
	// The first victim stops (a quarter done); the pass that follows must
	// not give its GPUs back to it.
	// (An agent reports every job it holds: the one still stopping runs.)
	report := func(id string, at time.Time, still ...string) {
		jobs := []api.JobReport{{ID: id, State: api.StatePreempted, Progress: &api.Progress{Fraction: 0.25}}}
		for _, s := range still {
			jobs = append(jobs, api.JobReport{ID: s, State: api.StateRunning})
		}
		c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 4, 0), Jobs: jobs}, at)
		c.Schedule(at)
	}
	report(victims[0], t1.Add(time.Second), victims[1])
	if j, _ := c.Job(victims[0]); j.State == api.StateRunning {
		t.Fatalf("preempted %s took its GPUs back while the urgent job waits for %s to stop", victims[0], victims[1])
	}
	if j, _ := c.Job(uj.ID); j.State != api.StateQueued {
		v, _ := c.Job(victims[1])
		t.Fatalf("urgent job is %s on %s %v before the second victim stopped, want queued; second victim %s stopping=%v on %s %v", j.State, j.Node, j.GPUIndices, v.State, v.Stopping, v.Node, v.GPUIndices)
	}
	report(victims[1], t1.Add(2*time.Second))
	if j, _ := c.Job(uj.ID); j.State != api.StateRunning {
		t.Fatalf("urgent job is %s (%s) once both victims stopped, want running", j.State, j.Reason)
	}
	for _, id := range victims {
		j, _ := c.Job(id)
		if j.State != api.StateQueued || j.Progress == nil || j.Progress.Fraction != 0.25 {
			t.Errorf("victim %s is %s with progress %+v, want queued with its 0.25 done", id, j.State, j.Progress)
		}
		if e := Estimate(j.Spec, j.Progress); e != 90*time.Minute {
			t.Errorf("victim %s's estimate is %s, want the 90 min left of 2 h", id, e)
		}
	}
}

// An urgent deferrable job on whole nodes (MultiNode: 4 GPUs on two 2-GPU
// nodes) preempts the deferrable jobs holding two nodes; without
// DeadlineFirst the node that also holds an ordinary job is not taken.
func TestUrgentGangJobPreemptsWholeNodes(t *testing.T) {
	c := multiNodeOffpeakCore(t, false)
	t0 := at("2026-11-26 21:00") // off-peak: nothing waits
	c.SetTariff(peakPlan(t), t0)
	for _, n := range []string{"n1", "n2", "n3"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: gpus(n, 2, 0)}, t0)
	}
	var ids []string
	for _, name := range []string{"d1", "d2", "d3", "d4", "d5"} {
		j, _ := c.Submit(deferrable(name, 2*time.Hour, nil), t0) // 1 GPU each
		ids = append(ids, j.ID)
	}
	o, _ := c.Submit(spec("ordinary", 1, 50), t0)
	ids = append(ids, o.ID)
	c.Schedule(t0)
	holds := map[string][]string{}
	for _, id := range ids {
		j, _ := c.Job(id)
		if j.State != api.StateRunning {
			t.Fatalf("setup: %s is %s (%s)", id, j.State, j.Reason)
		}
		holds[j.Node] = append(holds[j.Node], id)
	}
	t1 := t0.Add(10 * time.Minute)
	dl := t1.Add(70 * time.Minute)
	u := deferrable("urgent", 50*time.Minute, &dl)
	u.GPUs = 4
	if _, err := c.Submit(u, t1); err != nil {
		t.Fatal(err)
	}
	c.Schedule(t1)
	oj, _ := c.Job(o.ID)
	stopping := 0
	for node, on := range holds {
		for _, id := range on {
			j, _ := c.Job(id)
			if want := node != oj.Node; j.Stopping != want {
				t.Errorf("%s on %s (with %v): stopping %v, want %v", id, node, on, j.Stopping, want)
			}
			if j.Stopping {
				stopping++
			}
		}
	}
	if stopping != 4 {
		t.Errorf("%d jobs stopping, want the 4 on the two nodes without the ordinary job", stopping)
	}
}

// For an urgent job on whole nodes, a node whose job is past its estimate
// counts as ready no sooner than a suspended node can wake (urgentRank): of
// two busy nodes with overdue jobs and one suspended node, the reservation
// for two nodes takes the suspended one (and wakes it) and one busy one.
// Ranked by the estimates alone, the two busy nodes ("any moment") would
// be reserved and the sleeping one left asleep until one of them freed.
func TestUrgentReservationPrefersWakingOverOverdue(t *testing.T) {
	c := multiNodeOffpeakCore(t, true)
	t0 := at("2026-11-26 09:00")
	c.SetTariff(peakPlan(t), t0)
	for _, n := range []string{"n1", "n2", "n3"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: gpus(n, 2, 0)}, t0)
	}
	for _, name := range []string{"a", "b"} {
		c.Submit(spec(name, 2, 50), t0)
	}
	c.Schedule(t0)
	c.Tick(t0.Add(c.policy.IdleTimeout + time.Minute))
	if got := c.nodes["n3"].power(); got != api.PowerSuspended {
		t.Fatalf("setup: n3 is %s, want suspended (a and b on n1, n2)", got)
	}
	t1 := t0.Add(2 * time.Hour) // a and b an hour past their estimate
	dl := t1.Add(time.Hour)
	u := deferrable("urgent", 50*time.Minute, &dl)
	u.GPUs = 4
	c.Submit(u, t1)
	c.Schedule(t1)
	res := c.lastRes
	if res == nil || !res.nodes[c.nodes["n3"]] || len(res.nodes) != 2 {
		t.Fatalf("reservation %v, want n3 and one busy node", res)
	}
	if got := c.nodes["n3"].power(); got != api.PowerResuming {
		t.Errorf("n3 is %s, want resuming: woken for the urgent job", got)
	}
}

// DeadlineFirst: an urgent deferrable job that finds only ordinary work in
// its way stops it (with the lever) or waits (without). While the victims
// stop, the GPU still free on their node goes to nobody else (here the
// urgent job's reservation holds it too; preemptingFor holds it when the
// reservation lands elsewhere: without it the cluster07 replay preempts
// for ever at one instant), and the urgent job starts once they stopped.
func TestDeadlineFirstPreemptsOrdinaryWork(t *testing.T) {
	for _, lever := range []bool{false, true} {
		t0 := at("2026-11-26 21:00")
		c := offPeakCore(t, t0, true, "")
		c.policy.DeadlineFirst = lever
		c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 4, 0)}, t0)
		o1, _ := c.Submit(spec("o1", 1, 50), t0)
		o2, _ := c.Submit(spec("o2", 2, 50), t0)
		c.Schedule(t0)
		t1 := t0.Add(10 * time.Minute)
		dl := t1.Add(70 * time.Minute)
		u := deferrable("urgent", 50*time.Minute, &dl)
		u.GPUs = 4
		uj, _ := c.Submit(u, t1)
		c.Schedule(t1)
		for _, id := range []string{o1.ID, o2.ID} {
			if j, _ := c.Job(id); j.Stopping != lever {
				t.Fatalf("DeadlineFirst=%v: ordinary %s stopping=%v", lever, id, j.Stopping)
			}
		}
		if !lever {
			continue
		}
		// A job that cannot meet its deadline any more stops no one.
		late := t1.Add(30 * time.Minute)
		l := deferrable("late", 50*time.Minute, &late)
		l.GPUs = 4
		c2 := offPeakCore(t, t0, true, "")
		c2.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 4, 0)}, t0)
		v, _ := c2.Submit(spec("v", 1, 50), t0)
		c2.Schedule(t0)
		c2.Submit(l, t1)
		c2.Schedule(t1)
		if j, _ := c2.Job(v.ID); j.Stopping {
			t.Fatalf("a job that misses its deadline anyway preempts ordinary work")
		}
		q, _ := c.Submit(spec("q", 1, 50), t1.Add(time.Second))
		c.Schedule(t1.Add(time.Second))
		if j, _ := c.Job(q.ID); j.State != api.StateQueued {
			t.Fatalf("q is %s on %s: it took a GPU of the node being freed for the urgent job", j.State, j.Node)
		}
		t2 := t1.Add(time.Minute)
		c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 4, 0), Jobs: []api.JobReport{
			{ID: o1.ID, State: api.StatePreempted}, {ID: o2.ID, State: api.StatePreempted}}}, t2)
		c.Schedule(t2)
		if j, _ := c.Job(uj.ID); j.State != api.StateRunning {
			t.Fatalf("urgent job is %s (%s) once its victims stopped, want running", j.State, j.Reason)
		}
	}
}

// multiNodeOffpeakCore is an energy+cap+offpeak core that places jobs on
// whole nodes (MultiNode), with DeadlineFirst as given, and never times nodes
// out (they heartbeat only when a test says so).
func multiNodeOffpeakCore(t *testing.T, deadlineFirst bool) *Core {
	t.Helper()
	p, err := PolicyByName("energy+cap+offpeak")
	if err != nil {
		t.Fatal(err)
	}
	p.MultiNode, p.DeadlineFirst = true, deadlineFirst
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.NodeTimeout = 0
	return c
}
