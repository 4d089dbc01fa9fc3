package web

import (
	"context"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

// Group commit.
//
// Every event (submit, cancel, heartbeat, tick) runs through the core under
// Server.mu and leaves a commitReq in the queue before it lets go of the
// lock, so the queue holds the changes in the order the core made them. One
// goroutine, commitLoop, takes everything queued, merges it (the later copy
// of a job or node wins) and writes it in one synced bbolt transaction: many
// requests share one fsync. Each request waits for the batch that holds its
// changes; nothing is acknowledged before it is on disk, and because batches
// are written in order, whatever an event saw in memory (a placement made by
// an earlier request, say) is on disk before that event is answered.
//
// On a failed write the loop takes Server.mu, fails the batch and every
// request queued after it (their events were applied on top of the lost
// changes), and rebuilds the core from disk, so memory never keeps what the
// disk does not. Reads (GET) see the core and may show a change a few
// milliseconds before it is durable; its own request is not answered until it
// is.

// Telemetry.
//
// A heartbeat whose changes are telemetry only (scheduler.Changes.Telemetry:
// energy, cost and CO2 metered from the GPUs' cumulative counters, the
// counters, progress, derived limits, samples) is not synced before its
// reply. Its changes wait in the committer's telemetry buffer, grouped by the
// node that metered them, and are written every flush interval
// (--telemetry-flush; in flushParts slices of the nodes spread over the
// interval, see flushPart) in synced transactions, and on Close. The rule that
// keeps energy whole: a node's stored counters, the energy its heartbeats
// gave to jobs, and its per-day usage rows are always written together.
// Whenever a synced batch writes a node, or a job some node metered energy
// into since it was last written, that node's buffered telemetry (node, the
// jobs it metered, its usage rows) goes into the same transaction, and so,
// transitively, does that of every other node that metered into those jobs.
// After kill -9 the disk holds, for every node, counters and energy as of
// one moment; the next heartbeat's counter delta gives the lost interval to
// the jobs holding the GPUs then. Nothing is lost; it is attributed later.
//
// Such a heartbeat still waits for the last synced batch that touched its
// node (a placement, a cancel): its reply may tell the agent about it, and
// an agent must never act on a change the disk does not hold.

type commitReq struct {
	ch storage.Batch
	// done is closed once the batch holding ch is written (err nil) or
	// failed.
	done chan struct{}
	err  error
	// place asks for a scheduling pass once the batch is written (a new job
	// waits for one); one pass serves the whole batch.
	place bool
}

// finish records how the request's write went, lets go of its changes
// (committer.last may hold the request a while) and wakes its waiters.
func (r *commitReq) finish(err error) {
	r.err, r.ch = err, storage.Batch{}
	close(r.done)
}

// wait blocks until the request's batch is written and says how it went.
func (r *commitReq) wait() error {
	<-r.done
	return r.err
}

type committer struct {
	mu    sync.Mutex
	queue []*commitReq
	// tele is the buffered telemetry; last is, per node, the latest synced
	// request that touched it.
	tele      telemetry
	last      map[string]*commitReq
	wake      chan struct{}
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// telemetry is buffered telemetry-only changes (see above).
type telemetry struct {
	nodes map[string]api.Node
	jobs  map[string]api.Job
	// usage holds the usage rows by the node that metered them, added up
	// by row key (a node's 5 heartbeats of a flush make one row per job).
	usage map[string]map[string]api.Usage
	// metered[node] lists the jobs node metered energy into since they were
	// last written; meteredBy is the same relation the other way round (a
	// slice: mostly one node).
	metered     map[string]map[string]bool
	meteredBy   map[string][]string
	nodeSamples map[string]api.NodeSample
	jobSamples  map[string]api.JobSample
}

func (t *telemetry) empty() bool {
	return len(t.nodes) == 0 && len(t.jobs) == 0 && len(t.usage) == 0 && len(t.nodeSamples) == 0 && len(t.jobSamples) == 0
}

// add buffers one telemetry-only heartbeat of node. It reports false, adding
// nothing, when a sample of a series is already buffered (the caller flushes
// first: a batch holds one sample per series).
func (t *telemetry) add(node string, b storage.Batch) bool {
	for k := range b.NodeSamples {
		if _, ok := t.nodeSamples[k]; ok {
			return false
		}
	}
	for k := range b.JobSamples {
		if _, ok := t.jobSamples[k]; ok {
			return false
		}
	}
	if t.nodes == nil {
		*t = telemetry{nodes: map[string]api.Node{}, jobs: map[string]api.Job{}, usage: map[string]map[string]api.Usage{},
			metered: map[string]map[string]bool{}, meteredBy: map[string][]string{},
			nodeSamples: map[string]api.NodeSample{}, jobSamples: map[string]api.JobSample{}}
	}
	for _, n := range b.Nodes {
		t.nodes[n.Name] = n
	}
	for _, j := range b.Jobs {
		t.jobs[j.ID] = j
		if j.Node == node || slices.Contains(j.GangNodes, node) {
			if t.metered[node] == nil {
				t.metered[node] = map[string]bool{}
			}
			t.metered[node][j.ID] = true
			if by := t.meteredBy[j.ID]; !slices.Contains(by, node) {
				t.meteredBy[j.ID] = append(by, node)
			}
		}
	}
	for _, u := range b.Usage {
		rows := t.usage[u.Node]
		if rows == nil {
			rows = map[string]api.Usage{}
			t.usage[u.Node] = rows
		}
		k := u.Key()
		if r, ok := rows[k]; ok {
			r.Add(u)
			u = r
		}
		rows[k] = u
	}
	maps.Copy(t.nodeSamples, b.NodeSamples)
	maps.Copy(t.jobSamples, b.JobSamples)
	return true
}

// pull takes out of the buffer what must be written with batch b (see
// above): the buffered telemetry of every node b writes or that metered into
// a job b writes, closed over the jobs those nodes metered into. Buffered
// copies of what b itself writes are dropped (b's are later).
func (t *telemetry) pull(b storage.Batch) storage.Batch {
	var out storage.Batch
	if t.nodes == nil {
		return out
	}
	var todo []string
	for _, n := range b.Nodes {
		todo = append(todo, n.Name)
	}
	takeJob := func(id string, keep bool) {
		if j, ok := t.jobs[id]; ok {
			if keep {
				out.Jobs = append(out.Jobs, j)
			}
			delete(t.jobs, id)
		}
		for _, n := range t.meteredBy[id] {
			todo = append(todo, n)
			delete(t.metered[n], id)
		}
		delete(t.meteredBy, id)
	}
	for _, j := range b.Jobs {
		takeJob(j.ID, false)
	}
	seen := map[string]bool{}
	for len(todo) > 0 {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
		if n, ok := t.nodes[name]; ok {
			out.Nodes = append(out.Nodes, n)
			delete(t.nodes, name)
		}
		for _, u := range t.usage[name] {
			out.Usage = append(out.Usage, u)
		}
		delete(t.usage, name)
		for id := range t.metered[name] {
			takeJob(id, true)
		}
		delete(t.metered, name)
	}
	return out
}

// take empties the buffer into one batch.
func (t *telemetry) take() storage.Batch {
	var out storage.Batch
	for _, n := range t.nodes {
		out.Nodes = append(out.Nodes, n)
	}
	for _, j := range t.jobs {
		out.Jobs = append(out.Jobs, j)
	}
	for _, rows := range t.usage {
		for _, u := range rows {
			out.Usage = append(out.Usage, u)
		}
	}
	if len(t.nodeSamples) > 0 {
		out.NodeSamples = t.nodeSamples
	}
	if len(t.jobSamples) > 0 {
		out.JobSamples = t.jobSamples
	}
	*t = telemetry{}
	return out
}

func newCommitter() *committer {
	return &committer{wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
		last: map[string]*commitReq{}}
}

// enqueue adds an event's changes, to be synced, with the buffered telemetry
// they need; callers hold Server.mu.
func (c *committer) enqueue(ch storage.Batch, place bool) *commitReq {
	c.mu.Lock()
	if pulled := c.tele.pull(ch); !empty(pulled) {
		ch = concat(pulled, ch)
	}
	req := c.push(ch, place)
	for _, n := range ch.Nodes {
		c.last[n.Name] = req
	}
	for _, j := range ch.Jobs {
		if j.Node != "" {
			c.last[j.Node] = req
		}
		for _, n := range j.GangNodes {
			c.last[n] = req
		}
	}
	c.mu.Unlock()
	return req
}

// push queues a request and wakes the loop; c.mu is held.
func (c *committer) push(ch storage.Batch, place bool) *commitReq {
	req := &commitReq{ch: ch, done: make(chan struct{}), place: place}
	c.queue = append(c.queue, req)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return req
}

// deferTelemetry buffers a telemetry-only heartbeat of node and returns the
// request its reply must wait for: the last synced one that touched the
// node, or nil when that is written already. Callers hold Server.mu.
func (c *committer) deferTelemetry(node string, ch storage.Batch) *commitReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tele.add(node, ch) {
		// A sample of a series is buffered already: flush, then buffer.
		c.push(c.tele.take(), false)
		c.tele.add(node, ch)
	}
	if r := c.last[node]; r != nil {
		select {
		case <-r.done:
			delete(c.last, node)
		default:
			return r
		}
	}
	return nil
}

// flushTelemetry queues the buffered telemetry as one synced request (nil
// when there is none).
func (c *committer) flushTelemetry() *commitReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tele.empty() {
		return nil
	}
	return c.push(c.tele.take(), false)
}

