package web

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/scheduler"
)

// jobListParams are the query parameters of GET /api/v1/jobs.
var jobListParams = []string{"state", "user", "project", "finished_after", "limit", "after"}

// listJobs answers GET /api/v1/jobs with one page of jobs, oldest first.
// The body stays a JSON array, as before pages existed; when more jobs
// match, X-Next-After names the cursor of the next page and Link (rel=next)
// gives its URL. X-Jobs-Total is every job schedulerd remembers, filters
// aside. The core's lock is held for the page alone (Core.ListJobs).
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	f, err := jobFilterOf(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	jobs, next, err := s.core.ListJobs(f)
	total := s.core.JobCount()
	s.mu.Unlock()
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	w.Header().Set("X-Jobs-Total", strconv.Itoa(total))
	if next != "" {
		q := r.URL.Query()
		q.Set("after", next)
		w.Header().Set("X-Next-After", next)
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, q.Encode()))
	}
	writeJSON(w, http.StatusOK, jobs)
}

// jobFilterOf reads the query of GET /api/v1/jobs. Every parameter is
// optional and given at most once; an unknown one is refused, so a typo
// never silently lists everything.
func jobFilterOf(q url.Values) (scheduler.JobFilter, error) {
	f := scheduler.JobFilter{Limit: scheduler.DefaultJobPage}
	for _, k := range slices.Sorted(maps.Keys(q)) { // sorted: the same error every time
		v := q[k]
		switch {
		case !slices.Contains(jobListParams, k):
			return f, fmt.Errorf("unknown query parameter %q; GET /api/v1/jobs takes %s", k, strings.Join(jobListParams, ", "))
		case len(v) != 1:
			return f, fmt.Errorf("%s is given %d times; give it once (state takes a comma list: state=queued,running)", k, len(v))
		case v[0] == "":
			return f, fmt.Errorf("%s is empty; give a value or leave it out", k)
		}
	}
	if v := q.Get("state"); v != "" {
		f.States = strings.Split(v, ",")
	}
	f.User, f.Project, f.After = q.Get("user"), q.Get("project"), q.Get("after")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return f, fmt.Errorf("limit=%q is not a number; ask for 1 to %d jobs per page (default %d)", v, scheduler.MaxJobPage, scheduler.DefaultJobPage)
		}
		f.Limit = n
	}
	if v := q.Get("finished_after"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return f, fmt.Errorf("finished_after=%q is not an RFC 3339 time; write e.g. 2026-11-28T12:00:00Z", v)
		}
		f.FinishedAfter = t
	}
	return f, f.Validate() // before the lock: bad input never waits for it
}
