package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func spec(name string, gpus, prio int) api.JobSpec {
	s := api.JobSpec{Name: name, User: "alice", GPUs: gpus, Priority: prio,
		Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: time.Minute}, Utilization: 0.9}}}
	s.Default()
	return s
}

// gpus builds n GPUs whose energy counters read energyJ.
func gpus(node string, n int, energyJ float64) []api.GPU {
	out := make([]api.GPU, n)
	for i := range out {
		out[i] = api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", node, i), Model: "H100", EnergyJ: energyJ}
	}
	return out
}

// freeNode registers a node of total GPUs whose first total-free GPUs are
// held by a running filler job (restored, as after a restart).
func freeNode(t *testing.T, c *Core, name string, total, free int, now time.Time) {
	t.Helper()
	c.Heartbeat(name, api.Heartbeat{GPUs: gpus(name, total, 0)}, now)
	if busy := total - free; busy > 0 {
		idx := make([]int, busy)
		for i := range idx {
			idx[i] = i
		}
		c.Restore([]api.Job{{ID: fmt.Sprintf("j-%d", 1000+len(c.jobs)), Spec: spec("filler-"+name, busy, 50),
			State: api.StateRunning, Node: name, GPUIndices: idx, StartedAt: &now}}, nil)
	}
}

func TestPlace(t *testing.T) {
	type node struct {
		name        string
		total, free int
	}
	tests := []struct {
		name       string
		nodes      []node
		need       int
		wantNode   string
		wantGPUs   []int
		wantReason string
	}{
		{"best fit takes the fuller node", []node{{"a", 8, 8}, {"b", 8, 2}}, 2, "b", []int{6, 7}, ""},
		{"tie goes to the first name", []node{{"b", 2, 2}, {"a", 4, 2}}, 1, "a", []int{2}, ""},
		{"too big", []node{{"a", 8, 3}, {"b", 8, 5}}, 8, "", nil, "needs 8 GPUs on one node; the largest free block is 5 (b)"},
		{"no nodes", nil, 1, "", nil, "no node is up; waiting for an agent to register"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			for _, n := range tt.nodes {
				freeNode(t, c, n.name, n.total, n.free, t0)
			}
			j, _ := c.Submit(spec("x", tt.need, 50), t0)
			c.Schedule(t0)
			got, _ := c.Job(j.ID)
			if got.Node != tt.wantNode || fmt.Sprint(got.GPUIndices) != fmt.Sprint(tt.wantGPUs) ||
				!strings.HasPrefix(got.Reason, tt.wantReason) {
				t.Errorf("placed (%q, %v, %q), want (%q, %v, %q)", got.Node, got.GPUIndices, got.Reason, tt.wantNode, tt.wantGPUs, tt.wantReason)
			}
		})
	}
}

func TestSubmitRefusesJobNoNodeFits(t *testing.T) {
	c := New()
	if _, err := c.Submit(spec("early", 16, 50), t0); err != nil {
		t.Fatalf("with no nodes known a job must queue, got %v", err)
	}
	c.Heartbeat("node-a", api.Heartbeat{GPUs: gpus("node-a", 8, 0)}, t0)
	_, err := c.Submit(spec("huge", 16, 50), t0)
	if err == nil || !strings.Contains(err.Error(), "no node has 16 GPUs; the largest has 8") {
		t.Fatalf("err = %v", err)
	}
	if len(c.Jobs()) != 1 {
		t.Fatalf("a refused job must not be stored; have %d jobs", len(c.Jobs()))
	}
}

func TestQueueOrderPriorityThenSubmitTime(t *testing.T) {
	c := New()
	c.Submit(spec("low", 1, 10), t0)
	c.Submit(spec("high", 1, 90), t0.Add(time.Second))
	c.Submit(spec("low2", 1, 10), t0.Add(2*time.Second))
	var names []string
	cur := c.queue.cursor()
	for j := cur.next(); j != nil; j = cur.next() {
		names = append(names, j.Spec.Name)
	}
	if got := strings.Join(names, ","); got != "high,low,low2" {
		t.Fatalf("queue order = %s", got)
	}
}

