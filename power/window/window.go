package window

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // CRON_TZ names resolve on machines without zoneinfo

	"github.com/robfig/cron/v3"
)

// MaxLength is the longest a window may last: a window that began up to this
// long before an instant is still looked for.
const MaxLength = 7 * 24 * time.Hour

// Pair is one window: it opens at each firing of Start and closes at the next
// firing of End after that.
type Pair struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses one cron expression: minute hour day-of-month month
// day-of-week (or a descriptor such as @daily), optionally prefixed
// "CRON_TZ=Zone ". It never panics: robfig/cron v3.0.1 panics on a CRON_TZ
// prefix with no schedule after it, which is refused here with an error.
func ParseSchedule(spec string) (s cron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New(`empty; write a cron expression such as "0 8 * * 1-5" (minute hour day-of-month month day-of-week)`)
	}
	if (strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=")) && !strings.ContainsAny(spec, " \t") {
		return nil, fmt.Errorf("%q has a time zone but no schedule; write e.g. \"CRON_TZ=Europe/Berlin 0 8 * * 1-5\"", spec)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%q is not a cron expression (%v); write e.g. \"0 8 * * 1-5\"", spec, r)
		}
	}()
	s, err = parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%q: %v; write minute hour day-of-month month day-of-week, e.g. \"0 8 * * 1-5\", optionally prefixed \"CRON_TZ=Europe/Berlin \"", spec, err)
	}
	return s, nil
}

// PairError says which window and which end of it is wrong.
type PairError struct {
	Index int
	Field string // "start" or "end"
	Err   error
}

func (e *PairError) Error() string {
	return fmt.Sprintf("windows[%d].%s: %v", e.Index, e.Field, e.Err)
}

func (e *PairError) Unwrap() error { return e.Err }

// checkFrom is where Compile samples each window's length: a fixed instant,
// so that validation never reads the wall clock.
var checkFrom = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Set is a compiled list of windows. It is immutable and safe for concurrent
// use. Where windows overlap, the first listed wins.
type Set struct {
	starts, ends []cron.Schedule
}

// Compile parses every pair and checks that each window closes within
// MaxLength of opening. Errors are *PairError.
func Compile(pairs []Pair) (*Set, error) {
	s := &Set{}
	for i, p := range pairs {
		start, err := ParseSchedule(p.Start)
		if err != nil {
			return nil, &PairError{i, "start", err}
		}
		end, err := ParseSchedule(p.End)
		if err != nil {
			return nil, &PairError{i, "end", err}
		}
		t := start.Next(checkFrom)
		if t.IsZero() {
			return nil, &PairError{i, "start", fmt.Errorf("%q never fires; check the day and month fields", p.Start)}
		}
		for range 16 {
			e := end.Next(t)
			if e.IsZero() || e.Sub(t) > MaxLength {
				return nil, &PairError{i, "end", fmt.Errorf("%q does not follow start %q within 7 days (from %s); a window must close within a week of opening",
					p.End, p.Start, t.Format(time.RFC3339))}
			}
			if t = start.Next(t); t.IsZero() {
				break
			}
		}
		s.starts = append(s.starts, start)
		s.ends = append(s.ends, end)
	}
	return s, nil
}

// Len is the number of windows.
func (s *Set) Len() int { return len(s.starts) }

// Segment is a span [From, To) during which window Window is in force (-1:
// none).
type Segment struct {
	From, To time.Time
	Window   int
}

// Segments splits [from, to) into consecutive spans of constant window, in
// order, covering it exactly. It returns nil for an empty interval.
func (s *Set) Segments(from, to time.Time) []Segment {
	if !to.After(from) {
		return nil
	}
	type span struct {
		from, to time.Time
		w        int
	}
	var spans []span
	cuts := []time.Time{from, to}
	for i := range s.starts {
		for st := s.starts[i].Next(from.Add(-MaxLength - time.Minute)); !st.IsZero() && st.Before(to); st = s.starts[i].Next(st) {
			e := s.ends[i].Next(st)
			if e.IsZero() || !e.After(from) {
				continue
			}
			a, b := later(st, from), earlier(e, to)
			spans = append(spans, span{a, b, i})
			cuts = append(cuts, a, b)
		}
	}
	slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
	cuts = slices.CompactFunc(cuts, func(a, b time.Time) bool { return a.Equal(b) })
	var out []Segment
	for k := 0; k+1 < len(cuts); k++ {
		a, b := cuts[k], cuts[k+1]
		w := -1
		for _, sp := range spans {
			if !sp.from.After(a) && sp.to.After(a) && (w < 0 || sp.w < w) {
				w = sp.w
			}
		}
		if n := len(out); n > 0 && out[n-1].Window == w {
			out[n-1].To = b
			continue
		}
		out = append(out, Segment{From: a, To: b, Window: w})
	}
	return out
}

// At is the window in force at t, or -1 for none.
func (s *Set) At(t time.Time) int {
	if s == nil || len(s.starts) == 0 {
		return -1
	}
	return s.Segments(t, t.Add(time.Nanosecond))[0].Window
}

// Next is the first instant after t at which the window in force changes,
// looking at most horizon ahead; zero if it does not change within it.
func (s *Set) Next(t time.Time, horizon time.Duration) time.Time {
	if s == nil || len(s.starts) == 0 {
		return time.Time{}
	}
	segs := s.Segments(t, t.Add(horizon))
	if len(segs) < 2 {
		return time.Time{}
	}
	return segs[1].From
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
