package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// liveServer serves schedulerd's real API on loopback from a bbolt file
// that already holds jobs (as after a restart); it returns the environment
// the CLI needs to reach it.
func liveServer(t *testing.T, jobs []api.Job) map[string]string {
	t.Helper()
	url, tok := serverWithJobs(t, now, jobs)
	return map[string]string{"JOULE_SERVER": url, "JOULE_TOKEN": tok}
}

// queueJobs are j-1..j-9: what the default view shows depends on state and
// on when a finished job ended.
func queueJobs() []api.Job {
	job := func(id, user, project, state string, submitted time.Duration, finished *time.Time) api.Job {
		return api.Job{ID: id, Spec: api.JobSpec{Name: "n" + strings.TrimPrefix(id, "j-"), User: user, Project: project, GPUs: 1},
			State: state, SubmittedAt: *ago(submitted), FinishedAt: finished, EnergyJ: 41300}
	}
	return []api.Job{
		job("j-1", "alice", "vision", api.StateQueued, 48*time.Hour, nil),
		job("j-2", "bob", "vision", api.StateRunning, 3*time.Hour, nil),
		job("j-3", "alice", "nlp", api.StateDeferred, 3*time.Hour, nil),
		job("j-4", "alice", "vision", api.StateSucceeded, 3*time.Hour, ago(61*time.Minute)), // over an hour ago: hidden
		job("j-5", "alice", "vision", api.StateSucceeded, 3*time.Hour, ago(59*time.Minute)),
		job("j-6", "bob", "vision", api.StateFailed, time.Minute, ago(time.Minute)),
		job("j-7", "alice", "vision", api.StateCancelled, 30*time.Minute, nil), // no end time: counts from submission
		job("j-8", "alice", "nlp", api.StateCancelled, 2*time.Hour, nil),       // hidden
		job("j-9", "alice", "vision", api.StateRunning, 2*time.Hour, nil),
	}
}

func ids(t *testing.T, r result) string {
	t.Helper()
	var jobs []api.Job
	if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil || r.code != 0 {
		t.Fatalf("not a JSON job list: %v, %+v", err, r)
	}
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return strings.Join(out, " ")
}

// TestQueue runs joule queue against the real API with pages of two jobs,
// so every listing below follows the server's cursor across pages.
func TestQueue(t *testing.T) {
	defer func(n int) { queuePage = n }(queuePage)
	queuePage = 2
	vars := liveServer(t, queueJobs())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "j-1 j-2 j-3 j-5 j-6 j-7 j-9"},
		{[]string{"--all"}, "j-1 j-2 j-3 j-4 j-5 j-6 j-7 j-8 j-9"},
		{[]string{"--user", "alice", "--state", "running"}, "j-9"},
		{[]string{"--project", "vision", "--state", "queued,deferred,running"}, "j-1 j-2 j-9"},
		{[]string{"--user", "alice", "--project", "nlp", "--all"}, "j-3 j-8"},
		{[]string{"--state", "cancelled"}, "j-7"},
		{[]string{"--state", "cancelled", "--all"}, "j-7 j-8"},
		{[]string{"--all", "--limit", "3"}, "j-1 j-2 j-3"},
		{[]string{"--all", "--limit", "3", "--after", "j-3"}, "j-4 j-5 j-6"},
		{[]string{"--all", "--after", "j-7"}, "j-8 j-9"},
		{[]string{"--user", "nobody"}, ""},
	}
	for _, tt := range tests {
		args := append([]string{"queue", "-o", "json"}, tt.args...)
		if got := ids(t, runCLI(t, vars, "", args...)); got != tt.want {
			t.Errorf("%s: %q, want %q", strings.Join(args, " "), got, tt.want)
		}
	}

	r := runCLI(t, vars, "", "queue")
	want := `ID   NAME  USER   PROJECT  STATE      GPUS  NODE  ENERGY   AGE  REASON
j-1  n1    alice  vision   queued     1     -     41.3 kJ  2d   -
j-2  n2    bob    vision   running    1     -     41.3 kJ  3h   -
j-3  n3    alice  nlp      deferred   1     -     41.3 kJ  3h   -
j-5  n5    alice  vision   succeeded  1     -     41.3 kJ  3h   -
j-6  n6    bob    vision   failed     1     -     41.3 kJ  1m   -
j-7  n7    alice  vision   cancelled  1     -     41.3 kJ  30m  -
j-9  n9    alice  vision   running    1     -     41.3 kJ  2h   -
`
	if r.code != 0 || r.stdout != want || r.stderr != "(2 job(s) that finished over an hour ago not shown; --all lists them)\n" {
		t.Errorf("queue: %d\n%s\nwant\n%s\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	r = runCLI(t, vars, "", "queue", "--all", "--limit", "4")
	if r.code != 0 || r.stderr != "(more jobs match; add --after j-4 for the next ones)\n" {
		t.Errorf("queue --limit 4: %+v", r)
	}
	r = runCLI(t, vars, "", "queue", "--state", "running", "--limit", "5")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("a filtered listing that ends says nothing more: %+v", r)
	}
}

func TestQueueBadFilters(t *testing.T) {
	vars := liveServer(t, queueJobs())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--state", "running,done"}, `state: "done" is not a job state; use one or more of queued,deferred,running,preempted,succeeded,failed,cancelled`},
		{[]string{"--limit", "-1"}, "--limit -1: give the most jobs to list, or 0 for every matching job"},
		{[]string{"--after", "7"}, `after: "7" is not a job id; give the id of the last job of the previous page, e.g. j-42`},
		{[]string{"--after", "j-99"}, "after: job j-99 does not exist: the newest job is j-9"},
	}
	for _, tt := range tests {
		r := runCLI(t, vars, "", append([]string{"queue"}, tt.args...)...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("queue %v: %+v, want exit 1 and %q", tt.args, r, tt.want)
		}
	}
}