func TestHeartbeatPlacesAndAttributesEnergy(t *testing.T) {
	c := New()
	job, _ := c.Submit(spec("train", 2, 50), t0)
	reply, ch := c.Heartbeat("node-a", api.Heartbeat{GPUs: gpus("node-a", 4, 1000)}, t0)
	if len(reply.Run) != 1 || reply.Run[0].ID != job.ID || fmt.Sprint(reply.Run[0].GPUIndices) != "[0 1]" {
		t.Fatalf("reply.Run = %+v", reply.Run)
	}
	if got := reply.Run[0].GPUUUIDs; fmt.Sprint(got) != "[GPU-node-a-0 GPU-node-a-1]" {
		t.Fatalf("uuids = %v", got)
	}
	if len(ch.Jobs) != 1 || ch.Jobs[0].State != api.StateRunning || len(ch.Nodes) != 1 {
		t.Fatalf("changes = %+v", ch)
	}
	// 2 s later every counter advanced by 500 J: GPUs 0,1 are the job's, 2,3 idle.
	hb := api.Heartbeat{GPUs: gpus("node-a", 4, 1500),
		Jobs: []api.JobReport{{ID: job.ID, State: api.StateRunning, Progress: &api.Progress{Fraction: 0.5}}}}
	c.Heartbeat("node-a", hb, t0.Add(2*time.Second))
	got, _ := c.Job(job.ID)
	if got.EnergyJ != 1000 {
		t.Errorf("job energy = %v J, want 1000 (2 GPUs x 500 J)", got.EnergyJ)
	}
	if n := c.Nodes()[0]; n.IdleEnergyJ != 1000 {
		t.Errorf("idle energy = %v J, want 1000", n.IdleEnergyJ)
	}
	// It finishes; the last interval still counts for it.
	hb = api.Heartbeat{GPUs: gpus("node-a", 4, 1600),
		Jobs: []api.JobReport{{ID: job.ID, State: api.StateSucceeded}}}
	reply, _ = c.Heartbeat("node-a", hb, t0.Add(4*time.Second))
	got, _ = c.Job(job.ID)
	if got.State != api.StateSucceeded || got.EnergyJ != 1200 || got.FinishedAt == nil {
		t.Errorf("job = %s, %v J", got.State, got.EnergyJ)
	}
	if len(reply.Run) != 0 {
		t.Errorf("a finished job must leave the desired state: %+v", reply.Run)
	}
}

func TestCounterResetCountsNothing(t *testing.T) {
	c := New()
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 1, 5000)}, t0)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 1, 10)}, t0.Add(time.Second))
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 1, 60)}, t0.Add(2*time.Second))
	if e := c.Nodes()[0].IdleEnergyJ; e != 50 {
		t.Fatalf("idle energy = %v, want 50 (the reset interval counts nothing)", e)
	}
}

func TestCancelRunningStopsItAndHoldsGPUsUntilStopped(t *testing.T) {
	c := New()
	a, _ := c.Submit(spec("a", 4, 50), t0)
	b, _ := c.Submit(spec("b", 4, 50), t0)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0)}, t0)
	if j, _ := c.Job(b.ID); j.State != api.StateQueued {
		t.Fatalf("b should wait, is %s", j.State)
	}
	if _, err := c.Cancel(a.ID, t0); err != nil {
		t.Fatal(err)
	}
	running := []api.JobReport{{ID: a.ID, State: api.StateRunning}}
	reply, _ := c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0), Jobs: running}, t0.Add(time.Second))
	if fmt.Sprint(reply.Stop) != "["+a.ID+"]" || len(reply.Run) != 0 {
		t.Fatalf("reply = %+v, want a stop of %s", reply, a.ID)
	}
	if j, _ := c.Job(b.ID); j.State != api.StateQueued {
		t.Fatalf("b must wait until a's GPUs are released, is %s", j.State)
	}
	stopped := []api.JobReport{{ID: a.ID, State: api.StateCancelled}}
	reply, _ = c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0), Jobs: stopped}, t0.Add(2*time.Second))
	if len(reply.Run) != 1 || reply.Run[0].ID != b.ID {
		t.Fatalf("b should start once a stopped: %+v", reply)
	}
	if j, _ := c.Job(a.ID); j.State != api.StateCancelled {
		t.Fatalf("a = %s", j.State)
	}
	if _, err := c.Cancel(a.ID, t0); err == nil {
		t.Fatal("cancelling a cancelled job must fail")
	}
	if _, err := c.Cancel("j-999", t0); err == nil || err.Error() != "job j-999 not found" {
		t.Fatalf("err = %v", err)
	}
}

