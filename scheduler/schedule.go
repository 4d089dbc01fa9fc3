package scheduler

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
)

// MaxCandidatesShown is how many candidates a job's placement metrics keep.
const MaxCandidatesShown = 3

// perBucket is how many nodes the filter takes from each (model, free GPUs)
// bucket. The best-fit and first-fit winners are always the first node of
// some bucket, so a handful is enough to rank them and to explain.
const perBucket = 2

// Schedule is one scheduling pass: it walks the queue in order (priority
// minus fair-share penalty, then submission time) and runs the placement
// pipeline for each job. Under a backfill policy the first job that cannot
// start gets a reservation (EASY backfill): later jobs start now only if
// they do not delay it. Without backfill a job that does not fit waits with
// a reason and does not block smaller jobs behind it. A job the pipeline
// placed still starts only if the power budget in force allows it there
// (powerAdmits, power.go); otherwise it waits with a reason that says so.
// Deferrable jobs are first swept (planned, released when due) and, under a
// DeferrableYield policy, placed around the queue: urgent ones first,
// earliest deadline first; the others after it (offpeak.go).
//
// A pass stops early when no GPU is free or wakeable, or after MaxScan jobs
// that could not start; jobs it did not reach keep their last reason.
func (c *Core) Schedule(now time.Time) Changes {
	var ch Changes
	c.freed = false
	// Under a budget that holds running jobs down (or cannot hold the awake
	// GPUs at all), idle nodes give their watts back, and if that is not
	// enough, running jobs stop (power.go).
	c.shedIdle(now, &ch)
	c.shedJobs(now, &ch)
	clear(c.keepAwake) // this pass decides again (holdForUrgent)
	cur := c.queue.cursor()
	j := cur.next()
	if j == nil {
		c.setHurry(false)
		return ch
	}
	c.reorder()
	c.recomputeShares(now)
	var res *reservation
	blocked, scanned := 0, 0
	// waiting counts the jobs left without GPUs that do not yield
	// (HurryWhenQueued).
	waiting := 0
	// Reasons repeat: within a pass they depend only on the job's size and
	// the reservation until the next placement, so they are built once.
	c.reasons = map[reasonKey]string{}
	c.lastRes = nil
	c.forgetRefusals() // power refusals hold within one pass
	full := func() bool {
		// With nothing free, only the head job is examined (for its reason
		// and reservation).
		return (c.avail == 0 && scanned > 0) || (c.policy.MaxScan > 0 && blocked >= c.policy.MaxScan)
	}
	// consider runs the placement pipeline for one job and starts it if it
	// may start.
	consider := func(j *jobRec) {
		scanned++
		if p := c.jobs[j.yieldTo]; p != nil && p.State == api.StateQueued {
			c.setWaiting(j, fmt.Sprintf("preempted for job %s; waits until it starts", p.ID), &ch)
			return
		}
		j.yieldTo = ""
		d, reason := c.place(j, res, now)
		if d != nil {
			// A deferrable job's operating point follows its deadline.
			c.deferrablePoint(j, d, now)
			// The power budget in force must allow it there (power.go),
			// perhaps with idle nodes suspended to make room.
			r, shed := c.powerAdmits(j, d, now)
			if r != "" {
				blocked++
				c.setWaiting(j, r, &ch)
				return
			}
			for _, n := range shed {
				c.suspend(n, now, &ch)
			}
		}
		if d == nil {
			if !(c.policy.DeferrableYield && j.Spec.Deferrable && !c.isUrgent(j, now)) {
				waiting++
			}
			if blocked == 0 && c.policy.PreemptGap > 0 {
				if victims := c.preempt(j, now); len(victims) > 0 {
					ids := make([]string, len(victims))
					for i, v := range victims {
						ids[i] = v.ID
						ch.addJob(v)
					}
					reason += fmt.Sprintf("; preempting %s on %s", strings.Join(ids, ", "), victims[0].Node)
				}
			}
			if res == nil && c.policy.Backfill {
				if res = c.reserve(j, now); res != nil {
					c.lastRes = res
					reason += res.describe()
					if c.isUrgent(j, now) {
						// Its deadline is near: the reserved nodes are
						// readied for it (offpeak.go).
						c.holdForUrgent(res, now, &ch)
					}
				}
			} else if res == nil && blocked > 0 {
				reason += fmt.Sprintf("; behind %d higher-priority %s", blocked, plural(blocked, "job", "jobs"))
			}
			blocked++
			c.setWaiting(j, reason, &ch)
			return
		}
		for _, n := range c.start(j, d, res, now) {
			ch.addNode(n)
		}
		ch.addJob(j)
		clear(c.reasons)
	}
	// Under DeferrableYield (offpeak.go), the pass runs in three steps:
	//  1. released deferrable jobs whose deadline nears (urgent), earliest
	//     deadline first;
	//  2. the queue in order, leaving out released deferrable jobs;
	//  3. the released deferrable jobs that are not urgent, earliest
	//     deadline first, in what steps 1 and 2 left.
	urgent := c.sweepDeferrable(now, &ch)
	for _, u := range urgent {
		if full() {
			break
		}
		consider(u)
	}
	var yielded []*jobRec
	for ; j != nil; j = cur.next() {
		if full() {
			break
		}
		// A deferrable job first asks the off-peak planner (PlanStart)
		// whether to wait for a cheaper window that meets its deadline.
		if j.Spec.Deferrable {
			if c.deferJob(j, now, &ch) {
				continue
			}
			if c.policy.DeferrableYield {
				if !c.isUrgent(j, now) { // urgent ones had their turn
					yielded = append(yielded, j)
				}
				continue
			}
		}
		consider(j)
	}
	sortByDeadline(yielded)
	for _, y := range yielded {
		if full() {
			break
		}
		consider(y)
	}
	// And once the jobs it started hold their watts.
	c.shedIdle(now, &ch)
	c.setHurry(waiting > 0)
	return ch
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type reasonKey struct {
	need int
	held bool
	res  *reservation
}

// candidate is one node (or, for a multi-node job, one group of whole nodes)
// the pipeline scores.
type candidate struct {
	nodes []*nodeState
	in    []ScoreInput
	score float64
	parts []api.ScorePart
}

// decision is the pipeline's answer for one job.
type decision struct {
	nodes     []*nodeState
	placement *api.Placement
}

// place is the placement pipeline for one job, whole:
//
//  1. filter: feasible nodes read from the index: up, awake or suspended
//     (to be woken), with enough free GPUs on one node (or, for a multi-node
//     job under a MultiNode policy, enough whole free nodes), and not held
//     for the reserved head job unless the job cannot delay it;
//  2. score: every policy scorer gives every candidate a part in [0, 1];
//     the candidate's score is the weighted sum;
//  3. select: the highest score wins, ties to the first name, so the result
//     is deterministic; the best few, with their parts, become the job's
//     placement metrics.
//
// With no candidate it returns the reason the job waits.
func (c *Core) place(j *jobRec, res *reservation, now time.Time) (*decision, string) {
	est := c.estimateOf(j)
	cands, evaluated, held := c.filter(j, res, est, now)
	if len(cands) == 0 {
		k := reasonKey{need: j.Spec.GPUs, held: held > 0, res: res}
		r, ok := c.reasons[k]
		if !ok {
			r = c.waitReason(j, res, held)
			c.reasons[k] = r
		}
		return nil, r
	}
	c.score(cands, j, est)
	best := selectBest(cands)
	return &decision{nodes: best.nodes, placement: c.metrics(cands, evaluated)}, ""
}

// filter gathers the feasible candidates from the index. It also counts the
// nodes it looked at and those it skipped because they are held for the
// reserved job.
func (c *Core) filter(j *jobRec, res *reservation, est time.Duration, now time.Time) (cands []*candidate, evaluated, held int) {
	need := j.Spec.GPUs
	allows := func(n *nodeState) bool {
		evaluated++
		if p := c.preemptingFor(n); p != nil && p != j {
			return false // its GPUs are being freed for another job
		}
		if res.allows(need, n, now.Add(est)) {
			return true
		}
		held++
		return false
	}
	for m := range c.modelList {
		buckets := c.awake[m]
		if need > c.modelList[m].size && c.policy.MultiNode {
			if g := c.gang(m, need, allows); g != nil {
				cands = append(cands, g)
			}
			continue
		}
		for f := max(need, 0); f < len(buckets); f++ {
			taken := 0
			for ord := buckets[f].next(0); ord >= 0 && taken < perBucket; ord = buckets[f].next(ord + 1) {
				if n := c.order[ord]; allows(n) {
					cands = append(cands, &candidate{nodes: []*nodeState{n}})
					taken++
				}
			}
		}
		// One suspended node that could hold it, the first by name.
		for ord := c.asleep[m].next(0); ord >= 0; ord = c.asleep[m].next(ord + 1) {
			if n := c.order[ord]; n.total() >= need && allows(n) {
				cands = append(cands, &candidate{nodes: []*nodeState{n}})
				break
			}
		}
	}
	return cands, evaluated, held
}

// gang picks whole free nodes of model m for a job larger than one node:
// awake empty nodes first by name, then suspended ones; it needs
// ceil(need / GPUs per node) of them.
func (c *Core) gang(m, need int, allows func(*nodeState) bool) *candidate {
	per := c.modelList[m].size
	if per <= 0 {
		return nil
	}
	k := (need + per - 1) / per
	var nodes []*nodeState
	if per < len(c.awake[m]) {
		b := c.awake[m][per]
		for ord := b.next(0); ord >= 0 && len(nodes) < k; ord = b.next(ord + 1) {
			if n := c.order[ord]; allows(n) {
				nodes = append(nodes, n)
			}
		}
	}
	for ord := c.asleep[m].next(0); ord >= 0 && len(nodes) < k; ord = c.asleep[m].next(ord + 1) {
		if n := c.order[ord]; n.total() == per && allows(n) {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) < k {
		return nil
	}
	return &candidate{nodes: nodes}
}

// score fills every candidate's inputs, parts and weighted score.
func (c *Core) score(cands []*candidate, j *jobRec, est time.Duration) {
	ideal := math.Inf(1)
	for _, cd := range cands {
		cd.in = make([]ScoreInput, len(cd.nodes))
		for i, n := range cd.nodes {
			need := j.Spec.GPUs
			if len(cd.nodes) > 1 {
				need = n.total()
			}
			cd.in[i] = ScoreInput{Need: need, Free: n.free(), Total: n.total(), Ord: n.ord, Nodes: len(c.order),
				Power: n.power(), GPU: c.modelList[n.model].model, NodePower: c.policy.Node,
				Estimate: est}
			if c.policy.SuspendIdle {
				cd.in[i].IdleTimeout = c.policy.IdleTimeout
			}
		}
	}
	// The energy scorer's reference: the least the job could add on any
	// candidate's GPU model if that node were awake and already in use.
	for _, cd := range cands {
		e := 0.0
		for _, in := range cd.in {
			in.Power, in.IdleTimeout = api.PowerOn, 0
			e += MarginalEnergyJ(in)
		}
		ideal = math.Min(ideal, e)
	}
	for _, cd := range cands {
		cd.score = 0
		cd.parts = make([]api.ScorePart, 0, len(c.policy.Scorers))
		for _, s := range c.policy.Scorers {
			sum := 0.0
			for i := range cd.in {
				in := cd.in[i]
				in.IdealJ = ideal / float64(len(cd.in))
				sum += scorerFuncs[s.Name](in)
			}
			v := sum / float64(len(cd.in))
			cd.parts = append(cd.parts, api.ScorePart{Scorer: s.Name, Score: round4(v), Weight: s.Weight})
			cd.score += s.Weight * v
		}
	}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// selectBest returns the highest-scoring candidate; ties go to the first
// node by name.
func selectBest(cands []*candidate) *candidate {
	best := cands[0]
	for _, cd := range cands[1:] {
		if cd.score > best.score || (cd.score == best.score && cd.nodes[0].ord < best.nodes[0].ord) {
			best = cd
		}
	}
	return best
}

// metrics keeps the best few candidates, best first, as placement metrics.
func (c *Core) metrics(cands []*candidate, evaluated int) *api.Placement {
	slices.SortStableFunc(cands, func(a, b *candidate) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return a.nodes[0].ord - b.nodes[0].ord
	})
	p := &api.Placement{Policy: c.policy.Name, Evaluated: evaluated}
	for _, cd := range cands[:min(len(cands), MaxCandidatesShown)] {
		name := cd.nodes[0].Name
		if len(cd.nodes) > 1 {
			name = fmt.Sprintf("%s+%d", name, len(cd.nodes)-1)
		}
		p.Candidates = append(p.Candidates, api.Candidate{Node: name, Score: round4(cd.score), Parts: cd.parts,
			Power: cd.nodes[0].power()})
	}
	return p
}

// waitReason says why a job found no node, in words a person can act on.
func (c *Core) waitReason(j *jobRec, res *reservation, held int) string {
	if len(c.nodes) == 0 {
		return "no node is up; waiting for an agent to register"
	}
	if held > 0 && res != nil {
		return fmt.Sprintf("reserved for job %s at %s", res.job.ID, clockAt(res.at))
	}
	free, name := c.largestBlock()
	need := j.Spec.GPUs
	if name == "" {
		return fmt.Sprintf("needs %d GPUs on one node; no node is up and awake", need)
	}
	if c.policy.MultiNode && need > c.maxNodeGPUs() {
		return fmt.Sprintf("needs %d GPUs on whole nodes; not enough nodes are free", need)
	}
	return fmt.Sprintf("needs %d GPUs on one node; the largest free block is %d (%s)", need, free, name)
}

// clockAt formats a reservation or wake-up time for a reason.
func clockAt(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// largestBlock is the most free GPUs on one up node, and the first such node
// by name (suspended nodes count with all their GPUs).
func (c *Core) largestBlock() (int, string) {
	best, name, bestOrd := -1, "", -1
	for m := range c.modelList {
		for f := len(c.awake[m]) - 1; f >= 0 && f >= best; f-- {
			if ord := c.awake[m][f].next(0); ord >= 0 {
				if f > best || ord < bestOrd {
					best, bestOrd = f, ord
				}
				break
			}
		}
		if ord := c.asleep[m].next(0); ord >= 0 {
			if t := c.order[ord].total(); t > best || (t == best && ord < bestOrd) {
				best, bestOrd = t, ord
			}
		}
	}
	if bestOrd >= 0 {
		name = c.order[bestOrd].Name
	}
	return best, name
}

func (c *Core) maxNodeGPUs() int {
	m := 0
	for _, mi := range c.modelList {
		m = max(m, mi.size)
	}
	return m
}

// start applies a decision: the job holds its GPUs from now; on a node
// that must wake first it starts when the node is ready. It returns the
// nodes it woke.
func (c *Core) start(j *jobRec, d *decision, res *reservation, now time.Time) (woken []*nodeState) {
	startAt := now
	for _, n := range d.nodes {
		if n.power() == api.PowerSuspended {
			c.setPower(n, api.PowerResuming, now)
			woken = append(woken, n)
		}
		if n.power() == api.PowerResuming && n.readyAt.After(startAt) {
			startAt = n.readyAt
		}
	}
	first := d.nodes[0]
	j.Node, j.GangNodes, j.GPUIndices = first.Name, nil, nil
	if len(d.nodes) > 1 {
		for _, n := range d.nodes {
			j.GangNodes = append(j.GangNodes, n.Name)
		}
		for _, g := range first.GPUs {
			j.GPUIndices = append(j.GPUIndices, g.Index)
		}
	} else {
		for _, g := range first.GPUs {
			if len(j.GPUIndices) == j.Spec.GPUs {
				break
			}
			if _, busy := first.holder[g.Index]; !busy {
				j.GPUIndices = append(j.GPUIndices, g.Index)
			}
		}
		slices.Sort(j.GPUIndices)
	}
	res.consume(j.Spec.GPUs, first, now.Add(c.estimateOf(j)))
	t := startAt.UTC()
	j.dequeued()
	j.State, j.StartedAt, j.Placement, j.DeferredUntil = api.StateRunning, &t, d.placement, nil
	j.Reason, j.requeued = "", ""
	if startAt.After(now) {
		j.Reason = fmt.Sprintf("waiting for %s to wake up (ready at %s)", first.Name, clockAt(startAt))
	}
	c.hold(j, now)
	c.markAllocStale()
	return woken
}

// setWaiting gives a waiting job its reason, after why it was requeued
// (a node that went down) until it starts again, and notes the job in ch
// if the reason changed.
func (c *Core) setWaiting(j *jobRec, reason string, ch *Changes) {
	if j.requeued != "" {
		reason = j.requeued + "; " + reason
	}
	if j.Reason != reason {
		j.Reason = reason
		ch.addJob(j)
	}
}