// flushParts is how many slices of the nodes the periodic flush writes in
// turn: every flush interval / flushParts one slice, so each node's
// telemetry is still written every flush interval, but no single write
// holds the whole cluster's (which would stall the synced requests queued
// behind it).
const flushParts = 5

// flushPart queues part k (0..flushParts-1) of the buffered telemetry: the
// nodes whose name hashes to k, with everything pull takes along; part 0
// also takes what belongs to no node (limits recorded for jobs, job
// samples). Nil when there is nothing to write.
func (c *committer) flushPart(k int) *commitReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tele.empty() {
		return nil
	}
	var sel storage.Batch
	for name := range c.tele.nodes {
		if nodePart(name) == k {
			sel.Nodes = append(sel.Nodes, api.Node{Name: name})
		}
	}
	for name := range c.tele.usage {
		if _, ok := c.tele.nodes[name]; !ok && nodePart(name) == k {
			sel.Nodes = append(sel.Nodes, api.Node{Name: name})
		}
	}
	b := c.tele.pull(sel)
	for name, smp := range c.tele.nodeSamples {
		if nodePart(name) == k {
			if b.NodeSamples == nil {
				b.NodeSamples = map[string]api.NodeSample{}
			}
			b.NodeSamples[name] = smp
			delete(c.tele.nodeSamples, name)
		}
	}
	if k == 0 {
		for id, j := range c.tele.jobs {
			if len(c.tele.meteredBy[id]) == 0 { // no node's counters depend on it
				b.Jobs = append(b.Jobs, j)
				delete(c.tele.jobs, id)
			}
		}
		if len(c.tele.jobSamples) > 0 {
			b.JobSamples, c.tele.jobSamples = c.tele.jobSamples, map[string]api.JobSample{}
		}
	}
	if empty(b) {
		return nil
	}
	return c.push(b, false)
}

