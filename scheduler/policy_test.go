package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

func withWalltime(s api.JobSpec, d time.Duration) api.JobSpec {
	s.Walltime = &api.Duration{Duration: d}
	return s
}

func policy(t *testing.T, name string, adjust func(*Policy)) *Core {
	t.Helper()
	p, err := PolicyByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(&p)
	}
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.NodeTimeout = 0
	return c
}

// finish reports a job done through its node's heartbeat, as an agent does.
func finish(c *Core, id string, now time.Time) Changes {
	j, _ := c.Job(id)
	n := c.nodes[j.Node]
	_, ch := c.Heartbeat(j.Node, api.Heartbeat{GPUs: n.GPUs,
		Jobs: []api.JobReport{{ID: id, State: api.StateSucceeded}}}, now)
	return ch
}

func TestBackfillRespectsTheReservation(t *testing.T) {
	c := policy(t, "energy", nil)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 8, 0)}, t0)
	a, _ := c.Submit(withWalltime(spec("a", 6, 50), time.Hour), t0)
	c.Schedule(t0)
	head, _ := c.Submit(withWalltime(spec("head", 8, 50), time.Hour), t0.Add(time.Second))
	long, _ := c.Submit(withWalltime(spec("long", 2, 50), 2*time.Hour), t0.Add(2*time.Second))
	short, _ := c.Submit(withWalltime(spec("short", 2, 50), 30*time.Minute), t0.Add(3*time.Second))
	c.Schedule(t0.Add(time.Minute))

	h, _ := c.Job(head.ID)
	if h.State != api.StateQueued || !strings.Contains(h.Reason, "reserved to start at 2026-11-28 13:00 UTC on n") {
		t.Fatalf("head = %s %q, want queued with its reservation at 13:00", h.State, h.Reason)
	}
	l, _ := c.Job(long.ID)
	if l.State != api.StateQueued || l.Reason != "reserved for job "+head.ID+" at 2026-11-28 13:00 UTC" {
		t.Fatalf("long = %s %q: it would end after the reservation, so it must wait", l.State, l.Reason)
	}
	if s, _ := c.Job(short.ID); s.State != api.StateRunning {
		t.Fatalf("short = %s %q: it ends before the reservation, so it must backfill", s.State, s.Reason)
	}
	finish(c, short.ID, t0.Add(31*time.Minute))
	finish(c, a.ID, t0.Add(time.Hour))
	if h, _ := c.Job(head.ID); h.State != api.StateRunning || !h.StartedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("head = %s at %v, want running from 13:00", h.State, h.StartedAt)
	}
}

// With exact walltimes, a reserved job never starts later than the time it
// was first promised, however the jobs behind it backfill.
func TestBackfillNeverDelaysTheReservedHead(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		c := policy(t, "energy", func(p *Policy) { p.SuspendIdle = false; p.FairShareWeight = 0 })
		for i := range 3 {
			name := fmt.Sprintf("n%d", i)
			c.Heartbeat(name, api.Heartbeat{GPUs: gpus(name, 8, 0)}, t0)
		}
		dur := map[string]time.Duration{}
		now := t0
		for i := range 60 {
			d := time.Duration(1+rng.IntN(240)) * time.Minute
			j, err := c.Submit(withWalltime(spec(fmt.Sprintf("j%d", i), []int{1, 2, 4, 8}[rng.IntN(4)], 50), d), now.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			dur[j.ID] = d
		}
		promised := map[string]time.Time{}
		ends := map[string]time.Time{}
		step := func(ch Changes) {
			for _, j := range ch.Jobs {
				if j.State == api.StateRunning && ends[j.ID].IsZero() {
					ends[j.ID] = j.StartedAt.Add(dur[j.ID])
					if p, ok := promised[j.ID]; ok && j.StartedAt.After(p) {
						t.Fatalf("seed %d: %s started at %v, after its reservation %v", seed, j.ID, j.StartedAt, p)
					}
				}
			}
			if r := c.lastRes; r != nil {
				if _, ok := promised[r.job.ID]; !ok {
					promised[r.job.ID] = r.at
				}
			}
		}
		step(c.Schedule(now.Add(time.Minute)))
		for len(ends) < 60 {
			var next time.Time
			var id string
			for jid, e := range ends {
				if j, _ := c.Job(jid); j.State == api.StateRunning && (next.IsZero() || e.Before(next) || (e.Equal(next) && jid < id)) {
					next, id = e, jid
				}
			}
			if id == "" {
				t.Fatalf("seed %d: nothing running and %d jobs never started", seed, 60-len(ends))
			}
			step(finish(c, id, next))
		}
		if len(promised) == 0 {
			t.Fatalf("seed %d: no reservation was ever made; the test tests nothing", seed)
		}
	}
}

