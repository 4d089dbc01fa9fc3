package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestAtWeekdayDaytime(t *testing.T) {
	// 08:00-20:00 on weekdays; 2024-01-01 is a Monday.
	s, err := Compile([]Pair{{Start: "0 8 * * 1-5", End: "0 20 * * *"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   string
		want int
	}{
		{"2024-01-01T07:59:59Z", -1},
		{"2024-01-01T08:00:00Z", 0},
		{"2024-01-01T19:59:59Z", 0},
		{"2024-01-01T20:00:00Z", -1},
		{"2024-01-06T12:00:00Z", -1}, // Saturday
		{"2024-01-05T12:00:00Z", 0},  // Friday
	} {
		if got := s.At(utc(c.at)); got != c.want {
			t.Errorf("At(%s) = %d, want %d", c.at, got, c.want)
		}
	}
	if got := s.Next(utc("2024-01-01T07:00:00Z"), 24*time.Hour); !got.Equal(utc("2024-01-01T08:00:00Z")) {
		t.Errorf("Next = %s, want 08:00", got)
	}
}

func TestTimeZoneAndFirstWins(t *testing.T) {
	s, err := Compile([]Pair{
		{Start: "CRON_TZ=Europe/Berlin 0 8 * * *", End: "CRON_TZ=Europe/Berlin 0 9 * * *"},
		{Start: "0 0 * * *", End: "0 12 * * *"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// In January Berlin is UTC+1: its 08:00 is 07:00 UTC.
	if got := s.At(utc("2024-01-10T07:30:00Z")); got != 0 {
		t.Errorf("07:30Z = %d, want the Berlin window 0 (first listed wins)", got)
	}
	if got := s.At(utc("2024-01-10T08:30:00Z")); got != 1 {
		t.Errorf("08:30Z = %d, want window 1", got)
	}
}

func TestSegmentsCoverExactly(t *testing.T) {
	s, err := Compile([]Pair{{Start: "0 8 * * 1-5", End: "0 20 * * *"}})
	if err != nil {
		t.Fatal(err)
	}
	from, to := utc("2024-01-01T00:00:00Z"), utc("2024-01-08T00:00:00Z")
	segs := s.Segments(from, to)
	if !segs[0].From.Equal(from) || !segs[len(segs)-1].To.Equal(to) {
		t.Fatalf("segments do not cover the interval: %+v", segs)
	}
	var in time.Duration
	for i, g := range segs {
		if i > 0 && !g.From.Equal(segs[i-1].To) {
			t.Fatalf("gap at %d: %+v", i, segs)
		}
		if g.Window == 0 {
			in += g.To.Sub(g.From)
		}
	}
	if in != 5*12*time.Hour {
		t.Errorf("time in window = %s, want 60h (5 weekdays x 12h)", in)
	}
}

func TestCompileErrorsNeverPanic(t *testing.T) {
	for _, c := range []struct {
		pair  Pair
		field string
		says  string
	}{
		{Pair{Start: "CRON_TZ=UTC", End: "0 9 * * *"}, "start", "no schedule"},
		{Pair{Start: "TZ=UTC", End: "0 9 * * *"}, "start", "no schedule"},
		{Pair{Start: "0 8 * * *", End: "CRON_TZ=Nowhere/Land 0 9 * * *"}, "end", "Nowhere/Land"},
		{Pair{Start: "61 8 * * *", End: "0 9 * * *"}, "start", "minute hour"},
		{Pair{Start: "", End: "0 9 * * *"}, "start", "empty"},
		{Pair{Start: "0 8 30 2 *", End: "0 9 * * *"}, "start", "never fires"},
		{Pair{Start: "0 8 1 1 *", End: "0 9 1 6 *"}, "end", "within 7 days"},
	} {
		_, err := Compile([]Pair{{Start: "0 1 * * *", End: "0 2 * * *"}, c.pair})
		var pe *PairError
		if !errors.As(err, &pe) || pe.Index != 1 || pe.Field != c.field || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: err = %v, want windows[1].%s saying %q", c.pair, err, c.field, c.says)
		}
	}
}