func nodePart(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % flushParts)
}

// dropTelemetry forgets the buffer: after a failed write the core is
// rebuilt from disk, and the next heartbeats meter the interval again.
func (c *committer) dropTelemetry() {
	c.mu.Lock()
	c.tele = telemetry{}
	c.mu.Unlock()
}

func concat(a, b storage.Batch) storage.Batch {
	out := storage.Batch{
		Jobs:  append(a.Jobs, b.Jobs...),
		Nodes: append(a.Nodes, b.Nodes...),
		Usage: append(a.Usage, b.Usage...),
	}
	out.NodeSamples, out.JobSamples = b.NodeSamples, b.JobSamples
	return out
}

func (c *committer) take() []*commitReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// merge folds a batch of requests into one storage batch: the last copy of
// each job and node wins, usage rows (additive) are all kept, and of two
// telemetry samples of one series in the same batch the later one is kept.
func merge(batch []*commitReq) storage.Batch {
	var out storage.Batch
	ji, ni := map[string]int{}, map[string]int{}
	for _, r := range batch {
		for _, j := range r.ch.Jobs {
			if i, ok := ji[j.ID]; ok {
				out.Jobs[i] = j
				continue
			}
			ji[j.ID] = len(out.Jobs)
			out.Jobs = append(out.Jobs, j)
		}
		for _, n := range r.ch.Nodes {
			if i, ok := ni[n.Name]; ok {
				out.Nodes[i] = n
				continue
			}
			ni[n.Name] = len(out.Nodes)
			out.Nodes = append(out.Nodes, n)
		}
		out.Usage = append(out.Usage, r.ch.Usage...)
		for k, v := range r.ch.NodeSamples {
			if out.NodeSamples == nil {
				out.NodeSamples = map[string]api.NodeSample{}
			}
			out.NodeSamples[k] = v
		}
		for k, v := range r.ch.JobSamples {
			if out.JobSamples == nil {
				out.JobSamples = map[string]api.JobSample{}
			}
			out.JobSamples[k] = v
		}
	}
	return out
}