func TestFairShareConverges(t *testing.T) {
	run := func(name string) (alice, bob float64) {
		c := policy(t, name, func(p *Policy) { p.SuspendIdle = false; p.Backfill = false })
		c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0)}, t0)
		// Alice queues 400 one-hour jobs first, Bob 400 a second later.
		for i := range 400 {
			s := withWalltime(spec(fmt.Sprintf("a%d", i), 1, 50), time.Hour)
			c.Submit(s, t0)
			s = withWalltime(spec(fmt.Sprintf("b%d", i), 1, 50), time.Hour)
			s.User = "bob"
			c.Submit(s, t0.Add(time.Second))
		}
		now := t0.Add(time.Minute)
		c.Schedule(now)
		for range 60 { // 60 hours
			now = now.Add(time.Hour)
			for _, j := range c.Jobs() {
				if j.State == api.StateRunning {
					finish(c, j.ID, now)
					if j.Spec.User == "alice" {
						alice++
					} else {
						bob++
					}
				}
			}
		}
		return alice, bob
	}
	if a, b := run("fifo-firstfit"); b != 0 {
		t.Fatalf("without fair share Alice's earlier jobs go first: alice %v, bob %v GPU-hours", a, b)
	}
	a, b := run("energy")
	if a+b != 240 || a/b > 1.15 || b/a > 1.15 {
		t.Fatalf("with fair share the 240 GPU-hours split evenly: alice %v, bob %v", a, b)
	}
}

func TestIdleNodeSuspendsAndWakesForWork(t *testing.T) {
	c := policy(t, "energy", func(p *Policy) { p.IdleTimeout = 10 * time.Minute })
	for _, n := range []string{"a", "b"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: gpus(n, 8, 0)}, t0)
	}
	small, _ := c.Submit(withWalltime(spec("small", 1, 50), 3*time.Hour), t0)
	c.Schedule(t0)
	if j, _ := c.Job(small.ID); j.Node != "a" {
		t.Fatalf("small on %q, want a", j.Node)
	}
	if next, ok := c.NextTimer(); !ok || !next.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("NextTimer = %v %v, want b's suspension at +10m", next, ok)
	}
	ch := c.Tick(t0.Add(10 * time.Minute))
	if len(ch.Nodes) != 1 || ch.Nodes[0].Name != "b" || ch.Nodes[0].Power != api.PowerSuspended {
		t.Fatalf("changes = %+v, want b suspended", ch.Nodes)
	}
	reply, _ := c.Heartbeat("b", api.Heartbeat{GPUs: gpus("b", 8, 0)}, t0.Add(11*time.Minute))
	if reply.Power != api.PowerSuspended {
		t.Fatalf("b's reply power = %q", reply.Power)
	}
	// A second small job joins the awake node rather than waking b.
	second, _ := c.Submit(withWalltime(spec("second", 1, 50), time.Hour), t0.Add(12*time.Minute))
	c.Schedule(t0.Add(12 * time.Minute))
	if j, _ := c.Job(second.ID); j.Node != "a" {
		t.Fatalf("second on %q, want the awake node a", j.Node)
	}
	// A whole-node job does not fit on a: b wakes, and the job starts when
	// b is ready.
	big, _ := c.Submit(withWalltime(spec("big", 8, 50), time.Hour), t0.Add(13*time.Minute))
	c.Schedule(t0.Add(13 * time.Minute))
	j, _ := c.Job(big.ID)
	ready := t0.Add(13*time.Minute + c.policy.Node.WakeDelay)
	if j.Node != "b" || !j.StartedAt.Equal(ready) || !strings.HasPrefix(j.Reason, "waiting for b to wake up") {
		t.Fatalf("big = %s on %q from %v (%q), want b from %v", j.State, j.Node, j.StartedAt, j.Reason, ready)
	}
	if b := c.nodes["b"]; b.power() != api.PowerResuming {
		t.Fatalf("b is %s, want resuming", b.power())
	}
	c.Tick(ready)
	if b := c.nodes["b"]; b.power() != api.PowerOn {
		t.Fatalf("b is %s after its wake delay, want on", b.power())
	}
	// Placement metrics: the chosen node first, with each scorer's part.
	p := j.Placement
	if p == nil || p.Policy != "energy" || len(p.Candidates) == 0 || p.Candidates[0].Node != "b" ||
		len(p.Candidates[0].Parts) != 3 || p.Candidates[0].Parts[0].Scorer != ScoreEnergy {
		t.Fatalf("placement = %+v", p)
	}
}

