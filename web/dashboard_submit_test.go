package web

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The queue page's form submits a job as the signed-in user and leads to
// its page; bad input shows the queue again with the error and the text as
// typed, and submits nothing.
func TestSubmitFromTheQueuePage(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	alice, err := ts.srv.EphemeralToken("alice", RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, spec string) (int, string, string) {
		t.Helper()
		return postForm(t, ts, token, "/queue", url.Values{"spec": {spec}})
	}

	// The page offers the form, filled with an example that is valid as it is.
	code, page := ts.do(t, "GET", "/queue", "")
	if code != 200 || !strings.Contains(page, `<form method="post" action="/queue" class="hold">`) || !strings.Contains(page, "name: my-job") {
		t.Fatalf("GET /queue: %d, no submit form:\n%.2000s", code, page)
	}
	if code, loc, body := post(alice, exampleSpec); code != http.StatusSeeOther || loc != "/jobs/j-1" {
		t.Fatalf("the example spec: %d to %q:\n%.1000s", code, loc, body)
	}
	if j, ok := ts.srv.core.Job("j-1"); !ok || j.Spec.User != "alice" || j.Spec.Name != "my-job" {
		t.Errorf("submitted job %+v; want my-job, run as alice", j.Spec)
	}

	for _, tc := range []struct {
		name, spec, says string
		status           int
	}{
		{"empty", "  \n", "empty or not valid YAML or JSON", http.StatusBadRequest},
		{"not YAML", "name: [x\n", "empty or not valid YAML or JSON", http.StatusBadRequest},
		{"unknown field", "name: x\ngpus: 1\ncolour: red\nworkload: {synthetic: {duration: 1m}}\n", "colour", http.StatusBadRequest},
		{"no workload", "name: x\ngpus: 1\n", "workload", http.StatusBadRequest},
		{"someone else", "name: x\nuser: bob\ngpus: 1\nworkload: {synthetic: {duration: 1m, utilization: 0.5}}\n", "may submit only as", http.StatusForbidden},
	} {
		code, _, body := post(alice, tc.spec)
		if code != tc.status || !strings.Contains(body, tc.says) || !strings.Contains(body, `<p class="error" role="alert">`) ||
			!strings.Contains(body, "<h1>Queue</h1>") {
			t.Errorf("%s: %d; want %d, the queue page with an error saying %q:\n%s", tc.name, code, tc.status, tc.says, errorLine(body))
		}
		if tc.name == "unknown field" && !strings.Contains(body, "colour: red") {
			t.Errorf("%s: the text as typed is not kept in the form", tc.name)
		}
	}
	if n := ts.srv.core.JobCount(); n != 1 {
		t.Errorf("%d jobs after the refused submissions, want the 1 good one", n)
	}
	// Without a token the form is refused like any page.
	if code, _, _ := post("", exampleSpec); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
}

// errorLine is the error paragraph of a page, or its start when it has none.
func errorLine(page string) string {
	if i := strings.Index(page, `<p class="error"`); i >= 0 {
		page = page[i:]
		if j := strings.Index(page, "</p>"); j >= 0 {
			return page[:j]
		}
	}
	return page[:min(len(page), 300)]
}

// The job page's Cancel button cancels the job for its own user or an
// admin; anyone else sees why not, and the job runs on.
func TestCancelFromTheJobPage(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	alice, _ := ts.srv.EphemeralToken("alice", RoleUser)
	bob, _ := ts.srv.EphemeralToken("bob", RoleUser)
	id, err := ts.cl.Submit(t.Context(), synthetic("a", "alice", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	cancel := func(token string) (int, string) {
		t.Helper()
		code, _, body := postForm(t, ts, token, "/jobs/"+id+"/cancel", nil)
		return code, body
	}
	if _, page := ts.do(t, "GET", "/jobs/"+id, ""); !strings.Contains(page, `action="/jobs/`+id+`/cancel"`) {
		t.Fatalf("a queued job's page has no Cancel button")
	}
	if code, page := cancel(bob); code != http.StatusForbidden || !strings.Contains(errorLine(page), "may cancel only its own jobs") {
		t.Errorf("bob cancels alice's job: %d %s", code, errorLine(page))
	}
	if j, _ := ts.srv.core.Job(id); j.State != "queued" {
		t.Fatalf("after a refused cancel the job is %s", j.State)
	}
	if code, _ := cancel(alice); code != http.StatusSeeOther {
		t.Errorf("alice cancels her job: %d, want a redirect to its page", code)
	}
	if j, _ := ts.srv.core.Job(id); j.State != "cancelled" {
		t.Errorf("after alice's cancel the job is %s", j.State)
	}
	if _, page := ts.do(t, "GET", "/jobs/"+id, ""); strings.Contains(page, `/cancel"`) {
		t.Errorf("a cancelled job's page still offers Cancel")
	}
	if code, page := cancel(alice); code != http.StatusConflict || !strings.Contains(page, `<p class="error"`) {
		t.Errorf("cancelling a cancelled job: %d %s; want 409 and the reason on the page", code, errorLine(page))
	}
}

// postForm posts a dashboard form as a browser signed in with token does
// (the session cookie), without following the redirect; it returns the
// status, the Location and the body.
func postForm(t *testing.T, ts *liveServer, token, path string, form url.Values) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: token})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}
