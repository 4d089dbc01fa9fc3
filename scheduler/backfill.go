package scheduler

import (
	"fmt"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
)

// reservation is EASY backfill's promise to the first job that cannot start:
// it starts at `at` on `nodes`. Until then other jobs may use those nodes
// only if they end by `at`, or (single-node reservation) take GPUs beyond
// what the reserved job needs (surplus).
type reservation struct {
	job     *jobRec
	at      time.Time
	nodes   map[*nodeState]bool
	gang    bool
	surplus int
}

// allows says whether a job of need GPUs that would end at end may start
// now on n without delaying the reserved job. A nil reservation allows all.
func (r *reservation) allows(need int, n *nodeState, end time.Time) bool {
	if r == nil || !r.nodes[n] || !end.After(r.at) {
		return true
	}
	return !r.gang && need <= r.surplus
}

// consume records that a job of need GPUs ending at end started on n.
func (r *reservation) consume(need int, n *nodeState, end time.Time) {
	if r == nil || !r.nodes[n] || !end.After(r.at) {
		return
	}
	r.surplus -= need
}

func (r *reservation) describe() string {
	names := make([]string, 0, len(r.nodes))
	for n := range r.nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	where := names[0]
	if len(names) > 1 {
		where = fmt.Sprintf("%s and %d more", names[0], len(names)-1)
	}
	return fmt.Sprintf("; reserved to start at %s on %s", clockAt(r.at), where)
}

// endOf is when a running job is expected to free its GPUs: the end its
// estimate gave when it started, but never before now (a job past its
// estimate may end any moment), and now for a job already being stopped.
func endOf(j *jobRec, now time.Time) time.Time {
	if j.Stopping || j.estEnd.Before(now) {
		return now
	}
	return j.estEnd
}

// readyAt is when a node could hold target free GPUs, from the expected
// ends of its jobs; ok is false when it never could. ends counts the jobs
// that must end first, and overdue says one of them is already past its
// estimate (it may end any moment, or run for hours).
func (c *Core) readyAt(n *nodeState, target int, now time.Time) (at time.Time, freeAt, ends int, overdue, ok bool) {
	if n.power() == api.PowerSuspended {
		return now.Add(c.policy.Node.WakeDelay), n.total(), 0, false, n.total() >= target
	}
	at, free := now, n.free()
	if n.power() == api.PowerResuming && n.readyAt.After(at) {
		at = n.readyAt
	}
	if free >= target {
		return at, free, 0, false, true
	}
	// Few jobs per node: take the earliest-ending one until enough are free.
	var used [16]bool
	for free < target {
		best := -1
		var bestEnd time.Time
		for i, r := range n.runs {
			if i < len(used) && used[i] {
				continue
			}
			if e := endOf(r.j, now); best < 0 || e.Before(bestEnd) {
				best, bestEnd = i, e
			}
		}
		if best < 0 || best >= len(used) {
			return at, free, ends, overdue, false
		}
		used[best] = true
		free += n.runs[best].gpus
		ends++
		if r := n.runs[best].j; !r.Stopping && !r.estEnd.After(now) {
			overdue = true
		}
		if bestEnd.After(at) {
			at = bestEnd
		}
	}
	return at, free, ends, overdue, true
}

// urgentRank orders the nodes a reservation for an urgent deferrable job
// (isUrgent) may hold: the earliest expected time first, then the fewest
// jobs that must end there. A node whose blockers are past their estimate
// counts as ready no sooner than a suspended node can wake: "any moment"
// is a guess, the wake-up is known; so for a job whose deadline is near
// the reservation takes (and wakes, holdForUrgent) suspended nodes and
// nodes with the fewest running jobs left, instead of the first overdue
// node by name, which may stay busy for hours.
func (c *Core) urgentRank(at time.Time, ends int, overdue bool, now time.Time) (time.Time, int) {
	if w := now.Add(c.policy.Node.WakeDelay); overdue && at.Before(w) {
		at = w
	}
	return at, ends
}

// rankBefore compares two urgentRank results.
func rankBefore(at1 time.Time, ends1 int, at2 time.Time, ends2 int) bool {
	if !at1.Equal(at2) {
		return at1.Before(at2)
	}
	return ends1 < ends2
}

// reserveRefresh bounds how long a reservation is reused while nothing it
// is computed from changed (see reserve).
const reserveRefresh = time.Second

// resMemo is the last reservation reserve computed: for job j, at gen
// (Core.resGen) and time at.
type resMemo struct {
	j   *jobRec
	gen int
	at  time.Time
	res *reservation
}

