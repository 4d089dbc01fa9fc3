package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// BenchmarkListJobs is the core's part of GET /api/v1/jobs, the time a
// request holds schedulerd's lock, with a history of 20,000 and 100,000
// jobs from 50 users: the newest 8,000 running (1,000 nodes x 8 GPUs), the
// rest finished. "all-jobs" is the old path (Core.Jobs: every job sorted
// and copied); "user-running" a page of 100 of one user's running jobs;
// "running" a page of 100 running jobs of any user, which passes over
// every finished job before the first running one.
func BenchmarkListJobs(b *testing.B) {
	for _, n := range []int{20000, 100000} {
		c := historyCore(n, 8000, 50)
		b.Run(fmt.Sprintf("jobs=%d/all-jobs", n), func(b *testing.B) {
			for b.Loop() {
				if len(c.Jobs()) != n {
					b.Fatal("lost jobs")
				}
			}
		})
		page := func(f JobFilter) func(b *testing.B) {
			return func(b *testing.B) {
				for b.Loop() {
					jobs, next, err := c.ListJobs(f)
					if err != nil || len(jobs) != 100 || next == "" || jobs[0].State != api.StateRunning {
						b.Fatalf("page: %d jobs, next %q, %v", len(jobs), next, err)
					}
				}
			}
		}
		running := []string{api.StateRunning}
		b.Run(fmt.Sprintf("jobs=%d/user-running", n), page(JobFilter{User: "user-7", States: running, Limit: 100}))
		b.Run(fmt.Sprintf("jobs=%d/running", n), page(JobFilter{States: running, Limit: 100}))
	}
}

// historyCore restores n jobs of users round robin; the newest running are
// running, the rest succeeded.
func historyCore(n, running, users int) *Core {
	jobs := make([]api.Job, n)
	for i := range jobs {
		s := spec(fmt.Sprintf("h%d", i), 1, 50)
		s.User, s.Project = fmt.Sprintf("user-%d", i%users), fmt.Sprintf("p-%d", i%10)
		sub := t0.Add(time.Duration(i-n) * time.Minute)
		jobs[i] = api.Job{ID: fmt.Sprintf("j-%d", i+1), Spec: s, State: api.StateRunning, SubmittedAt: sub}
		if i < n-running {
			end := sub.Add(30 * time.Minute)
			jobs[i].State, jobs[i].FinishedAt = api.StateSucceeded, &end
		}
	}
	c := New()
	c.Restore(jobs, nil)
	return c
}
