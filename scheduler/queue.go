package scheduler

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
)

// queue holds the waiting jobs as one sorted slice per (user, project)
// account. Within an account the order never changes (priority, then
// submission time, then id); fair share shifts a whole account, so the
// global order is a k-way merge of the accounts by effective priority,
// read lazily: a pass pays only for the jobs it looks at.
type queue struct {
	accounts map[string]*account
	list     []*account
}

type account struct {
	key, user, project string
	entries            []qentry
	// stale counts entries no longer queued; head is the first entry that
	// may still be live (everything before it is stale).
	stale, head int
	// penalty is the fair-share penalty in priority points.
	penalty float64
}

type qentry struct {
	j   *jobRec
	gen int
}

func newQueue() queue { return queue{accounts: map[string]*account{}} }

func (q *queue) account(user, project string) *account {
	key := user + "\x00" + project
	a := q.accounts[key]
	if a == nil {
		a = &account{key: key, user: user, project: project}
		q.accounts[key] = a
		q.list = append(q.list, a)
	}
	return a
}

// before is the order within an account.
func before(a, b *jobRec) int {
	return cmp.Or(
		cmp.Compare(b.Spec.Priority, a.Spec.Priority),
		a.SubmittedAt.Compare(b.SubmittedAt),
		cmp.Compare(a.seq, b.seq))
}

// enqueue adds a queued job to its account's slice.
func (c *Core) enqueue(j *jobRec) {
	j.qgen++
	if j.Spec.Deferrable {
		c.waitingDeferrable[j.ID] = j
	}
	a := j.acct
	e := qentry{j: j, gen: j.qgen}
	i, _ := slices.BinarySearchFunc(a.entries, j, func(e qentry, t *jobRec) int { return before(e.j, t) })
	a.entries = slices.Insert(a.entries, i, e)
	if i < a.head {
		a.head = i
	}
}

// dequeued records that a queued job left the queue (placed or cancelled).
func (j *jobRec) dequeued() {
	if j.acct != nil {
		j.acct.stale++
	}
}

func (e qentry) live() bool {
	return (e.j.State == api.StateQueued || e.j.State == api.StateDeferred) && e.j.qgen == e.gen
}

// compact drops stale entries when they are most of an account's slice.
func (a *account) compact() {
	if a.stale < 64 || a.stale*2 < len(a.entries) {
		return
	}
	a.entries = slices.DeleteFunc(a.entries, func(e qentry) bool { return !e.live() })
	a.stale, a.head = 0, 0
}

// cursor walks the queue in global order: highest effective priority
// (priority minus the account's fair-share penalty), then submission time,
// then id.
type cursor struct {
	h cursorHeap
}

type acctPos struct {
	a *account
	i int
}

