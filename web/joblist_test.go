package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
	"github.com/joulehq/joule/web/client"
)

// getJobs sends GET path with the admin token and returns the status, the
// job ids of a 200's body (else the body) and the headers.
func getJobs(t *testing.T, ts *liveServer, path string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+ts.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(b), resp.Header
	}
	var jobs []api.Job
	if err := json.Unmarshal(b, &jobs); err != nil {
		t.Fatalf("GET %s: the body is not a JSON array of jobs: %v\n%s", path, err, b)
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return resp.StatusCode, strings.Join(ids, " "), resp.Header
}

// TestListJobsQuery: j-1..j-6 from alice and bob in two projects, j-4
// cancelled, no node: the rest queued.
func TestListJobsQuery(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	ctx := context.Background()
	for i, up := range []string{"alice/vision", "bob/vision", "alice/nlp", "alice/vision", "bob/nlp", "alice/vision"} {
		user, project, _ := strings.Cut(up, "/")
		if _, err := ts.cl.Submit(ctx, synthetic(fmt.Sprintf("job-%d", i+1), user, project)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.cl.Cancel(ctx, "j-4"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query, want, next string
	}{
		{"", "j-1 j-2 j-3 j-4 j-5 j-6", ""},
		{"?user=alice", "j-1 j-3 j-4 j-6", ""},
		{"?project=nlp", "j-3 j-5", ""},
		{"?user=alice&project=vision&state=queued", "j-1 j-6", ""},
		{"?state=cancelled,running", "j-4", ""},
		{"?state=running", "", ""},
		{"?limit=2", "j-1 j-2", "j-2"},
		{"?limit=2&after=j-2", "j-3 j-4", "j-4"},
		{"?limit=2&after=j-4", "j-5 j-6", ""},
		{"?user=alice&limit=1&after=j-1", "j-3", "j-3"},
		{"?finished_after=2026-11-26T09:59:00Z", "j-1 j-2 j-3 j-4 j-5 j-6", ""}, // cancelled at 10:00
		{"?finished_after=2026-11-26T10:00:00Z", "j-1 j-2 j-3 j-5 j-6", ""},
	}
	for _, tt := range tests {
		code, got, h := getJobs(t, ts, "/api/v1/jobs"+tt.query)
		if code != 200 || got != tt.want || h.Get("X-Next-After") != tt.next || h.Get("X-Jobs-Total") != "6" {
			t.Errorf("GET %s: %d %q next %q total %q; want %q next %q total 6",
				tt.query, code, got, h.Get("X-Next-After"), h.Get("X-Jobs-Total"), tt.want, tt.next)
		}
	}

	// Link rel="next" is the same query with the cursor: following it
	// gives the next page.
	_, _, h := getJobs(t, ts, "/api/v1/jobs?user=alice&limit=2")
	link := h.Get("Link")
	path, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	if !ok {
		t.Fatalf("Link %q is not <URL>; rel=\"next\"", link)
	}
	if _, got, h := getJobs(t, ts, path); got != "j-4 j-6" || h.Get("Link") != "" {
		t.Errorf("GET %s: %q, Link %q; want j-4 j-6 and no Link on the last page", path, got, h.Get("Link"))
	}
	if _, body := ts.do(t, "GET", "/api/v1/jobs?state=running", ""); strings.TrimSpace(body) != "[]" {
		t.Errorf("an empty page is %q, want []", body)
	}
}

func TestListJobsRefusesBadQuery(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	ctx := context.Background()
	for i := range 3 {
		if _, err := ts.cl.Submit(ctx, synthetic(fmt.Sprintf("job-%d", i), "alice", "vision")); err != nil {
			t.Fatal(err)
		}
	}
	_, before, _ := getJobs(t, ts, "/api/v1/jobs")
	stored, _ := ts.db.Jobs()
	tests := []struct{ query, want string }{
		{"state=done", `state: \"done\" is not a job state; use one or more of queued,deferred,running,preempted,succeeded,failed,cancelled`},
		{"state=queued,", `state: \"\" is not a job state`},
		{"state=", "state is empty; give a value or leave it out"},
		{"limit=0", "limit: 0 is out of range; ask for 1 to 10000 jobs per page (default 1000)"},
		{"limit=-5", "limit: -5 is out of range"},
		{"limit=10001", "limit: 10001 is out of range"},
		{"limit=ten", `limit=\"ten\" is not a number; ask for 1 to 10000 jobs per page`},
		{"after=42", `after: \"42\" is not a job id; give the id of the last job of the previous page, e.g. j-42`},
		{"after=j-4", "after: job j-4 does not exist: the newest job is j-3"},
		{"finished_after=yesterday", `finished_after=\"yesterday\" is not an RFC 3339 time`},
		{"user=alice&user=bob", "user is given 2 times; give it once"},
		{"users=alice", `unknown query parameter \"users\"; GET /api/v1/jobs takes state, user, project, finished_after, limit, after`},
	}
	for _, tt := range tests {
		code, body := ts.do(t, "GET", "/api/v1/jobs?"+tt.query, "")
		if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("GET ?%s: %d %s; want 400 with %q", tt.query, code, body, tt.want)
		}
	}
	_, after, _ := getJobs(t, ts, "/api/v1/jobs")
	if again, _ := ts.db.Jobs(); after != before || len(again) != len(stored) {
		t.Errorf("refused queries changed the jobs: %q, %d stored; were %q, %d", after, len(again), before, len(stored))
	}
}

// TestListJobsPagesWhileJobsArrive pages through one user's jobs with a
// small page while other clients submit jobs for that user and another,
// concurrently and between pages: new jobs appear at the end, so the walk
// visits every job of the user exactly once, in submission order.
func TestListJobsPagesWhileJobsArrive(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	ctx := context.Background()
	submit := func(n int) {
		for i := range n {
			user := []string{"alice", "bob"}[i%2]
			if _, err := ts.cl.Submit(ctx, synthetic(fmt.Sprintf("job-%d", i), user, "vision")); err != nil {
				t.Error(err)
				return
			}
		}
	}
	submit(40)

	var wg sync.WaitGroup
	for range 3 { // submitters racing the pager
		wg.Go(func() { submit(30) })
	}
	var seen []string
	q := client.JobQuery{User: "alice", Limit: 3}
	pages, between, done := 0, 0, false
	for {
		p, err := ts.cl.ListJobs(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, j := range p.Jobs {
			if j.Spec.User != "alice" {
				t.Fatalf("%s of %s in a page for alice", j.ID, j.Spec.User)
			}
			seen = append(seen, j.ID)
		}
		if p.Next != "" {
			q.After = p.Next
			if pages <= 10 {
				submit(2) // one more job each for alice and bob between pages
				between++
			}
			continue
		}
		if done {
			break
		}
		// The end for now: let the submitters finish, then go on from the
		// last job seen, as a client polling for new jobs would.
		wg.Wait()
		done = true
		if len(seen) > 0 {
			q.After = seen[len(seen)-1]
		}
	}
	all, err := ts.cl.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, j := range all {
		if j.Spec.User == "alice" {
			want = append(want, j.ID)
		}
	}
	if len(want) != 20+45+between {
		t.Fatalf("alice has %d jobs, want %d", len(want), 20+45+between)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("paging visited %d jobs in %d pages, want each of alice's %d once in order:\n got %v\nwant %v", len(seen), pages, len(want), seen, want)
	}
}

// TestQueuePageCaps: with 1,003 jobs waiting or running and 250 finished,
// the queue page shows the first 1,000 waiting or running (running first)
// and the 200 newest finished, and says how to list the rest.
func TestQueuePageCaps(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	var jobs []api.Job
	add := func(n int, state string) {
		for range n {
			id := fmt.Sprintf("j-%d", len(jobs)+1)
			j := api.Job{ID: id, Spec: synthetic("job", "alice", "vision"), State: state, SubmittedAt: at}
			if api.Terminal(state) {
				j.FinishedAt = &at
			}
			jobs = append(jobs, j)
		}
	}
	add(150, api.StateSucceeded) // j-1..j-150
	add(1000, api.StateQueued)   // j-151..j-1150
	add(3, api.StateRunning)     // j-1151..j-1153, no node: shown, not placed
	add(100, api.StateFailed)    // j-1154..j-1253
	if err := db.Apply(storage.Batch{Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ts := newLiveServer(t, dir, "2026-11-26 10:00")

	req, _ := http.NewRequest("GET", ts.URL+"/queue", nil)
	req.Header.Set("Authorization", "Bearer "+ts.token)
	req.Header.Set("X-Partial", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	rows := regexp.MustCompile(`data-job="(j-\d+)"`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1])
	}
	if len(got) != 1200 || got[0] != "j-1151" || got[3] != "j-151" || got[999] != "j-1147" || got[1000] != "j-1253" || got[1199] != "j-51" {
		t.Fatalf("%d rows: want 1,200: running j-1151.., queued j-151..j-1147, then finished newest first j-1253..j-1154, j-150..j-51; got %v...%v",
			len(got), got[:min(5, len(got))], got[max(0, len(got)-3):])
	}
	for _, want := range []string{
		"1000 waiting (0 deferred for cheaper hours) · 3 running · 250 finished",
		"3 more waiting or running jobs are not shown here: <code>joule queue</code> lists them all.",
		"50 older finished jobs are not shown (only the 200 most recent are): <code>joule queue --all --state succeeded,failed,cancelled</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the queue page lacks %q", want)
		}
	}
}