func TestFifoFirstFitKeepsIdleNodesOn(t *testing.T) {
	c := policy(t, "fifo-firstfit", nil)
	c.Heartbeat("a", api.Heartbeat{GPUs: gpus("a", 8, 0)}, t0)
	c.Tick(t0.Add(48 * time.Hour))
	if n := c.nodes["a"]; n.power() != api.PowerOn {
		t.Fatalf("fifo-firstfit suspended an idle node: %s", n.power())
	}
	if _, ok := c.NextTimer(); ok {
		t.Fatal("fifo-firstfit has no power timers")
	}
}

func TestGangPlacementOnWholeNodes(t *testing.T) {
	c := policy(t, "fifo-firstfit", func(p *Policy) { p.MultiNode = true })
	for _, n := range []string{"a", "b", "c"} {
		c.Heartbeat(n, api.Heartbeat{GPUs: gpus(n, 8, 0)}, t0)
	}
	one, _ := c.Submit(spec("one", 1, 50), t0)
	gang, err := c.Submit(spec("gang", 16, 50), t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.Schedule(t0)
	j, _ := c.Job(gang.ID)
	if j.State != api.StateRunning || fmt.Sprint(j.GangNodes) != "[b c]" || j.Node != "b" {
		t.Fatalf("gang = %s on %v, want the whole nodes b and c", j.State, j.GangNodes)
	}
	too, _ := c.Submit(spec("too", 16, 50), t0.Add(2*time.Second))
	c.Schedule(t0.Add(time.Minute))
	if j, _ := c.Job(too.ID); j.State != api.StateQueued || !strings.HasPrefix(j.Reason, "needs 16 GPUs on whole nodes") {
		t.Fatalf("too = %s %q", j.State, j.Reason)
	}
	finish(c, gang.ID, t0.Add(time.Hour))
	if j, _ := c.Job(too.ID); j.State != api.StateRunning || fmt.Sprint(j.GangNodes) != "[b c]" {
		t.Fatalf("too = %s on %v after the first gang ended", j.State, j.GangNodes)
	}
	if _, err := c.Submit(spec("huge", 32, 50), t0); err == nil {
		t.Fatal("a job larger than the whole cluster must be refused")
	}
	_ = one
}

func TestPolicyByName(t *testing.T) {
	for _, name := range AllPolicyNames() {
		p, err := PolicyByName(name)
		if err != nil || p.Name != name || p.Validate() != nil {
			t.Errorf("%s: %v %v", name, err, p.Validate())
		}
	}
	if _, err := PolicyByName("greedy"); err == nil || !strings.Contains(err.Error(), "fifo-firstfit, energy") {
		t.Errorf("err = %v", err)
	}
	bad := Policy{Name: "x", Scorers: []WeightedScorer{{"random", 1}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `unknown scorer "random"`) {
		t.Errorf("err = %v", err)
	}
}

func TestPreemptionStopsMuchLowerPriorityWorkAndRequeuesIt(t *testing.T) {
	c := policy(t, "energy", nil)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0)}, t0)
	low, _ := c.Submit(spec("low", 2, 30), t0)
	mid, _ := c.Submit(spec("mid", 2, 45), t0)
	c.Schedule(t0)
	// 15 points above mid, 35 above low: only low may be preempted.
	urgent, _ := c.Submit(spec("urgent", 2, 65), t0.Add(time.Minute))
	ch := c.Schedule(t0.Add(time.Minute)) // as schedulerd does after a submit
	reply, _ := c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0), Jobs: []api.JobReport{
		{ID: low.ID, State: api.StateRunning}, {ID: mid.ID, State: api.StateRunning}}}, t0.Add(time.Minute))
	if fmt.Sprint(reply.Preempt) != "["+low.ID+"]" || len(reply.Stop) != 0 {
		t.Fatalf("preempt = %v, stop = %v; want only %s checkpointed", reply.Preempt, reply.Stop, low.ID)
	}
	if u, _ := c.Job(urgent.ID); u.State != api.StateQueued || !strings.Contains(u.Reason, "preempting "+low.ID+" on n") {
		t.Fatalf("urgent = %s %q", u.State, u.Reason)
	}
	if len(ch.Jobs) == 0 {
		t.Fatal("the victim's change must be stored")
	}
	// A second pass does not preempt more while low is stopping.
	reply, _ = c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0), Jobs: []api.JobReport{
		{ID: low.ID, State: api.StateRunning}, {ID: mid.ID, State: api.StateRunning}}}, t0.Add(2*time.Minute))
	if fmt.Sprint(reply.Preempt) != "["+low.ID+"]" {
		t.Fatalf("preempt = %v on the second pass", reply.Preempt)
	}
	// The agent checkpoints and stops it: low is requeued, urgent runs.
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 4, 0), Jobs: []api.JobReport{
		{ID: low.ID, State: api.StatePreempted}, {ID: mid.ID, State: api.StateRunning}}}, t0.Add(3*time.Minute))
	l, _ := c.Job(low.ID)
	if l.State != api.StateQueued || l.Reason != "preempted for job "+urgent.ID+"; requeued to resume from its checkpoint" {
		t.Fatalf("low = %s %q", l.State, l.Reason)
	}
	if u, _ := c.Job(urgent.ID); u.State != api.StateRunning || u.Node != "n" {
		t.Fatalf("urgent = %s on %q", u.State, u.Node)
	}
	if m, _ := c.Job(mid.ID); m.State != api.StateRunning {
		t.Fatalf("mid must keep running (only 20 points below is preemptible): %s", m.State)
	}
}