type cursorHeap []acctPos

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(x, y int) bool {
	a, b := h[x], h[y]
	ja, jb := a.a.entries[a.i].j, b.a.entries[b.i].j
	pa := float64(ja.Spec.Priority) - a.a.penalty
	pb := float64(jb.Spec.Priority) - b.a.penalty
	if pa != pb {
		return pa > pb
	}
	if c := ja.SubmittedAt.Compare(jb.SubmittedAt); c != 0 {
		return c < 0
	}
	return ja.seq < jb.seq
}
func (h cursorHeap) Swap(x, y int) { h[x], h[y] = h[y], h[x] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(acctPos)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (q *queue) cursor() *cursor {
	c := &cursor{}
	for _, a := range q.list {
		a.compact()
		a.head = a.skip(a.head)
		if a.head < len(a.entries) {
			c.h = append(c.h, acctPos{a, a.head})
		}
	}
	heap.Init(&c.h)
	return c
}

// skip returns the first live entry at or after i, counting stale ones.
func (a *account) skip(i int) int {
	for i < len(a.entries) && !a.entries[i].live() {
		i++
	}
	return i
}

// next returns the next queued job, or nil at the end.
func (c *cursor) next() *jobRec {
	for len(c.h) > 0 {
		top := &c.h[0]
		e := top.a.entries[top.i]
		if !e.live() { // placed or cancelled since it was reached
			top.i = top.a.skip(top.i + 1)
			if top.i >= len(top.a.entries) {
				heap.Pop(&c.h)
			} else {
				heap.Fix(&c.h, 0)
			}
			continue
		}
		top.i = top.a.skip(top.i + 1)
		if top.i >= len(top.a.entries) {
			heap.Pop(&c.h)
		} else {
			heap.Fix(&c.h, 0)
		}
		return e.j
	}
	return nil
}

// fairShare tracks decayed GPU-seconds of usage per user and per project.
// Usage decays with the policy's half-life and grows by the GPUs each
// entity runs; both are integrated exactly between events, so the result
// does not depend on how often it is read.
type fairShare struct {
	users, projects map[string]*usage
	last            time.Time
	halfLife        time.Duration
}

type usage struct {
	gpuS    float64 // decayed GPU-seconds at `at`
	running int     // GPUs running now
	at      time.Time
}

func get(m map[string]*usage, k string) *usage {
	u := m[k]
	if u == nil {
		u = &usage{}
		m[k] = u
	}
	return u
}

// advance brings u to time now under half-life h: the old usage decays by
// 2^(-dt/h) and the running GPUs add their integral of the same decay,
// running x h/ln2 x (1 - 2^(-dt/h)). With h = 0 usage is never decayed.
func (u *usage) advance(now time.Time, h time.Duration) {
	if u.at.IsZero() || !now.After(u.at) {
		if u.at.IsZero() {
			u.at = now
		}
		return
	}
	dt := now.Sub(u.at).Seconds()
	if h <= 0 {
		u.gpuS += float64(u.running) * dt
	} else {
		f := math.Exp2(-dt / h.Seconds())
		u.gpuS = u.gpuS*f + float64(u.running)*h.Seconds()/math.Ln2*(1-f)
	}
	u.at = now
}

func (s *fairShare) start(j *jobRec, now time.Time) { s.add(j, now, +1) }
func (s *fairShare) stop(j *jobRec, now time.Time)  { s.add(j, now, -1) }

func (s *fairShare) add(j *jobRec, now time.Time, sign int) {
	for _, u := range []*usage{get(s.users, j.Spec.User), get(s.projects, j.Spec.Project)} {
		u.advance(now, s.halfLife)
		u.running += sign * j.Spec.GPUs
		if u.running < 0 {
			u.running = 0
		}
	}
}

// FairShareFactor is Slurm's classic fair-share factor 2^(-U/S): U is the
// entity's share of all usage, S its share of the cluster (1/entities). An
// entity using exactly its share gets 0.5, one using nothing 1, one using
// everything of many entities close to 0.
func FairShareFactor(usageGPUS, totalGPUS float64, entities int) float64 {
	if !(totalGPUS > 0) || entities <= 0 {
		return 1
	}
	return math.Exp2(-(usageGPUS / totalGPUS) * float64(entities))
}

// shareInterval is how often fair-share penalties are recomputed.
const shareInterval = time.Minute

// recomputeShares sets every account's penalty:
// weight x (1 - (F_user + F_project)/2), at most every shareInterval.
func (c *Core) recomputeShares(now time.Time) {
	w := c.policy.FairShareWeight
	if w == 0 || (!c.share.last.IsZero() && now.Sub(c.share.last) < shareInterval) {
		return
	}
	c.share.last = now
	h := c.policy.FairShareHalfLife
	factors := func(m map[string]*usage) map[string]float64 {
		total := 0.0
		for _, u := range m {
			u.advance(now, h)
			total += u.gpuS
		}
		f := make(map[string]float64, len(m))
		for k, u := range m {
			f[k] = FairShareFactor(u.gpuS, total, len(m))
		}
		return f
	}
	fu, fp := factors(c.share.users), factors(c.share.projects)
	for _, a := range c.queue.list {
		u, ok1 := fu[a.user]
		p, ok2 := fp[a.project]
		if !ok1 {
			u = 1
		}
		if !ok2 {
			p = 1
		}
		a.penalty = w * (1 - (u+p)/2)
	}
}

// estimate learns a runtime estimate per account: the mean of the last
// finished jobs' runtimes (an exponential moving average, weight 1/4).
type estimate struct {
	meanS float64
	n     int
}

func (c *Core) learn(j *jobRec, now time.Time) {
	if j.StartedAt == nil || j.State != api.StateSucceeded {
		return
	}
	d := now.Sub(*j.StartedAt).Seconds()
	if d <= 0 {
		return
	}
	e := c.est[j.acct.key]
	if e == nil {
		e = &estimate{}
		c.est[j.acct.key] = e
	}
	if e.n == 0 {
		e.meanS = d
	} else {
		e.meanS += (d - e.meanS) / 4
	}
	e.n++
}

// estimateOf is a job's expected runtime: its walltime, else its account's
// learned estimate, else the policy default.
func (c *Core) estimateOf(j *jobRec) time.Duration {
	if j.Spec.Walltime != nil && j.Spec.Walltime.Duration > 0 {
		return j.Spec.Walltime.Duration
	}
	if e := c.est[j.acct.key]; e != nil && e.n > 0 {
		return time.Duration(e.meanS * float64(time.Second))
	}
	return c.policy.DefaultEstimate
}
