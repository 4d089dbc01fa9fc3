package web

import (
	"context"
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

type commitReq struct {
	ch   storage.Batch
	done chan error
	// place asks for a scheduling pass once the batch is written (a new job
	// waits for one); one pass serves the whole batch.
	place bool
}

type committer struct {
	mu        sync.Mutex
	queue     []*commitReq
	wake      chan struct{}
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

func newCommitter() *committer {
	return &committer{wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// enqueue adds an event's changes; callers hold Server.mu.
func (c *committer) enqueue(ch storage.Batch, place bool) *commitReq {
	req := &commitReq{ch: ch, done: make(chan error, 1), place: place}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return req
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
			s.writeBatch(c.take()) // whatever came in before Close
			return
		}
		s.writeBatch(c.take())
	}
}

func (s *Server) writeBatch(batch []*commitReq) {
	if len(batch) == 0 {
		return
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
		// New jobs get placed (or their waiting reason) without a pass per
		// request, before their submitters hear back. The pass's changes go
		// into the next batch; no reply waits for them, and any heartbeat
		// that tells an agent about a placement is queued after them, so it
		// is answered only once they are stored.
		s.mu.Lock()
		start := time.Now()
		ch := batchOf(s.core.Schedule(s.now()))
		s.metrics.decision(context.Background(), "schedule", time.Since(start))
		if !empty(ch) {
			s.commits.enqueue(ch, false)
		}
		s.mu.Unlock()
	}
	for _, r := range batch {
		r.done <- err
	}
}
