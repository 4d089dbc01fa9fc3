package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

// Submissions are applied in groups.
//
// Under a burst, hundreds of submitters each taking Server.mu for a few
// microseconds of core work make a convoy: Go's mutex hands the lock to
// waiters in turn once they have waited a millisecond, and each handoff waits
// for the next waiter to be scheduled, so the lock spends most of its time
// held by goroutines that are not running. A heartbeat queues behind all of
// them. Instead, submit hands its decoded spec to one goroutine
// (submitLoop), which takes every submission waiting, applies them under one
// acquisition of Server.mu and queues their jobs as one commit request; each
// submitter then waits for that request's write, as before. The lock is taken
// once per group, not once per job, and heartbeats wait for at most one group.

// maxSubmitGroup bounds one group: a group holds Server.mu while the core
// takes its jobs (about 10 µs each), and a heartbeat may wait that long.
const maxSubmitGroup = 64

// submission is one submit request on its way through submitLoop.
type submission struct {
	spec api.JobSpec
	// Set by submitLoop before it closes applied: the job (err nil) or
	// the core's refusal, and the commit request holding the job.
	job     api.Job
	err     error
	req     *commitReq
	applied chan struct{}
}

// errClosed answers a submission that arrives as the server stops.
var errClosed = errors.New("schedulerd is stopping; submit again once it is back")

// submitJob applies spec in the next group and waits until its job is
// stored. A refusal by the core comes back as is (statusOf maps it); a
// failed write as a store error.
func (s *Server) submitJob(ctx context.Context, spec api.JobSpec) (api.Job, error) {
	_, span := s.tracer.Start(ctx, "scheduler.submit")
	defer span.End()
	sub := &submission{spec: spec, applied: make(chan struct{})}
	select {
	case s.submits <- sub:
	case <-s.commits.stop:
		return api.Job{}, errClosed
	}
	<-sub.applied
	if sub.err != nil {
		span.SetStatus(codes.Error, sub.err.Error())
		return api.Job{}, sub.err
	}
	if err := sub.req.wait(); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return api.Job{}, fmt.Errorf("store: %w", err)
	}
	return sub.job, nil
}

// submitLoop applies submissions in groups until Close.
func (s *Server) submitLoop() {
	group := make([]*submission, 0, maxSubmitGroup)
	for {
		select {
		case sub := <-s.submits:
			group = append(group[:0], sub)
		case <-s.commits.stop:
			return
		}
	more:
		for len(group) < maxSubmitGroup {
			select {
			case sub := <-s.submits:
				group = append(group, sub)
			default:
				break more
			}
		}
		s.applySubmissions(group)
	}
}

// applySubmissions runs one group through the core and queues its jobs as
// one commit request, which asks for a scheduling pass once written.
func (s *Server) applySubmissions(group []*submission) {
	asked := time.Now()
	s.mu.Lock()
	start := time.Now()
	s.metrics.waited("submit", start.Sub(asked))
	now := s.now()
	jobs := make([]api.Job, 0, len(group))
	for _, sub := range group {
		sub.job, sub.err = s.core.Submit(sub.spec, now)
		if sub.err == nil {
			jobs = append(jobs, sub.job)
		}
	}
	s.metrics.decision(context.Background(), "submit", time.Since(start))
	var req *commitReq
	if len(jobs) > 0 {
		req = s.commits.enqueue(storage.Batch{Jobs: jobs}, true)
	}
	s.mu.Unlock()
	for _, sub := range group {
		sub.req = req
		close(sub.applied)
	}
}