func empty(b storage.Batch) bool {
	return len(b.Jobs) == 0 && len(b.Nodes) == 0 && len(b.Usage) == 0 && len(b.NodeSamples) == 0 && len(b.JobSamples) == 0
}

// commitLoop writes queued changes until Close; see the comment above.
func (s *Server) commitLoop() {
	c := s.commits
	defer close(c.stopped)
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.flushTelemetry()   // buffered telemetry is written on a clean stop
			s.writeAll(c.take()) // whatever came in before Close
			return
		}
		s.writeAll(c.take())
	}
}

// writeAll writes queued requests in order, one transaction for each run of
// them that holds at most one sample per series (a batch keeps one); when a
// write fails, the requests after it fail too.
func (s *Server) writeAll(batch []*commitReq) {
	for len(batch) > 0 {
		n := sampleRun(batch)
		if err := s.writeBatch(batch[:n:n]); err != nil { // [:n:n]: a failed write appends to its slice
			for _, r := range batch[n:] {
				r.finish(err)
			}
			return
		}
		batch = batch[n:]
	}
}

// sampleRun is how many requests from the start of batch hold no two samples
// of one series (at least 1).
func sampleRun(batch []*commitReq) int {
	seen := map[string]bool{}
	for i, r := range batch {
		for k := range r.ch.NodeSamples {
			if seen["node/"+k] && i > 0 {
				return i
			}
			seen["node/"+k] = true
		}
		for k := range r.ch.JobSamples {
			if seen["job/"+k] && i > 0 {
				return i
			}
			seen["job/"+k] = true
		}
	}
	return len(batch)
}

func (s *Server) writeBatch(batch []*commitReq) error {
	if len(batch) == 0 {
		return nil
	}
	b := merge(batch)
	var err error
	if !empty(b) {
		start := time.Now()
		err = s.save(b)
		s.metrics.commit(len(batch), time.Since(start))
	}
	if err != nil {
		s.mu.Lock()
		batch = append(batch, s.commits.take()...)
		s.commits.dropTelemetry()
		s.log.Error("store failed; reloading state from disk", "err", err, "requests_failed", len(batch))
		if rerr := s.reload(); rerr != nil {
			s.log.Error("reload failed", "err", rerr)
		}
		s.mu.Unlock()
	}
	place := false
	for _, r := range batch {
		place = place || r.place
	}
	if place && err == nil {
		// The requests that wait for no pass (heartbeats, cancels, flushes)
		// are answered now: their changes are on disk, and the pass would
		// only keep them waiting for the server lock.
		for _, r := range batch {
			if !r.place {
				r.finish(nil)
			}
		}
		// New jobs get placed (or their waiting reason) without a pass per
		// request, before their submitters hear back. The pass's changes go
		// into the next batch; no reply waits for them, and any heartbeat
		// that tells an agent about a placement is queued after them, so it
		// is answered only once they are stored.
		asked := time.Now()
		s.mu.Lock()
		start := time.Now()
		s.metrics.waited("schedule", start.Sub(asked))
		ch := batchOf(s.core.Schedule(s.now()))
		s.metrics.decision(context.Background(), "schedule", time.Since(start))
		if !empty(ch) {
			s.commits.enqueue(ch, false)
		}
		s.mu.Unlock()
		for _, r := range batch {
			if r.place {
				r.finish(nil)
			}
		}
		return nil
	}
	for _, r := range batch {
		r.finish(err)
	}
	return err
}

// flushLoop queues the buffered telemetry until Close: one part of it
// (flushPart) every s.flushEvery / flushParts, so all of it every
// s.flushEvery.
func (s *Server) flushLoop() {
	for k := 0; ; k = (k + 1) % flushParts {
		every := s.telemetryFlush() / flushParts
		if every <= 0 {
			every = time.Second // flushing is off: look again later
		}
		select {
		case <-s.commits.stop:
			return
		case <-time.After(every):
			s.commits.flushPart(k)
		}
	}
}
