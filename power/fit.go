package power

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// CurveSample is one point of a normalised throughput curve: at
// R = limit / uncapped draw, work ran at RelThroughput of its uncapped speed.
type CurveSample struct {
	R, RelThroughput float64
}

// LimitSample is one profiled power limit: the throughput a job reached
// under LimitW (any unit: samples/s, steps/s, 1/epoch time) and, optionally,
// the average draw PowerW measured meanwhile (0 if unknown).
type LimitSample struct {
	LimitW, Throughput, PowerW float64
}

// JobCurve is one job's throughput-versus-power-limit curve: MaxThroughput
// uncapped, and MaxThroughput x CurveRel(limit/UncappedW, A, K) under a limit.
// UncappedW is the limit where the cap starts to bind: for a model's curve
// its KneeW (Headroom x the average uncapped draw), for a profiled one
// DefaultHeadroom x the draw measured under the maximum limit (FitLimitCurve).
type JobCurve struct {
	UncappedW, MaxThroughput, A, K float64
}

// ThroughputAt is the curve's throughput under limitW.
func (c JobCurve) ThroughputAt(limitW float64) float64 {
	return c.MaxThroughput * CurveRel(limitW/c.UncappedW, c.A, c.K)
}

// Bounds of fitted curve parameters. k is the exponent of power in clock
// frequency (dynamic power ~ f x V^2 ~ f^3 gives k near 3); a is the share
// of the uncapped draw that does not scale with clocks.
const (
	fitMaxA = 0.95
	fitMinK = 0.3
	fitMaxK = 20.0
)

// ErrTooFewSamples is returned (wrapped) by the fits when fewer than two
// distinct points lie below the uncapped draw, where the curve is shaped.
var ErrTooFewSamples = errors.New("need at least two distinct samples below the uncapped draw (r < 1)")

// FitCurve fits the throughput curve's a and k (see CurveRel) to normalised
// samples by least squares: a coarse grid over the bounded parameter space,
// then Nelder-Mead from the best grid point. Samples at r >= 1 are used but
// carry no information on a and k. The curve's floor (MinRelThroughput) is
// not applied while fitting.
func FitCurve(samples []CurveSample) (a, k float64, err error) {
	rs := make([]float64, len(samples))
	ys := make([]float64, len(samples))
	for i, s := range samples {
		if !(s.R > 0) || math.IsInf(s.R, 0) || !(s.RelThroughput >= 0) || math.IsInf(s.RelThroughput, 0) {
			return 0, 0, fmt.Errorf("fit throughput curve: sample %d (r=%v, rel=%v): r must be > 0 and rel >= 0, both finite", i, s.R, s.RelThroughput)
		}
		rs[i], ys[i] = s.R, s.RelThroughput
	}
	if err := enoughBelow(rs); err != nil {
		return 0, 0, fmt.Errorf("fit throughput curve: %w", err)
	}
	sse := func(a, k float64) float64 {
		var s float64
		for i, r := range rs {
			d := curveRaw(r, a, k) - ys[i]
			s += d * d
		}
		return s
	}
	return minimiseAK(sse)
}

// FitLimitCurve fits a job's throughput-versus-limit curve to profiled
// limits, the way Zeus profiles a job: uncappedW is the limit where the cap
// starts to bind; 0 estimates it from the samples' PowerW as the highest
// draw (the average under the maximum limit) times the median of limit /
// draw over the samples whose limit held the draw down (below 97% of the
// highest): a cap holds the average draw below itself, by Headroom. MaxThroughput is fitted along with a and k (for
// each (a, k) it has a closed-form least-squares value).
func FitLimitCurve(samples []LimitSample, uncappedW float64) (JobCurve, error) {
	if uncappedW == 0 {
		for _, s := range samples {
			uncappedW = math.Max(uncappedW, s.PowerW)
		}
		if uncappedW == 0 {
			return JobCurve{}, errors.New("fit job curve: the uncapped draw is unknown: pass it, or give samples with PowerW (the draw under the maximum limit)")
		}
		uncappedW *= measuredHeadroom(samples, uncappedW)
	}
	if !(uncappedW > 0) || math.IsInf(uncappedW, 0) {
		return JobCurve{}, fmt.Errorf("fit job curve: uncapped draw %v W must be a positive number of watts", uncappedW)
	}
	rs := make([]float64, len(samples))
	ys := make([]float64, len(samples))
	for i, s := range samples {
		if !(s.LimitW > 0) || math.IsInf(s.LimitW, 0) || !(s.Throughput >= 0) || math.IsInf(s.Throughput, 0) {
			return JobCurve{}, fmt.Errorf("fit job curve: sample %d (limit %v W, throughput %v): limit must be > 0 and throughput >= 0, both finite", i, s.LimitW, s.Throughput)
		}
		rs[i], ys[i] = s.LimitW/uncappedW, s.Throughput
	}
	if err := enoughBelow(rs); err != nil {
		return JobCurve{}, fmt.Errorf("fit job curve (uncapped draw %.0f W): %w", uncappedW, err)
	}
	// scale is the least-squares MaxThroughput for given (a, k).
	scale := func(a, k float64) (tmax, sse float64) {
		var fy, ff float64
		for i, r := range rs {
			f := curveRaw(r, a, k)
			fy += f * ys[i]
			ff += f * f
		}
		if ff > 0 {
			tmax = fy / ff
		}
		for i, r := range rs {
			d := tmax*curveRaw(r, a, k) - ys[i]
			sse += d * d
		}
		return tmax, sse
	}
	a, k, err := minimiseAK(func(a, k float64) float64 { _, s := scale(a, k); return s })
	if err != nil {
		return JobCurve{}, fmt.Errorf("fit job curve: %w", err)
	}
	tmax, _ := scale(a, k)
	return JobCurve{UncappedW: uncappedW, MaxThroughput: tmax, A: a, K: k}, nil
}