// reserve finds the earliest time and place the job j can start, from the
// expected ends of the running jobs (and the wake delay of suspended
// nodes). It returns nil when no node could ever hold it.
//
// Computing it visits every up node, and a full cluster's passes (one after
// every written batch) ask again and again for the same head job. So the
// result is reused for the same job while nothing it depends on changed
// (Core.resGen: jobs placed, released or marked stopping, a node's state,
// power or GPUs) and for at most reserveRefresh: what changes with the clock
// alone (a job running past its estimate, which may end any moment; a
// suspended node's wake-up) is then up to reserveRefresh old. Such a stale
// time is earlier than a fresh one, so backfill only gets more careful.
func (c *Core) reserve(j *jobRec, now time.Time) *reservation {
	m := &c.resMemo
	if m.j == j && m.gen == c.resGen && !now.Before(m.at) && now.Sub(m.at) < reserveRefresh {
		if m.res == nil {
			return nil
		}
		r := *m.res // consume changes surplus; the nodes are only read
		return &r
	}
	r := c.computeReserve(j, now)
	*m = resMemo{j: j, gen: c.resGen, at: now, res: r}
	if r == nil {
		return nil
	}
	cp := *r
	return &cp
}

// computeReserve is reserve without the memo. It visits every up node once,
// with no allocation per node.
func (c *Core) computeReserve(j *jobRec, now time.Time) *reservation {
	need := j.Spec.GPUs
	whole := c.policy.MultiNode && need > c.maxNodeGPUs()
	r := &reservation{job: j, nodes: map[*nodeState]bool{}, gang: whole}
	// An urgent deferrable job's reservation ranks nodes by urgentRank;
	// any other job's takes the earliest expected time, first by name.
	urgent := c.isUrgent(j, now)
	if !whole {
		var best *nodeState
		var bestAt time.Time
		bestEnds := 0
		for _, n := range c.order {
			if n.State != api.NodeUp || n.total() < need {
				continue
			}
			at, free, ends, overdue, ok := c.readyAt(n, need, now)
			if !ok {
				continue
			}
			if urgent {
				rat, rends := c.urgentRank(at, ends, overdue, now)
				if best == nil || rankBefore(rat, rends, bestAt, bestEnds) {
					best, bestAt, bestEnds, r.at, r.surplus = n, rat, rends, at, free-need
				}
				continue
			}
			if best == nil || at.Before(r.at) {
				best, r.at, r.surplus = n, at, free-need
				if !at.After(now) {
					break
				}
			}
		}
		if best == nil {
			return nil
		}
		r.nodes[best] = true
		return r
	}
	type slot struct {
		n      *nodeState
		at     time.Time
		rankAt time.Time
		ends   int
	}
	var slots []slot
	for _, n := range c.order {
		if n.State != api.NodeUp {
			continue
		}
		if at, _, ends, overdue, ok := c.readyAt(n, n.total(), now); ok {
			s := slot{n: n, at: at, rankAt: at}
			if urgent {
				s.rankAt, s.ends = c.urgentRank(at, ends, overdue, now)
			}
			slots = append(slots, s)
		}
	}
	slices.SortStableFunc(slots, func(a, b slot) int {
		if c := a.rankAt.Compare(b.rankAt); c != 0 {
			return c
		}
		return a.ends - b.ends
	})
	per := c.maxNodeGPUs()
	k := (need + per - 1) / per
	if len(slots) < k {
		return nil
	}
	for _, s := range slots[:k] {
		r.nodes[s.n] = true
		if s.at.After(r.at) {
			r.at = s.at
		}
	}
	return r
}

// preemptingFor is the waiting job that jobs on n are being stopped for,
// nil if none. Until they have all stopped (and it can start), n takes no
// other job: otherwise the GPUs still free there, or the first victim's,
// go to another waiting job (a requeued victim among them), the preemptor
// still does not fit, and it preempts again, for ever where stops are
// instant (the simulator).
func (c *Core) preemptingFor(n *nodeState) *jobRec {
	if c.stoppingOn[n] == 0 {
		return nil
	}
	for _, r := range n.runs {
		if r.j.Stopping && r.j.preemptedBy != "" {
			if p := c.jobs[r.j.preemptedBy]; p != nil && (p.State == api.StateQueued || p.State == api.StateDeferred) {
				return p
			}
		}
	}
	return nil
}

