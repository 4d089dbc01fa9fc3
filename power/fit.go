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
// limits, the way Zeus profiles a job: uncappedW is the job's uncapped draw
// (measure it as the draw under the maximum limit); 0 takes the highest
// PowerW among the samples. MaxThroughput is fitted along with a and k (for
// each (a, k) it has a closed-form least-squares value).
func FitLimitCurve(samples []LimitSample, uncappedW float64) (JobCurve, error) {
	if uncappedW == 0 {
		for _, s := range samples {
			uncappedW = math.Max(uncappedW, s.PowerW)
		}
		if uncappedW == 0 {
			return JobCurve{}, errors.New("fit job curve: the uncapped draw is unknown: pass it, or give samples with PowerW (the draw under the maximum limit)")
		}
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