// measuredHeadroom is the median limit / draw of the samples whose limit
// held their draw below 97% of the highest draw maxW, bounded to [1, 2]; 1
// if there are none.
func measuredHeadroom(samples []LimitSample, maxW float64) float64 {
	var rs []float64
	for _, s := range samples {
		if s.PowerW > 0 && s.PowerW < 0.97*maxW && s.LimitW > 0 && !math.IsInf(s.LimitW, 0) {
			rs = append(rs, s.LimitW/s.PowerW)
		}
	}
	if len(rs) == 0 {
		return 1
	}
	sort.Float64s(rs)
	m := rs[len(rs)/2]
	if len(rs)%2 == 0 {
		m = (rs[len(rs)/2-1] + m) / 2
	}
	return math.Min(math.Max(m, 1), 2)
}

// enoughBelow checks that at least two distinct r lie below 1.
func enoughBelow(rs []float64) error {
	first, n := math.NaN(), 0
	for _, r := range rs {
		if r < 1 && r != first {
			if n == 0 {
				first = r
			}
			n++
			if n >= 2 {
				return nil
			}
		}
	}
	return ErrTooFewSamples
}

// minimiseAK minimises sse over a in [0, fitMaxA], k in [fitMinK, fitMaxK]:
// a grid first (the objective is flat where r <= a, which defeats a local
// search started far away), then Nelder-Mead on a bounded reparametrisation. (gonum's optimize
// would pull golang.org/x/tools into the build for a 2-D problem.)
func minimiseAK(sse func(a, k float64) float64) (a, k float64, err error) {
	best := math.Inf(1)
	for ai := 0; ai <= 95; ai++ {
		ga := fitMaxA * float64(ai) / 95
		for ki := 0; ki <= 60; ki++ {
			// k on a log grid: 0.3 .. 20.
			gk := fitMinK * math.Pow(fitMaxK/fitMinK, float64(ki)/60)
			if s := sse(ga, gk); s < best {
				best, a, k = s, ga, gk
			}
		}
	}
	// x = (logit(a/fitMaxA), log k), clamped back into the bounds.
	toAK := func(x [2]float64) (float64, float64) {
		a := fitMaxA / (1 + math.Exp(-x[0]))
		k := math.Min(math.Max(math.Exp(x[1]), fitMinK), fitMaxK)
		return a, k
	}
	logit := func(p float64) float64 {
		p = math.Min(math.Max(p, 1e-6), 1-1e-6)
		return math.Log(p / (1 - p))
	}
	x, f := nelderMead(func(x [2]float64) float64 { return sse(toAK(x)) },
		[2]float64{logit(a / fitMaxA), math.Log(k)}, 0.3, 2000)
	if f <= best {
		a, k = toAK(x)
	}
	if math.IsNaN(a) || math.IsNaN(k) {
		return 0, 0, errors.New("fit diverged (NaN parameters)")
	}
	return a, k, nil
}