// A restart between a cancel and the agent's stop must not give the
// cancelled job's GPUs away while its agent still runs it.
func TestCancelledJobHoldsGPUsAcrossRestartUntilStopped(t *testing.T) {
	c := New()
	a, _ := c.Submit(spec("a", 4, 50), t0)
	b, _ := c.Submit(spec("b", 4, 50), t0)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0)}, t0)
	if _, err := c.Cancel(a.ID, t0); err != nil {
		t.Fatal(err)
	}

	restarted := New()
	restarted.Restore(c.Jobs(), c.Nodes()) // what storage holds
	running := []api.JobReport{{ID: a.ID, State: api.StateRunning}}
	reply, _ := restarted.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0), Jobs: running}, t0.Add(time.Second))
	if fmt.Sprint(reply.Stop) != "["+a.ID+"]" || len(reply.Run) != 0 {
		t.Fatalf("reply = %+v, want only a stop of %s", reply, a.ID)
	}
	if j, _ := restarted.Job(b.ID); j.State != api.StateQueued {
		t.Fatalf("b must wait until a's GPUs are released, is %s", j.State)
	}

	reply, ch := restarted.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0)}, t0.Add(2*time.Second))
	if len(reply.Run) != 1 || reply.Run[0].ID != b.ID {
		t.Fatalf("b should start once a is gone: %+v", reply)
	}
	stored := map[string]api.Job{}
	for _, j := range ch.Jobs {
		stored[j.ID] = j
	}
	if j, ok := stored[a.ID]; !ok || j.Stopping || j.State != api.StateCancelled {
		t.Fatalf("a must be stored cancelled and no longer stopping, got %+v (in changes: %v)", j, ok)
	}
	// A second restart does not hold a's GPUs again.
	again := New()
	again.Restore(restarted.Jobs(), restarted.Nodes())
	if j, _ := again.Job(a.ID); j.Stopping {
		t.Fatalf("after a second restart a must not be stopping: %+v", j)
	}
}

func TestSilentNodeGoesDownAndItsJobsRequeue(t *testing.T) {
	c := New()
	j, _ := c.Submit(spec("a", 1, 50), t0)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 1, 0)}, t0)
	c.Heartbeat("n2", api.Heartbeat{GPUs: gpus("n2", 1, 0)}, t0.Add(25*time.Second))
	ch := c.Tick(t0.Add(31 * time.Second))
	got, _ := c.Job(j.ID)
	// Requeued from n1 and placed at once on n2.
	if got.State != api.StateRunning || got.Node != "n2" {
		t.Fatalf("job = %s on %q, want running on n2", got.State, got.Node)
	}
	if c.Nodes()[0].State != api.NodeDown || len(ch.Nodes) != 1 || len(ch.Jobs) != 1 {
		t.Fatalf("nodes = %+v, changes = %+v", c.Nodes(), ch)
	}
	// n1 comes back still running the job: it is told to stop it.
	reply, _ := c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 1, 0),
		Jobs: []api.JobReport{{ID: j.ID, State: api.StateRunning}}}, t0.Add(32*time.Second))
	if fmt.Sprint(reply.Stop) != "["+j.ID+"]" {
		t.Fatalf("reply = %+v", reply)
	}
}

