package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// memoTwin builds one of two identical cores for TestAdmitMemoChangesNoDecision
// from seed: a random policy (energy+cap, with or without multi-node jobs;
// energy+cap+offpeak; fifo-firstfit, which suspends nothing), 2 to 9 nodes
// of 8 H100 or A100 GPUs, some with a lowered maximum limit, profiling on
// or off, and a random budget: a cluster default that binds, in most
// trials a per-node cap that binds, in some a window that lowers it or
// the only budget, in force half an hour every three.
func memoTwin(t *testing.T, seed uint64, memoOff bool) (*Core, map[string][]api.GPU) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	names := []string{"energy+cap", "energy+cap", "energy+cap+offpeak", "fifo-firstfit"}
	p, err := PolicyByName(names[rng.IntN(len(names))])
	if err != nil {
		t.Fatal(err)
	}
	p.MultiNode = rng.IntN(2) == 0
	c, err := NewWithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	c.NodeTimeout = 0
	c.Power.Profile = rng.IntN(2) == 0
	c.pw.admitMemoOff = memoOff
	hbs := map[string][]api.GPU{}
	var maxW float64
	for i := range 2 + rng.IntN(8) {
		name := fmt.Sprintf("n%02d", i)
		gs := h100s(name, 8, 72)
		if i%4 == 3 {
			for k := range gs {
				gs[k].Model, gs[k].MinLimitW, gs[k].MaxLimitW, gs[k].LimitW = "NVIDIA A100-SXM4-80GB", 100, 400, 400
			}
		}
		if rng.IntN(4) == 0 {
			for k := range gs {
				gs[k].MaxLimitW -= 100
			}
		}
		for _, g := range gs {
			maxW += g.MaxLimitW
		}
		hbs[name] = gs
		c.Heartbeat(name, api.Heartbeat{GPUs: gs}, t0)
	}
	// Above the floor SetBudget holds budgets to (one node's GPUs at their
	// minimum limits, or every GPU's where idle nodes are not suspended).
	floorW, _ := c.budgetFloorW()
	b := api.PowerBudget{DefaultW: max(maxW*(0.25+0.4*rng.Float64()), 1.1*floorW)}
	if rng.IntN(6) == 0 {
		b.DefaultW = 1.1 * floorW // tight: a job on two nodes can never run
	}
	if rng.IntN(4) != 0 {
		b.NodeMaxW = 1700 + 1500*rng.Float64() // 8 H100s draw 1,600 W at their minimum, 3,272 W balanced
	}
	switch x := rng.IntN(6); {
	case x == 0: // a budget only inside the window
		b.Windows = []api.BudgetWindow{{Start: "0 */3 * * *", End: "30 */3 * * *", Watts: b.DefaultW}}
		b.DefaultW = 0
	case x <= 2: // a window that lowers it
		b.Windows = []api.BudgetWindow{{Start: "0 */3 * * *", End: "30 */3 * * *", Watts: max(0.7*b.DefaultW, 1.02*floorW)}}
	}
	if _, err := c.SetBudget(b); err != nil {
		t.Fatal(err)
	}
	return c, hbs
}

