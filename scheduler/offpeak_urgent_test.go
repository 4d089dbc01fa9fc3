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
	p, err := PolicyByName("energy+cap+offpeak")
	if err != nil {
		t.Fatal(err)
	}
	p.MultiNode = true
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.NodeTimeout = 0 // nodes speak only when something happens
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
	c.Tick(t0.Add(p.IdleTimeout + time.Minute))
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
	t2 := t1.Add(p.Node.WakeDelay + p.IdleTimeout + 5*time.Minute)
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
