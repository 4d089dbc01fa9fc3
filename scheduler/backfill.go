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
	return fmt.Sprintf("; reserved to start at %s on %s", clock(r.at), where)
}

// endOf is when a running job is expected to free its GPUs: its start plus
// its estimate, but never before now (a job past its estimate may end any
// moment), and now for a job already being stopped.
func (c *Core) endOf(j *jobRec, now time.Time) time.Time {
	if j.stopping || j.StartedAt == nil {
		return now
	}
	end := j.StartedAt.Add(c.estimateOf(j))
	if end.Before(now) {
		return now
	}
	return end
}

// reserve finds the earliest time and place the job j can start, from the
// expected ends of the running jobs (and the wake delay of suspended
// nodes). It returns nil when no node could ever hold it.
func (c *Core) reserve(j *jobRec, now time.Time) *reservation {
	need := j.Spec.GPUs
	type slot struct {
		n  *nodeState
		at time.Time
		// freeAt is the node's free GPUs at `at`.
		freeAt int
	}
	whole := c.policy.MultiNode && need > c.maxNodeGPUs()
	var slots []slot
	for _, n := range c.order {
		if n.State != api.NodeUp || (!whole && n.total() < need) {
			continue
		}
		if n.power() == api.PowerSuspended {
			slots = append(slots, slot{n, now.Add(c.policy.Node.WakeDelay), n.total()})
			continue
		}
		type rel struct {
			at   time.Time
			gpus int
		}
		var rels []rel
		for id := range n.jobs {
			h := c.jobs[id]
			g := 0
			for _, hid := range n.holder {
				if hid == id {
					g++
				}
			}
			rels = append(rels, rel{c.endOf(h, now), g})
		}
		slices.SortFunc(rels, func(a, b rel) int { return a.at.Compare(b.at) })
		at, free := now, n.free()
		if n.power() == api.PowerResuming && n.readyAt.After(at) {
			at = n.readyAt
		}
		target := need
		if whole {
			target = n.total()
		}
		for _, r := range rels {
			if free >= target {
				break
			}
			free += r.gpus
			if r.at.After(at) {
				at = r.at
			}
		}
		if free >= target {
			slots = append(slots, slot{n, at, free})
		}
	}
	if len(slots) == 0 {
		return nil
	}
	slices.SortStableFunc(slots, func(a, b slot) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.n.ord - b.n.ord
	})
	r := &reservation{job: j, nodes: map[*nodeState]bool{}, gang: whole}
	if !whole {
		s := slots[0]
		r.at, r.surplus = s.at, s.freeAt-need
		r.nodes[s.n] = true
		return r
	}
	per := c.maxNodeGPUs()
	k := (need + per - 1) / per
	if len(slots) < k {
		return nil
	}
	for _, s := range slots[:k] {
		r.nodes[s.n] = true
		r.at = s.at
	}
	return r
}