func TestNoPreemptionUnderFifo(t *testing.T) {
	c := policy(t, "fifo-firstfit", nil)
	c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 2, 0)}, t0)
	low, _ := c.Submit(spec("low", 2, 0), t0)
	c.Schedule(t0)
	c.Submit(spec("urgent", 2, 100), t0)
	c.Schedule(t0)
	reply, _ := c.Heartbeat("n", api.Heartbeat{GPUs: gpus("n", 2, 0), Jobs: []api.JobReport{{ID: low.ID, State: api.StateRunning}}}, t0.Add(time.Minute))
	if len(reply.Stop)+len(reply.Preempt) != 0 {
		t.Fatalf("fifo-firstfit preempted: %v %v", reply.Stop, reply.Preempt)
	}
}

// The reservation reused across passes (reserve's memo) is the one a fresh
// computation gives whenever the clock alone changes nothing (no running job
// past its estimate, no suspended node): placements, ends, stopping marks
// and node changes all invalidate it.
func TestReservationMemoMatchesAFreshOne(t *testing.T) {
	hits := 0
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		c := policy(t, "energy", func(p *Policy) { p.SuspendIdle = false; p.FairShareWeight = 0 })
		nodes := 3
		for i := range nodes {
			name := fmt.Sprintf("n%d", i)
			c.Heartbeat(name, api.Heartbeat{GPUs: gpus(name, 8, 0)}, t0)
		}
		now := t0
		submit := func(i int) {
			d := time.Duration(1+rng.IntN(240)) * time.Minute
			if _, err := c.Submit(withWalltime(spec(fmt.Sprintf("j%d", i), []int{1, 2, 4, 8}[rng.IntN(4)], 50), d), now); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 40 {
			submit(i)
		}
		check := func() {
			memoBefore := c.resMemo
			c.Schedule(now)
			r := c.lastRes
			if r == nil {
				return
			}
			for _, j := range c.jobs {
				if j.Node != "" && j.State == api.StateRunning && j.estEnd.Before(now) {
					return // the clock alone moves this reservation
				}
			}
			fresh := c.computeReserve(r.job, now)
			if fresh == nil || !fresh.at.Equal(r.at) || len(fresh.nodes) != len(r.nodes) {
				t.Fatalf("seed %d at %v: reused reservation %v on %d nodes, fresh %+v", seed, now, r.at, len(r.nodes), fresh)
			}
			for n := range fresh.nodes {
				if !r.nodes[n] {
					t.Fatalf("seed %d at %v: reused reservation is on other nodes than a fresh one", seed, now)
				}
			}
			if memoBefore.j == r.job && !c.resMemo.at.After(memoBefore.at) {
				hits++
			}
		}
		check()
		for step := range 200 {
			switch rng.IntN(4) {
			case 0: // a running job ends early, within the memo's lifetime
				var ids []string
				for id, j := range c.jobs {
					if j.State == api.StateRunning {
						ids = append(ids, id)
					}
				}
				if len(ids) > 0 {
					slices.Sort(ids)
					finish(c, ids[rng.IntN(len(ids))], now)
				}
			case 3: // or on time, later
				var first *jobRec
				for _, j := range c.jobs {
					if j.State == api.StateRunning && (first == nil || j.estEnd.Before(first.estEnd) || (j.estEnd.Equal(first.estEnd) && j.ID < first.ID)) {
						first = j
					}
				}
				if first != nil && rng.IntN(4) == 0 {
					if first.estEnd.After(now) {
						now = first.estEnd
					}
					finish(c, first.ID, now)
				}
			case 1: // a new job
				submit(100 + step)
			case 2: // a new node
				name := fmt.Sprintf("n%d", nodes)
				nodes++
				c.Heartbeat(name, api.Heartbeat{GPUs: gpus(name, 8, 0)}, now)
			}
			now = now.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
			check()
		}
	}
	if hits == 0 {
		t.Fatal("no pass reused a reservation; the test tests nothing")
	}
}