// nelderMead minimises f over two parameters from x0 with initial step size
// step: the standard simplex method (reflection 1, expansion 2, contraction
// 1/2, shrink 1/2), stopping after maxEval evaluations or when the simplex's
// values agree to 1e-12 relative.
func nelderMead(f func([2]float64) float64, x0 [2]float64, step float64, maxEval int) ([2]float64, float64) {
	type vertex struct {
		x [2]float64
		f float64
	}
	eval := func(x [2]float64) vertex { return vertex{x, f(x)} }
	s := [3]vertex{eval(x0), eval([2]float64{x0[0] + step, x0[1]}), eval([2]float64{x0[0], x0[1] + step})}
	n := 3
	along := func(c, p [2]float64, t float64) [2]float64 { // c + t(p - c)
		return [2]float64{c[0] + t*(p[0]-c[0]), c[1] + t*(p[1]-c[1])}
	}
	for n < maxEval {
		sort.Slice(s[:], func(i, j int) bool { return s[i].f < s[j].f })
		if math.Abs(s[2].f-s[0].f) <= 1e-12*(math.Abs(s[0].f)+1e-300) {
			break
		}
		c := [2]float64{(s[0].x[0] + s[1].x[0]) / 2, (s[0].x[1] + s[1].x[1]) / 2}
		r := eval(along(c, s[2].x, -1))
		n++
		switch {
		case r.f < s[0].f:
			if e := eval(along(c, s[2].x, -2)); e.f < r.f {
				s[2] = e
			} else {
				s[2] = r
			}
			n++
		case r.f < s[1].f:
			s[2] = r
		default:
			t := 0.5 // outside contraction
			if r.f >= s[2].f {
				t = -0.5 // inside contraction
			}
			if cv := eval(along(c, s[2].x, -t)); cv.f < math.Min(r.f, s[2].f) {
				s[2] = cv
				n++
				break
			}
			n++
			for i := 1; i < 3; i++ {
				s[i] = eval(along(s[0].x, s[i].x, 0.5))
				n++
			}
		}
	}
	sort.Slice(s[:], func(i, j int) bool { return s[i].f < s[j].f })
	return s[0].x, s[0].f
}

// ModelSample is one measured run of a job under a power limit, normalised
// by the job's run under its maximum limit: R = limit / that run's average
// draw, DrawRatio = this run's average draw / that draw, RelThroughput =
// that run's time per unit of work / this run's.
type ModelSample struct {
	R, DrawRatio, RelThroughput float64
}

// Headroom search range and step for FitModelCurve.
const (
	fitMinHeadroom = 1.0
	fitMaxHeadroom = 1.3
	fitHeadroomTol = 0.005
)

// FitModelCurve fits a Model's Headroom, A and K to measured runs: the
// least-squares fit of both the model's throughput, CurveRel(R/headroom),
// and its average draw, min(1, R/headroom), to the samples. Headroom is
// searched over [1, 1.3] to within 0.005, a and k as FitCurve does for each.
// It returns the summed squared error too.
func FitModelCurve(samples []ModelSample) (headroom, a, k, sse float64, err error) {
	for i, s := range samples {
		if !(s.R > 0) || math.IsInf(s.R, 0) || !(s.DrawRatio >= 0) || math.IsInf(s.DrawRatio, 0) ||
			!(s.RelThroughput >= 0) || math.IsInf(s.RelThroughput, 0) {
			return 0, 0, 0, 0, fmt.Errorf("fit power model: sample %d (r=%v, draw=%v, rel=%v): r must be > 0, draw and rel >= 0, all finite",
				i, s.R, s.DrawRatio, s.RelThroughput)
		}
	}
	rs := make([]float64, len(samples))
	for i, s := range samples {
		rs[i] = s.R / fitMaxHeadroom
	}
	if err := enoughBelow(rs); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("fit power model: %w", err)
	}
	// For each headroom, the best (a, k); the error is taken as unimodal in
	// the headroom, so a golden-section search finds it in about a dozen
	// fits, to within fitHeadroomTol.
	type fit struct{ h, a, k, sse float64 }
	at := func(h float64) fit {
		var drawSSE float64
		for _, s := range samples {
			d := math.Min(1, s.R/h) - s.DrawRatio
			drawSSE += d * d
		}
		f := func(a, k float64) float64 {
			s := drawSSE
			for _, c := range samples {
				d := curveRaw(c.R/h, a, k) - c.RelThroughput
				s += d * d
			}
			return s
		}
		a, k, err := minimiseAK(f)
		if err != nil {
			return fit{h, 0, 0, math.Inf(1)}
		}
		return fit{h, a, k, f(a, k)}
	}
	const g = 0.6180339887498949
	lo, hi := fitMinHeadroom, fitMaxHeadroom
	x1, x2 := at(hi-g*(hi-lo)), at(lo+g*(hi-lo))
	for hi-lo > fitHeadroomTol {
		if x1.sse <= x2.sse {
			hi, x2 = x2.h, x1
			x1 = at(hi - g*(hi-lo))
		} else {
			lo, x1 = x1.h, x2
			x2 = at(lo + g*(hi-lo))
		}
	}
	best := x1
	if x2.sse < best.sse {
		best = x2
	}
	headroom, a, k, sse = best.h, best.a, best.k, best.sse
	if math.IsInf(sse, 1) {
		return 0, 0, 0, 0, errors.New("fit power model: no headroom converged")
	}
	return headroom, a, k, sse, nil
}

// ModelSSE is the summed squared error FitModelCurve minimises, for given
// parameters.
func ModelSSE(samples []ModelSample, headroom, a, k float64) float64 {
	var sse float64
	for _, s := range samples {
		d := math.Min(1, s.R/headroom) - s.DrawRatio
		r := curveRaw(s.R/headroom, a, k) - s.RelThroughput
		sse += d*d + r*r
	}
	return sse
}
