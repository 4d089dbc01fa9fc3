package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// listFixture is a core restored from storage with jobs j-1..j-10 and
// j-12: j-11 is gone (forgotten from storage), so a cursor at it points
// between two jobs that still exist.
func listFixture(t *testing.T) *Core {
	t.Helper()
	type row struct {
		user, project, state string
		finished             time.Duration // before t0; 0: no end time
	}
	rows := map[int]row{
		1:  {"alice", "vision", api.StateSucceeded, 2 * time.Hour},
		2:  {"bob", "vision", api.StateRunning, 0},
		3:  {"alice", "nlp", api.StateQueued, 0},
		4:  {"alice", "vision", api.StateRunning, 0},
		5:  {"bob", "nlp", api.StateFailed, 10 * time.Minute},
		6:  {"alice", "vision", api.StateRunning, 0},
		7:  {"carol", "vision", api.StateDeferred, 0},
		8:  {"alice", "vision", api.StateCancelled, 0}, // ended without an end time: counts as at submission, 3 h ago
		9:  {"bob", "vision", api.StateRunning, 0},
		10: {"alice", "vision", api.StateQueued, 0},
		12: {"alice", "vision", api.StateRunning, 0},
	}
	var jobs []api.Job
	for _, seq := range []int{12, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1} { // storage's order is not the listing's
		r := rows[seq]
		s := spec(fmt.Sprintf("job-%d", seq), 1, 50)
		s.User, s.Project = r.user, r.project
		j := api.Job{ID: fmt.Sprintf("j-%d", seq), Spec: s, State: r.state, SubmittedAt: t0.Add(-3 * time.Hour)}
		if r.finished > 0 {
			end := t0.Add(-r.finished)
			j.FinishedAt = &end
		}
		jobs = append(jobs, j)
	}
	c := New()
	c.Restore(jobs, nil)
	return c
}

func TestListJobs(t *testing.T) {
	c := listFixture(t)
	tests := []struct {
		name    string
		f       JobFilter
		want    string // the page's ids, then "| next"
		wantErr string
	}{
		{name: "everything, one page", f: JobFilter{Limit: 100}, want: "1 2 3 4 5 6 7 8 9 10 12 | "},
		{name: "first page", f: JobFilter{Limit: 3}, want: "1 2 3 | j-3"},
		{name: "next page", f: JobFilter{Limit: 3, After: "j-3"}, want: "4 5 6 | j-6"},
		{name: "last page, short", f: JobFilter{Limit: 3, After: "j-9"}, want: "10 12 | "},
		{name: "last page, exactly full: no cursor to an empty page", f: JobFilter{Limit: 5, After: "j-6"}, want: "7 8 9 10 12 | "},
		{name: "after the newest job", f: JobFilter{Limit: 5, After: "j-12"}, want: " | "},
		{name: "a cursor whose job is gone still works", f: JobFilter{Limit: 5, After: "j-11"}, want: "12 | "},
		{name: "user and state, first page", f: JobFilter{User: "alice", States: []string{api.StateRunning}, Limit: 1}, want: "4 | j-4"},
		{name: "user and state, next page", f: JobFilter{User: "alice", States: []string{api.StateRunning}, Limit: 1, After: "j-4"}, want: "6 | j-6"},
		{name: "user and state, last page", f: JobFilter{User: "alice", States: []string{api.StateRunning}, Limit: 1, After: "j-6"}, want: "12 | "},
		{name: "a cursor from another filter's page", f: JobFilter{User: "bob", Limit: 10, After: "j-4"}, want: "5 9 | "},
		{name: "project", f: JobFilter{Project: "nlp", Limit: 10}, want: "3 5 | "},
		{name: "user and project", f: JobFilter{User: "alice", Project: "nlp", Limit: 10}, want: "3 | "},
		{name: "unknown user: nothing", f: JobFilter{User: "dave", Limit: 10}, want: " | "},
		{name: "several states", f: JobFilter{States: []string{api.StateQueued, api.StateDeferred}, Limit: 10}, want: "3 7 10 | "},
		{name: "finished in the last hour, or not finished", f: JobFilter{FinishedAfter: t0.Add(-time.Hour), Limit: 100}, want: "2 3 4 5 6 7 9 10 12 | "},
		{name: "newest first", f: JobFilter{NewestFirst: true, Limit: 2}, want: "12 10 | j-10"},
		{name: "newest first, next page", f: JobFilter{NewestFirst: true, Limit: 2, After: "j-10"}, want: "9 8 | j-8"},
		{name: "newest first across the gone job", f: JobFilter{NewestFirst: true, Limit: 2, After: "j-12"}, want: "10 9 | j-9"},
		{name: "newest first, last page", f: JobFilter{NewestFirst: true, Limit: 2, After: "j-2"}, want: "1 | "},
		{name: "newest finished", f: JobFilter{NewestFirst: true, States: []string{api.StateSucceeded, api.StateFailed, api.StateCancelled}, Limit: 2}, want: "8 5 | j-5"},

		{name: "cursor beyond the newest id", f: JobFilter{Limit: 5, After: "j-13"}, wantErr: "after: job j-13 does not exist: the newest job is j-12"},
		{name: "cursor not an id", f: JobFilter{Limit: 5, After: "x-3"}, wantErr: `after: "x-3" is not a job id`},
		{name: "cursor zero", f: JobFilter{Limit: 5, After: "j-0"}, wantErr: `after: "j-0" is not a job id`},
		{name: "cursor signed", f: JobFilter{Limit: 5, After: "j-+3"}, wantErr: `after: "j-+3" is not a job id`},
		{name: "limit 0", f: JobFilter{}, wantErr: "limit: 0 is out of range; ask for 1 to 10000 jobs per page"},
		{name: "limit too large", f: JobFilter{Limit: MaxJobPage + 1}, wantErr: "limit: 10001 is out of range"},
		{name: "unknown state", f: JobFilter{States: []string{"running", "done"}, Limit: 5},
			wantErr: `state: "done" is not a job state; use one or more of queued,deferred,running,preempted,succeeded,failed,cancelled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, next, err := c.ListJobs(tt.f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(page))
			for i, j := range page {
				ids[i] = strings.TrimPrefix(j.ID, "j-")
			}
			if got := strings.Join(ids, " ") + " | " + next; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestListJobsFollowsSubmissions: jobs submitted after a restore are listed
// after the restored ones, in every index, and a page is a copy.
func TestListJobsFollowsSubmissions(t *testing.T) {
	c := listFixture(t)
	s := spec("new", 1, 50)
	s.User, s.Project = "alice", "nlp"
	j, err := c.Submit(s, t0)
	if err != nil || j.ID != "j-13" {
		t.Fatalf("submit: %v %v", j.ID, err)
	}
	for _, f := range []JobFilter{{After: "j-12", Limit: 5}, {User: "alice", Project: "nlp", After: "j-3", Limit: 5}} {
		page, next, err := c.ListJobs(f)
		if err != nil || len(page) != 1 || page[0].ID != "j-13" || next != "" {
			t.Fatalf("%+v: %v %q %v", f, page, next, err)
		}
	}
	page, _, _ := c.ListJobs(JobFilter{Limit: 1})
	page[0].State = api.StateFailed
	if again, _ := c.Job("j-1"); again.State != api.StateSucceeded {
		t.Fatal("a listed job must be a copy: changing it changed the core")
	}
	if c.JobCount() != 12 {
		t.Fatalf("JobCount = %d, want 12", c.JobCount())
	}
}