// TestAdmitMemoChangesNoDecision: over 30 random clusters under a budget,
// two cores given the same events (submissions of every size and energy
// policy, some deferrable, some repeating a profiled job's name; passes;
// heartbeats that end jobs and report profiles; ticks), one with the
// admission memo off, so that it builds the allocation's input and
// allocates for every candidate as before the memo, decide alike: after
// every event every job (state, reason, node, GPUs, power limit, placement
// metrics) and every node (power state, GPU limits in the reply) is the
// same. And the memo is used: it answers a good share of admissions.
func TestAdmitMemoChangesNoDecision(t *testing.T) {
	const trials = 30
	hits, misses, caps := 0, 0, 0
	for trial := range trials {
		seed := uint64(trial)
		memo, hbs := memoTwin(t, seed, false)
		plain, _ := memoTwin(t, seed, true)
		if memo.pw.budget.NodeMaxW() > 0 {
			caps++
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		now := t0
		n := 0
		same := func(what string, a, b any) {
			t.Helper()
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("trial %d (%s, budget %+v) %s: with the memo\n%+v\nwithout\n%+v", trial, memo.policy.Name,
					memo.pw.budget.Budget(), what, a, b)
			}
		}
		sameState := func(what string) {
			t.Helper()
			ja, jb := memo.Jobs(), plain.Jobs()
			if len(ja) != len(jb) {
				t.Fatalf("trial %d %s: %d jobs with the memo, %d without", trial, what, len(ja), len(jb))
			}
			for i := range ja {
				same(what+": job "+ja[i].ID, ja[i], jb[i])
			}
			same(what+": nodes", memo.Nodes(), plain.Nodes())
		}
		for step := range 16 {
			for range rng.IntN(10) {
				// Mostly balanced and small, as in the ITP traces, so that
				// jobs of one shape queue up; some repeat a profiled name.
				s := powerSpec(fmt.Sprintf("job%d", rng.IntN(12)), []string{api.PolicyBalanced, api.PolicyBalanced, api.PolicyEfficient, api.PolicyPerformance}[rng.IntN(4)],
					[]int{1, 1, 1, 1, 1, 1, 2, 4, 8, 16}[rng.IntN(10)])
				s.Workload.Synthetic.Duration.Duration = time.Duration(1+rng.IntN(240)) * time.Minute
				s.Priority = 40 + rng.IntN(30)
				s.Deferrable = rng.IntN(5) == 0
				_, errA := memo.Submit(s, now)
				_, errB := plain.Submit(s, now)
				same(fmt.Sprintf("step %d: submit %d", step, n), fmt.Sprint(errA), fmt.Sprint(errB))
				n++
			}
			same(fmt.Sprintf("step %d: pass", step), changed(memo.Schedule(now)), changed(plain.Schedule(now)))
			sameState(fmt.Sprintf("step %d: after the pass", step))
			now = now.Add(time.Second)
			for _, name := range memo.sortedNodeNames() {
				var reports []api.JobReport
				for _, j := range memo.Jobs() {
					if j.State != api.StateRunning || j.Node != name {
						continue
					}
					r := api.JobReport{ID: j.ID, State: api.StateRunning}
					switch x := rng.IntN(10); {
					case x < 3:
						r.State = api.StateSucceeded
					case x < 5 && j.PowerCurve == nil:
						truth := power.JobCurve{UncappedW: 300 + 200*rng.Float64(), MaxThroughput: 800, A: 0.2 + 0.2*rng.Float64(), K: 2 + 2*rng.Float64()}
						for l := 700.0; l >= 200; l -= 50 {
							r.Profile = append(r.Profile, api.ProfileSample{LimitW: l, Throughput: truth.ThroughputAt(l), PowerW: min(l, truth.UncappedW)})
						}
					}
					reports = append(reports, r)
				}
				ra, cha := memo.Heartbeat(name, api.Heartbeat{GPUs: hbs[name], Jobs: reports}, now)
				rb, chb := plain.Heartbeat(name, api.Heartbeat{GPUs: hbs[name], Jobs: reports}, now)
				same(fmt.Sprintf("step %d: heartbeat %s", step, name), ra, rb)
				same(fmt.Sprintf("step %d: heartbeat %s changes", step, name), changed(cha), changed(chb))
			}
			sameState(fmt.Sprintf("step %d: after the heartbeats", step))
			now = now.Add(time.Duration(1+rng.IntN(1800)) * time.Second)
			same(fmt.Sprintf("step %d: tick", step), changed(memo.Tick(now)), changed(plain.Tick(now)))
			sameState(fmt.Sprintf("step %d: after the tick", step))
		}
		hits += memo.pw.admitHits
		misses += memo.pw.admitMisses
		if plain.pw.admitHits != 0 {
			t.Fatalf("trial %d: %d memo hits with the memo off", trial, plain.pw.admitHits)
		}
	}
	if caps < trials/2 {
		t.Errorf("only %d of %d trials had a per-node cap", caps, trials)
	}
	if !(hits > misses/10) {
		t.Errorf("the memo answered %d admissions and allocated for %d: the test hardly exercises it", hits, misses)
	}
	t.Logf("%d admissions answered by the memo, %d allocated; %d of %d trials with a per-node cap", hits, misses, caps, trials)
}

// changed is what an event changed, in an order of its own: the core
// lists changed jobs in map order.
func changed(ch Changes) Changes {
	ch.index = nil
	ch.Jobs = slices.Clone(ch.Jobs)
	slices.SortFunc(ch.Jobs, func(a, b api.Job) int { return strings.Compare(a.ID, b.ID) })
	ch.Nodes = slices.Clone(ch.Nodes)
	slices.SortFunc(ch.Nodes, func(a, b api.Node) int { return strings.Compare(a.Name, b.Name) })
	ch.Usage = slices.Clone(ch.Usage)
	slices.SortFunc(ch.Usage, func(a, b api.Usage) int {
		return strings.Compare(a.Day+a.JobID+a.Node, b.Day+b.JobID+b.Node)
	})
	return ch
}
