package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
)

// Page sizes of ListJobs.
const (
	DefaultJobPage = 1000
	MaxJobPage     = 10000
)

// JobFilter selects a page of jobs for ListJobs. Empty fields match every
// job; the fields that are set must all match.
type JobFilter struct {
	// States: the job is in one of these (api.JobStates).
	States []string
	// User, Project: the job's spec names exactly this user, this project.
	User, Project string
	// FinishedAfter, when set, leaves out the jobs that ended (succeeded,
	// failed, cancelled) at or before it; a job that ended without an end
	// time counts as ended when it was submitted. Jobs not ended stay.
	FinishedAfter time.Time
	// After is a cursor: the page starts after this job (in the listing
	// order), whether or not that job still exists. "" starts at the
	// beginning.
	After string
	// Limit is the most jobs in the page: 1..MaxJobPage.
	Limit int
	// NewestFirst lists the newest jobs first; otherwise the oldest first
	// (submission order).
	NewestFirst bool
}

// Validate refuses a filter naming an unknown state, a limit out of range
// or an ill-formed cursor, saying which field and how to fix it.
func (f JobFilter) Validate() error {
	for _, st := range f.States {
		if !slices.Contains(api.JobStates, st) {
			return &api.FieldError{Field: "state", Msg: fmt.Sprintf("%q is not a job state; use one or more of %s, comma-separated",
				st, strings.Join(api.JobStates, ","))}
		}
	}
	if f.Limit < 1 || f.Limit > MaxJobPage {
		return &api.FieldError{Field: "limit", Msg: fmt.Sprintf("%d is out of range; ask for 1 to %d jobs per page (default %d) and follow the next-page cursor for more",
			f.Limit, MaxJobPage, DefaultJobPage)}
	}
	if f.After != "" {
		if _, ok := cursorSeq(f.After); !ok {
			return &api.FieldError{Field: "after", Msg: fmt.Sprintf("%q is not a job id; give the id of the last job of the previous page, e.g. j-42", f.After)}
		}
	}
	return nil
}

// cursorSeq reads the sequence number of a job id "j-N" (N >= 1).
func cursorSeq(id string) (int, bool) {
	digits, ok := strings.CutPrefix(id, "j-")
	if !ok || digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n >= 1
}

// match says whether j passes every set field of f but the cursor.
func (f *JobFilter) match(j *jobRec) bool {
	if f.User != "" && j.Spec.User != f.User || f.Project != "" && j.Spec.Project != f.Project {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, j.State) {
		return false
	}
	if !f.FinishedAfter.IsZero() && api.Terminal(j.State) {
		end := j.SubmittedAt
		if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		if !end.After(f.FinishedAfter) {
			return false
		}
	}
	return true
}

// ListJobs returns one page of the jobs f selects, in submission order (or
// newest first), and the cursor of the next page: the last job's id when
// more jobs match, "" on the last page. It copies only the page's jobs and
// walks only from the cursor, in the smallest index the filter allows (the
// user's or the project's jobs), so a request holding the daemon's lock
// costs in proportion to the jobs it passes over, not to the history.
//
// A cursor is a position in the sequence of ids: it stays valid when its job
// is gone (forgotten from storage), and is refused only if ill-formed or
// beyond the newest id ever issued.
func (c *Core) ListJobs(f JobFilter) ([]api.Job, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	after := 0
	if f.After != "" {
		after, _ = cursorSeq(f.After)
		if after >= c.nextID {
			return nil, "", &api.FieldError{Field: "after", Msg: fmt.Sprintf("job %s does not exist: the newest job is j-%d; give the id of the last job of the previous page",
				f.After, c.nextID-1)}
		}
	}
	list := c.jobIndex.all
	if f.User != "" {
		list = c.jobIndex.byUser[f.User]
	}
	if f.Project != "" {
		if l := c.jobIndex.byProject[f.Project]; f.User == "" || len(l) < len(list) {
			list = l
		}
	}
	// i walks list from the first job past the cursor, step +1 or -1.
	step := 1
	i, found := slices.BinarySearchFunc(list, after, func(j *jobRec, seq int) int { return cmp.Compare(j.seq, seq) })
	switch {
	case f.NewestFirst && f.After == "":
		i, step = len(list)-1, -1
	case f.NewestFirst:
		i, step = i-1, -1
	case found:
		i++
	}
	page := make([]api.Job, 0, min(f.Limit, len(list), 128)) // never nil: an empty page is []
	for ; i >= 0 && i < len(list); i += step {
		if j := list[i]; f.match(j) {
			if len(page) == f.Limit {
				return page, page[len(page)-1].ID, nil
			}
			page = append(page, j.Job)
		}
	}
	return page, "", nil
}

// JobCount is how many jobs the core remembers.
func (c *Core) JobCount() int { return len(c.jobIndex.all) }

// JobCounts counts the jobs in each state, copying none.
func (c *Core) JobCounts() map[string]int {
	n := make(map[string]int, len(api.JobStates))
	for _, j := range c.jobIndex.all {
		n[j.State]++
	}
	return n
}

// jobIndex keeps the jobs in submission order (by seq), all of them and per
// user and per project, for ListJobs. A job is added once, on Submit or
// Restore; jobs are never forgotten by the core (storage keeps every job),
// so nothing is removed. Whatever forgets a job must unindex it here too.
type jobIndex struct {
	all               []*jobRec
	byUser, byProject map[string][]*jobRec
}

// add appends j; its seq must be above every indexed job's (Submit).
func (x *jobIndex) add(j *jobRec) {
	if x.byUser == nil {
		x.byUser, x.byProject = map[string][]*jobRec{}, map[string][]*jobRec{}
	}
	x.all = append(x.all, j)
	x.byUser[j.Spec.User] = append(x.byUser[j.Spec.User], j)
	x.byProject[j.Spec.Project] = append(x.byProject[j.Spec.Project], j)
}

// sort puts every list back in seq order, after Restore added jobs in
// storage's order.
func (x *jobIndex) sort() {
	bySeq := func(a, b *jobRec) int { return cmp.Compare(a.seq, b.seq) }
	slices.SortFunc(x.all, bySeq)
	for _, l := range x.byUser {
		slices.SortFunc(l, bySeq)
	}
	for _, l := range x.byProject {
		slices.SortFunc(l, bySeq)
	}
}
