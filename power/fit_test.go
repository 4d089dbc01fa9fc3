package power

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func curveSamples(a, k float64, rs []float64) []CurveSample {
	out := make([]CurveSample, len(rs))
	for i, r := range rs {
		out[i] = CurveSample{R: r, RelThroughput: curveRaw(r, a, k)}
	}
	return out
}

func rGrid(lo, hi, step float64) []float64 {
	var rs []float64
	for r := lo; r <= hi+1e-9; r += step {
		rs = append(rs, r)
	}
	return rs
}

func TestFitCurveRecoversExactCurves(t *testing.T) {
	tests := []struct{ a, k float64 }{
		{0.37, 3.5}, {0.34, 2.0}, {0.40, 4.3}, {0.1, 1.5}, {0.6, 6},
	}
	for _, tt := range tests {
		// Samples down to r = a + 0.05, as profiling would reach, plus
		// some above the uncapped draw.
		s := curveSamples(tt.a, tt.k, rGrid(tt.a+0.05, 1.3, 0.05))
		a, k, err := FitCurve(s)
		if err != nil {
			t.Fatalf("(%v, %v): %v", tt.a, tt.k, err)
		}
		if !near(a, tt.a, 0.01) || !near(k, tt.k, 0.05*tt.k) {
			t.Errorf("fit of exact (%v, %v) = (%.4f, %.4f)", tt.a, tt.k, a, k)
		}
	}
}

func TestFitCurveNoisy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s []CurveSample
	for range 20 {
		for _, r := range rGrid(0.45, 1.2, 0.05) {
			rel := curveRaw(r, DefaultCurveA, DefaultCurveK) * (1 + 0.03*rng.NormFloat64())
			s = append(s, CurveSample{R: r, RelThroughput: rel})
		}
	}
	a, k, err := FitCurve(s)
	if err != nil {
		t.Fatal(err)
	}
	// a and k trade off against each other; the curve itself must be right.
	for _, r := range []float64{0.5, 0.6, 0.7, 0.8, 0.9} {
		if got, want := CurveRel(r, a, k), CurveRel(r, DefaultCurveA, DefaultCurveK); !near(got, want, 0.01) {
			t.Errorf("noisy fit (%.3f, %.3f) at r=%v: %.4f, want %.4f", a, k, r, got, want)
		}
	}
}

func TestFitCurveErrors(t *testing.T) {
	tests := []struct {
		name    string
		samples []CurveSample
		tooFew  bool
	}{
		{"empty", nil, true},
		{"one below", []CurveSample{{0.8, 0.9}, {1, 1}, {1.2, 1}}, true},
		{"same r twice", []CurveSample{{0.8, 0.9}, {0.8, 0.91}}, true},
		{"all uncapped", []CurveSample{{1, 1}, {1.1, 1}, {1.5, 1}}, true},
		{"zero r", []CurveSample{{0, 0.5}, {0.8, 0.9}, {0.9, 0.95}}, false},
		{"negative rel", []CurveSample{{0.7, -1}, {0.8, 0.9}, {0.9, 0.95}}, false},
		{"NaN", []CurveSample{{math.NaN(), 1}, {0.8, 0.9}, {0.9, 0.95}}, false},
	}
	for _, tt := range tests {
		_, _, err := FitCurve(tt.samples)
		if err == nil {
			t.Errorf("%s: FitCurve succeeded", tt.name)
			continue
		}
		if errors.Is(err, ErrTooFewSamples) != tt.tooFew {
			t.Errorf("%s: error %v, want ErrTooFewSamples = %v", tt.name, err, tt.tooFew)
		}
	}
}

func TestFitLimitCurve(t *testing.T) {
	// A job drawing 300 W uncapped at 120 samples/s, a = 0.35, k = 3,
	// profiled at 150..300 W and at 350 W (above its draw).
	want := JobCurve{UncappedW: 300, MaxThroughput: 120, A: 0.35, K: 3}
	var s []LimitSample
	for l := 150.0; l <= 350; l += 25 {
		s = append(s, LimitSample{LimitW: l, Throughput: want.ThroughputAt(l), PowerW: math.Min(l, 300)})
	}
	for _, uncapped := range []float64{300, 0} { // given, or from PowerW
		got, err := FitLimitCurve(s, uncapped)
		if err != nil {
			t.Fatal(err)
		}
		if got.UncappedW != 300 || !near(got.MaxThroughput, 120, 0.01) || !near(got.A, 0.35, 0.01) || !near(got.K, 3, 0.1) {
			t.Errorf("FitLimitCurve(uncapped %v) = %+v, want %+v", uncapped, got, want)
		}
		for _, l := range []float64{180, 240, 290} {
			if g, w := got.ThroughputAt(l), want.ThroughputAt(l); !near(g, w, 0.01) {
				t.Errorf("fitted throughput at %v W = %v, want %v", l, g, w)
			}
		}
	}
	noPower := []LimitSample{{LimitW: 200, Throughput: 1}, {LimitW: 250, Throughput: 2}}
	if _, err := FitLimitCurve(noPower, 0); err == nil {
		t.Error("FitLimitCurve without any uncapped draw succeeded")
	}
	if _, err := FitLimitCurve(s[:1], 300); !errors.Is(err, ErrTooFewSamples) {
		t.Errorf("one sample: %v, want ErrTooFewSamples", err)
	}
	if _, err := FitLimitCurve([]LimitSample{{LimitW: -1, Throughput: 1}, {200, 1, 0}}, 300); err == nil {
		t.Error("negative limit accepted")
	}
	if _, err := FitLimitCurve(s, math.Inf(1)); err == nil {
		t.Error("infinite uncapped draw accepted")
	}
}

// TestFitModelCurve recovers a known headroom and curve from noisy
// made-up runs (r from 0.4 to 1.3 of the uncapped draw).
func TestFitModelCurve(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const h, a, k = 1.15, 0.3, 4.0
	var s []ModelSample
	for r := 0.4; r <= 1.3; r += 0.05 {
		for range 3 {
			s = append(s, ModelSample{R: r,
				DrawRatio:     math.Min(1, r/h) * (1 + 0.01*rng.NormFloat64()),
				RelThroughput: curveRaw(r/h, a, k) * (1 + 0.01*rng.NormFloat64())})
		}
	}
	gh, ga, gk, sse, err := FitModelCurve(s)
	if err != nil {
		t.Fatal(err)
	}
	if !near(gh, h, 0.01) || sse > ModelSSE(s, h, a, k)+1e-9 {
		t.Errorf("FitModelCurve = headroom %.3f a %.3f k %.2f (sse %.5f), want %.2f %.2f %.1f (sse %.5f)", gh, ga, gk, sse, h, a, k, ModelSSE(s, h, a, k))
	}
	for _, r := range []float64{0.5, 0.7, 0.9, 1.0} {
		if got, want := CurveRel(r/gh, ga, gk), CurveRel(r/h, a, k); !near(got, want, 0.01) {
			t.Errorf("fitted throughput at r=%.1f: %.3f, want %.3f", r, got, want)
		}
	}
	if _, _, _, _, err := FitModelCurve([]ModelSample{{R: 0.5, DrawRatio: 0.5, RelThroughput: math.NaN()}}); err == nil || !strings.Contains(err.Error(), "sample 0") {
		t.Errorf("NaN throughput: err %v, want one naming sample 0", err)
	}
	if _, _, _, _, err := FitModelCurve([]ModelSample{{R: 1.5, DrawRatio: 1, RelThroughput: 1}}); !errors.Is(err, ErrTooFewSamples) {
		t.Errorf("no capped runs: err %v, want ErrTooFewSamples", err)
	}
}
