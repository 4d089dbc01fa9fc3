package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// The dashboard's charts are SVG drawn here, on the server: no script, no
// asset to fetch, and they work offline. Two kinds suffice: a line chart of
// series over time (power, energy, price) and a bar chart of totals per group.

const (
	chartW, chartH = 640.0, 220.0
	padL, padR     = 56.0, 12.0
	padT, padB     = 24.0, 36.0
)

// niceTicks returns about n round tick values whose range covers [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	// From the last step at or below lo to the first at or above hi, so that
	// every value lies inside the axis.
	var out []float64
	for i := math.Floor(lo / step); ; i++ {
		v := i * step
		out = append(out, v)
		if v >= hi-step*1e-9 {
			return out
		}
	}
}

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	return fmt.Sprintf("%.3g", v)
}

type lineSeries struct {
	Name string
	Y    []float64
}

// lineChart draws series against shared times. step draws a staircase
// (a value holds until the next point), as prices do.
func lineChart(title, unit string, ts []time.Time, series []lineSeries, step bool) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s"><title>%s</title>`,
		chartW, chartH, html.EscapeString(title), html.EscapeString(title))
	fmt.Fprintf(&b, `<text class="ctitle" x="%g" y="14">%s (%s)</text>`, padL, html.EscapeString(title), html.EscapeString(unit))
	if len(ts) < 2 {
		fmt.Fprintf(&b, `<text class="empty" x="%g" y="%g">not enough samples yet</text></svg>`, chartW/2-70, chartH/2)
		return template.HTML(b.String())
	}
	t0, t1 := ts[0], ts[len(ts)-1]
	lo, hi := 0.0, math.Inf(-1)
	for _, s := range series {
		for _, y := range s.Y {
			hi = max(hi, y)
			lo = min(lo, y)
		}
	}
	ticks := niceTicks(lo, hi, 4)
	lo, hi = ticks[0], ticks[len(ticks)-1]
	x := func(t time.Time) float64 {
		span := t1.Sub(t0).Seconds()
		return padL + (chartW-padL-padR)*t.Sub(t0).Seconds()/span
	}
	y := func(v float64) float64 { return chartH - padB - (chartH-padT-padB)*(v-lo)/(hi-lo) }
	for _, tv := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/><text class="ylab" x="%g" y="%.1f">%s</text>`,
			padL, chartW-padR, y(tv), y(tv), padL-6, y(tv)+4, fmtNum(tv))
	}
	layout := "15:04"
	switch span := t1.Sub(t0); {
	case span > 36*time.Hour:
		layout = "Jan 2 15:04"
	case span < 10*time.Minute:
		layout = "15:04:05"
	}
	for i := range 5 {
		t := t0.Add(time.Duration(float64(t1.Sub(t0)) * float64(i) / 4))
		anchor := ""
		if i == 4 {
			anchor = ` style="text-anchor:end"`
		}
		fmt.Fprintf(&b, `<text class="xlab" x="%.1f" y="%g"%s>%s</text>`, x(t), chartH-padB+16, anchor, t.UTC().Format(layout))
	}
	for k, s := range series {
		var pts []string
		for i, v := range s.Y {
			if i >= len(ts) {
				break
			}
			if step && i > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(ts[i]), y(s.Y[i-1])))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(ts[i]), y(v)))
		}
		fmt.Fprintf(&b, `<polyline class="s%d" fill="none" points="%s"/>`, k%6, strings.Join(pts, " "))
		if len(series) > 1 {
			fmt.Fprintf(&b, `<text class="legend s%d" x="%g" y="14">%s</text>`, k%6, chartW-padR-110*float64(len(series)-k), html.EscapeString(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barChart draws one bar per label.
func barChart(title, unit string, labels []string, values []float64) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s"><title>%s</title>`,
		chartW, chartH, html.EscapeString(title), html.EscapeString(title))
	fmt.Fprintf(&b, `<text class="ctitle" x="%g" y="14">%s (%s)</text>`, padL, html.EscapeString(title), html.EscapeString(unit))
	if len(values) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%g" y="%g">no data in this range</text></svg>`, chartW/2-60, chartH/2)
		return template.HTML(b.String())
	}
	hi := 0.0
	for _, v := range values {
		hi = max(hi, v)
	}
	ticks := niceTicks(0, hi, 4)
	top := ticks[len(ticks)-1]
	y := func(v float64) float64 { return chartH - padB - (chartH-padT-padB)*v/top }
	for _, tv := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/><text class="ylab" x="%g" y="%.1f">%s</text>`,
			padL, chartW-padR, y(tv), y(tv), padL-6, y(tv)+4, fmtNum(tv))
	}
	slot := (chartW - padL - padR) / float64(len(values))
	every := 1 + len(values)/12 // at most about 12 labels
	for i, v := range values {
		x0 := padL + slot*float64(i) + slot*0.15
		fmt.Fprintf(&b, `<rect class="col" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s %s</title></rect>`,
			x0, y(v), slot*0.7, y(0)-y(v), html.EscapeString(labels[i]), fmtNum(v), html.EscapeString(unit))
		if i%every == 0 {
			l := labels[i]
			if len(l) > 12 {
				l = l[:11] + "…"
			}
			fmt.Fprintf(&b, `<text class="xlab" x="%.1f" y="%g">%s</text>`, x0+slot*0.35, chartH-padB+16, html.EscapeString(l))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