// Under the default policy an ordinary job preempts a deferrable job of its
// own priority. Once the victim has checkpointed and is requeued, the
// preemptor takes the freed GPUs; the victim, ahead of it in the queue,
// waits for it to start instead of taking them back (which would make the
// next pass preempt it again, checkpoint after checkpoint).
func TestPreemptedJobYieldsToItsPreemptor(t *testing.T) {
	c := New()
	c.NodeTimeout = 0
	now := at("2026-11-26 14:00")
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 2, 0)}, now)
	bs := deferrable("victim", 10*time.Hour, nil)
	bs.GPUs = 2
	b, _ := c.Submit(bs, now)
	c.Schedule(now)
	a, _ := c.Submit(spec("preemptor", 2, 50), now)
	stops := 0
	for range 5 {
		now = now.Add(10 * time.Second)
		c.Schedule(now)
		var reports []api.JobReport
		for _, id := range []string{a.ID, b.ID} {
			if j, _ := c.Job(id); j.State == api.StateRunning {
				r := api.JobReport{ID: id, State: api.StateRunning}
				if j.Stopping {
					r.State, stops = api.StatePreempted, stops+1 // the agent checkpoints it
				}
				reports = append(reports, r)
			}
		}
		c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 2, 0), Jobs: reports}, now)
	}
	aj, _ := c.Job(a.ID)
	bj, _ := c.Job(b.ID)
	if aj.State != api.StateRunning || bj.State != api.StateQueued || stops != 1 {
		t.Fatalf("preemptor %s (%s), victim %s (%s), %d checkpoints; want the preemptor running, the victim queued, one checkpoint",
			aj.State, aj.Reason, bj.State, bj.Reason, stops)
	}
}
