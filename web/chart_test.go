package web

import (
	"strings"
	"testing"
	"time"
)

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 3.7, []float64{0, 1, 2, 3, 4}},
		{0, 1900, []float64{0, 500, 1000, 1500, 2000}},
		{0, 0.00045, []float64{0, 0.0002, 0.0004, 0.0006}},
		{-3, 9, []float64{-5, 0, 5, 10}},
		{0, 0, []float64{0, 0.25, 0.5, 0.75, 1}}, // flat: a unit range
	} {
		got := niceTicks(tc.lo, tc.hi, 4)
		if len(got) != len(tc.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
			continue
		}
		for i := range got {
			if d := got[i] - tc.want[i]; d > 1e-12 || d < -1e-12 {
				t.Errorf("niceTicks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
				break
			}
		}
	}
}

// Charts escape what they print and say when there is nothing to draw.
func TestChartsEscapeAndHandleEmpty(t *testing.T) {
	bars := string(barChart("cost by user", "EUR", []string{"<script>", "bob"}, []float64{1, 2}))
	if strings.Contains(bars, "<script>") || !strings.Contains(bars, "&lt;script&gt;") || strings.Count(bars, `<rect class="col"`) != 2 {
		t.Errorf("bar chart: %s", bars)
	}
	if s := string(barChart("x", "kWh", nil, nil)); !strings.Contains(s, "no data") {
		t.Errorf("empty bar chart: %s", s)
	}
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	if s := string(lineChart("power", "W", []time.Time{t0}, []lineSeries{{"p", []float64{1}}}, false)); !strings.Contains(s, "not enough samples") {
		t.Errorf("one-point line chart: %s", s)
	}
	ts := []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}
	s := string(lineChart("power", "W", ts, []lineSeries{{"p", []float64{100, 300, 200}}}, true))
	// A step chart holds each value to the next point: 3 points + 2 corners.
	pts := strings.Fields(s[strings.Index(s, `points="`)+8 : strings.Index(s, `"/>`+"</svg>")])
	if len(pts) != 5 || !strings.Contains(s, ">10:01:00<") {
		t.Errorf("step line: %d points (%v)\n%s", len(pts), pts, s)
	}
}