// preempt finds, for the first job that cannot start, the node where
// stopping the fewest GPUs of preemptible jobs (PreemptGap or more priority
// points below it, or deferrable and not above it) frees enough GPUs, and
// marks those jobs to stop: lowest priority first, then the most recently
// started (least work lost); a job on whole nodes (MultiNode) frees whole
// nodes instead (preemptWhole). Under DeferrableYield a deferrable job stops
// others only when urgent, and an urgent deferrable job is never a victim. It does nothing while jobs already stopping
// will free enough GPUs on some node, so repeated passes do not preempt
// more. Multi-node jobs are never victims.
func (c *Core) preempt(j *jobRec, now time.Time) []*jobRec {
	need := j.Spec.GPUs
	// Under DeferrableYield only a deferrable job whose deadline is near
	// (isUrgent) stops deferrable work: the others wait for the GPUs like
	// everyone else; and a deferrable job that is urgent itself (from its
	// estimate as of its last report) is never stopped.
	urgent := c.isUrgent(j, now)
	if c.policy.DeferrableYield && j.Spec.Deferrable && !urgent {
		return nil
	}
	stopsDeferrable := !c.policy.DeferrableYield || urgent
	// Under DeadlineFirst an urgent deferrable job stops any job at or
	// below its priority that is not itself deadline-bound, if starting now
	// still meets its deadline: a job that is late anyway stops nobody's
	// ordinary work.
	stopsAny := urgent && c.policy.DeadlineFirst && !now.Add(Estimate(j.Spec, j.Progress)).After(Deadline(&j.Job))
	preemptible := func(v *jobRec) bool {
		return !v.Stopping && len(v.GangNodes) == 0 && v.State == api.StateRunning &&
			(v.Spec.Priority <= j.Spec.Priority-c.policy.PreemptGap ||
				(stopsDeferrable && v.Spec.Deferrable && v.Spec.Priority <= j.Spec.Priority && !c.isUrgent(v, now)) ||
				(stopsAny && v.Spec.Priority <= j.Spec.Priority && !(v.Spec.Deferrable && c.isUrgent(v, now))))
	}
	// Any victim at all? (Counts of placed jobs by priority.)
	some := false
	for p := 0; p <= min(max(j.Spec.Priority, 0), 100) && !some; p++ {
		some = (stopsDeferrable && c.runDeferrable[p] > 0) || (p <= j.Spec.Priority-c.policy.PreemptGap && c.runPrio[p] > 0) ||
			(stopsAny && c.runPrio[p] > 0)
	}
	if !some {
		return nil
	}
	if c.policy.MultiNode && need > c.maxNodeGPUs() {
		return c.stopFor(j, c.preemptWhole(need, preemptible), now)
	}
	// Enough already on its way? Only nodes with stopping jobs can say so.
	for n := range c.stoppingOn {
		soon := n.free()
		for _, r := range n.runs {
			if r.j.Stopping {
				soon += r.gpus
			}
		}
		if soon >= need && n.State == api.NodeUp {
			return nil
		}
	}
	var best []*jobRec
	bestGPUs, found := 0, false
	for _, n := range c.order {
		if n.State != api.NodeUp || n.power() == api.PowerSuspended || n.total() < need {
			continue
		}
		soon, could := n.free(), 0
		for _, r := range n.runs {
			switch {
			case r.j.Stopping:
				soon += r.gpus
			case preemptible(r.j):
				could += r.gpus
			}
		}
		if soon >= need {
			return nil // enough is already on its way
		}
		if soon+could < need {
			continue
		}
		var cands []nodeRun
		for _, r := range n.runs {
			if !r.j.Stopping && preemptible(r.j) {
				cands = append(cands, r)
			}
		}
		slices.SortFunc(cands, func(a, b nodeRun) int {
			if a.j.Spec.Priority != b.j.Spec.Priority {
				return a.j.Spec.Priority - b.j.Spec.Priority
			}
			return b.j.StartedAtOr(now).Compare(a.j.StartedAtOr(now))
		})
		var victims []*jobRec
		gpus := 0
		for _, r := range cands {
			if soon >= need {
				break
			}
			victims = append(victims, r.j)
			soon += r.gpus
			gpus += r.gpus
		}
		if soon >= need && (!found || gpus < bestGPUs) {
			best, bestGPUs, found = victims, gpus, true
		}
	}
	return c.stopFor(j, best, now)
}

// stopFor marks the victims to stop for job j and returns them.
func (c *Core) stopFor(j *jobRec, victims []*jobRec, now time.Time) []*jobRec {
	for _, v := range victims {
		c.markStopping(v)
		v.preemptedBy = j.ID
		v.Reason = fmt.Sprintf("being preempted for job %s (priority %d)", j.ID, j.Spec.Priority)
		c.share.stop(v, now)
	}
	return victims
}

// preemptWhole is preempt for a job on whole nodes (MultiNode): it needs
// ceil(need / GPUs per node) nodes of one model, each free, asleep, or
// holding only preemptible jobs or ones already stopping; of those it takes
// the nodes with the fewest GPUs to stop, and returns their preemptible
// jobs: none when free and stopping nodes are enough already.
func (c *Core) preemptWhole(need int, preemptible func(*jobRec) bool) []*jobRec {
	type cand struct {
		gpus    int
		victims []*jobRec
	}
	var best []cand
	bestGPUs := -1
	for m, mi := range c.modelList {
		per := mi.size
		if per <= 0 {
			continue
		}
		k := (need + per - 1) / per
		var cands []cand
		for _, n := range c.order {
			if n.model != m || n.State != api.NodeUp || n.total() != per {
				continue
			}
			cd, ok := cand{}, true
			for _, r := range n.runs {
				switch {
				case r.j.Stopping:
				case preemptible(r.j):
					cd.victims = append(cd.victims, r.j)
					cd.gpus += r.gpus
				default:
					ok = false
				}
			}
			if ok {
				cands = append(cands, cd)
			}
		}
		if len(cands) < k {
			continue
		}
		slices.SortStableFunc(cands, func(a, b cand) int { return a.gpus - b.gpus })
		g := 0
		for _, cd := range cands[:k] {
			g += cd.gpus
		}
		if bestGPUs < 0 || g < bestGPUs {
			best, bestGPUs = cands[:k], g
		}
	}
	var victims []*jobRec
	for _, cd := range best {
		victims = append(victims, cd.victims...)
	}
	return victims
}