func TestPreemptedJobRequeues(t *testing.T) {
	c := New()
	j, _ := c.Submit(spec("a", 1, 50), t0)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 1, 0)}, t0)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 1, 0),
		Jobs: []api.JobReport{{ID: j.ID, State: api.StatePreempted, Reason: "SIGTERM"}}}, t0.Add(time.Second))
	got, _ := c.Job(j.ID)
	// Requeued, then placed again at once on the free GPU: a fresh start.
	if got.State != api.StateRunning || got.StartedAt == nil || !got.StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("job = %+v", got)
	}
}

func TestRestoreKeepsIDsIncreasing(t *testing.T) {
	c := New()
	c.Restore([]api.Job{{ID: "j-41", State: api.StateSucceeded}, {ID: "j-7", State: api.StateQueued}}, nil)
	j, _ := c.Submit(spec("next", 0, 50), t0)
	if j.ID != "j-42" {
		t.Fatalf("id = %s, want j-42", j.ID)
	}
	if ids := fmt.Sprintf("%d %s", len(c.Jobs()), c.Jobs()[0].ID); ids != "3 j-7" {
		t.Fatalf("jobs = %s", ids)
	}
}

func TestDeterministic(t *testing.T) {
	run := func() string {
		c := New()
		for i := range 20 {
			c.Submit(spec(fmt.Sprintf("j%d", i), i%5, (i*37)%100), t0.Add(time.Duration(i)*time.Second))
		}
		var out []string
		for _, n := range []string{"c", "a", "b"} {
			r, _ := c.Heartbeat(n, api.Heartbeat{GPUs: gpus(n, 8, 0)}, t0.Add(time.Minute))
			for _, a := range r.Run {
				out = append(out, fmt.Sprint(n, a.ID, a.GPUIndices))
			}
		}
		return strings.Join(out, ";")
	}
	first := run()
	for range 5 {
		if got := run(); got != first {
			t.Fatalf("placement differs between runs:\n%s\n%s", first, got)
		}
	}
}

// A job requeued because its node went down keeps "requeued: node X down
// at T" ahead of its waiting reason, through later passes and a restart,
// until it starts.
func TestRequeuedReasonKeptUntilStart(t *testing.T) {
	c := New()
	j, _ := c.Submit(spec("a", 2, 50), t0)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 2, 0)}, t0)
	c.Schedule(t0)
	c.Heartbeat("n2", api.Heartbeat{GPUs: gpus("n2", 1, 0)}, t0.Add(25*time.Second))
	const why = "requeued: node n1 down at 2026-11-28T12:00:00Z (no heartbeat since)"
	c.Tick(t0.Add(31 * time.Second)) // n1 down; n2 has 1 GPU, the job needs 2
	c.Tick(t0.Add(32 * time.Second)) // another pass: the reason must stay
	got, _ := c.Job(j.ID)
	if got.State != api.StateQueued || !strings.HasPrefix(got.Reason, why+"; needs 2 GPUs on one node") {
		t.Fatalf("after two passes: %s %q; want queued, %q first, then the waiting reason", got.State, got.Reason, why)
	}
	r := New()
	r.Restore(c.Jobs(), c.Nodes())
	r.Schedule(t0.Add(33 * time.Second))
	if got, _ := r.Job(j.ID); !strings.HasPrefix(got.Reason, why+"; ") {
		t.Fatalf("after a restart: %q; want it to start with %q", got.Reason, why)
	}
	r.Heartbeat("n3", api.Heartbeat{GPUs: gpus("n3", 2, 0)}, t0.Add(34*time.Second))
	r.Schedule(t0.Add(34 * time.Second))
	if got, _ := r.Job(j.ID); got.State != api.StateRunning || got.Reason != "" {
		t.Fatalf("once placed: %s %q; want running with no reason", got.State, got.Reason)
	}
}
