package power

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// calibrationDir finds ../shared/calibration next to the module root (the
// shared checkout layout), or $JOULE_CALIBRATION_DIR.
func calibrationDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("JOULE_CALIBRATION_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("calibration data not found: no go.mod above the package; set JOULE_CALIBRATION_DIR")
		}
		dir = parent
	}
	for _, c := range []string{filepath.Join(dir, "..", "shared", "calibration"), filepath.Join(dir, "shared", "calibration")} {
		if _, err := os.Stat(filepath.Join(c, "zeus_v100.csv")); err == nil {
			return c
		}
	}
	t.Skipf("calibration data not found in %s/../shared/calibration: set JOULE_CALIBRATION_DIR to the folder with zeus_*.csv", dir)
	return ""
}

// zeusJob is one (dataset, network, batch size, optimizer) configuration's
// measurements across power limits.
type zeusJob struct {
	key    string
	limits []LimitSample // LimitW, Throughput = 1/epoch time, PowerW
}

func readZeus(path string) ([]zeusJob, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) < 2 || len(rows[0]) != 7 || rows[0][4] != "power_limit" {
		return nil, fmt.Errorf("%s: unexpected header %v", path, rows[0])
	}
	idx := map[string]int{}
	var jobs []zeusJob
	for i, row := range rows[1:] {
		var v [3]float64
		for j := range v {
			if v[j], err = strconv.ParseFloat(row[4+j], 64); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", path, i+2, err)
			}
		}
		key := fmt.Sprint(row[:4])
		n, ok := idx[key]
		if !ok {
			n = len(jobs)
			idx[key] = n
			jobs = append(jobs, zeusJob{key: key})
		}
		jobs[n].limits = append(jobs[n].limits, LimitSample{LimitW: v[0], Throughput: 1 / v[1], PowerW: v[2]})
	}
	return jobs, nil
}

// normalise turns a job's measurements into curve samples: the run under
// the highest limit is the uncapped reference.
func (j zeusJob) normalise() (uncappedW float64, out []CurveSample) {
	ref := j.limits[0]
	for _, s := range j.limits {
		if s.LimitW > ref.LimitW {
			ref = s
		}
	}
	for _, s := range j.limits {
		out = append(out, CurveSample{R: s.LimitW / ref.PowerW, RelThroughput: s.Throughput / ref.Throughput})
	}
	return ref.PowerW, out
}

// README claims (../shared/calibration/README.md).
const (
	// The README's default curve, fitted without headroom (draw at the cap).
	readmeA, readmeK       = 0.37, 3.5
	readmeMinA, readmeMaxA = 0.34, 0.40
	readmeMinK, readmeMaxK = 2.0, 4.3
	// The README rounds; these are the tolerances on its ranges.
	tolA, tolK = 0.03, 0.2
	// "r = 0.8 saves about 11-15% at 6-10% slowdown; r = 0.7 about 17-19%
	// at 14-16%". Slowdown here is lost throughput, 1 - rel; the
	// tolerance covers the README's own default (a=0.37, k=3.5), which
	// gives 10.8% at 10.3% and 15.8% at 16.9%.
	tolSave = 0.025
)

var readmeSavings = []struct{ r, minSave, maxSave, minLoss, maxLoss float64 }{
	{0.8, 0.11, 0.15, 0.06, 0.10},
	{0.7, 0.17, 0.19, 0.14, 0.16},
}

func checkSavings(t *testing.T, who string, a, k float64) {
	t.Helper()
	for _, c := range readmeSavings {
		save, loss := EnergySaving(c.r, a, k), 1-CurveRel(c.r, a, k)
		if save < c.minSave-tolSave || save > c.maxSave+tolSave || loss < c.minLoss-tolSave || loss > c.maxLoss+tolSave {
			t.Errorf("%s (a=%.3f, k=%.3f) at r=%.1f: saves %.1f%% at %.1f%% lost throughput, README: %.0f-%.0f%% at %.0f-%.0f%%",
				who, a, k, c.r, 100*save, 100*loss, 100*c.minSave, 100*c.maxSave, 100*c.minLoss, 100*c.maxLoss)
		}
	}
}

func TestDefaultCurveMatchesReadme(t *testing.T) {
	checkSavings(t, "README curve", readmeA, readmeK)
	// The calibrated curve, read from its knee (r = limit / KneeW, where the
	// average draw is r x uncapped), still saves what the README says.
	checkSavings(t, "default curve", DefaultCurveA, DefaultCurveK)
}

// TestFitZeus fits the throughput curve to Zeus's measurements per GPU and
// checks them against the calibration README. Each job (dataset, network,
// batch size, optimizer) is normalised by its run under the highest limit:
// r = limit / that run's average draw, rel = its epoch time / epoch time.
func TestFitZeus(t *testing.T) {
	dir := calibrationDir(t)
	tests := []struct {
		gpu string
		// checkRange: a and k in the README's ranges.
		checkRange bool
		// checkSavings: the fitted curve's savings match the README.
		checkSavings bool
		// checkUncapped: the median uncapped draw is about 0.7 x TDP.
		checkUncapped bool
		// jobTol bounds the per-job fits' median worst-point error.
		jobTol float64
	}{
		{"v100", true, true, true, 0.05},
		// A40's runs at low limits collapse (2.5x slower at r = 0.4), which
		// pulls the pooled least-squares fit to k = 1.9, a steep curve that
		// saves only ~3% at r = 0.8. Its a and k are checked, its savings
		// only logged. Per job the curve's form misses A40's knee (flat to
		// r = 0.8, then a collapse; 27 of 300 runs draw above their cap):
		// the bound there guards against regressions, it is not a claim.
		{"a40", true, false, true, 0.20},
		// P100 jobs draw ~0.48 x TDP uncapped, so few runs are capped and a
		// and k trade off freely (checked below): a runs to 0.
		{"p100", false, true, false, 0.05},
		{"rtx6000", true, true, false, 0.05},
	}
	for _, tt := range tests {
		jobs, err := readZeus(filepath.Join(dir, "zeus_"+tt.gpu+".csv"))
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("calibration data incomplete: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		var all []CurveSample
		var ratios []float64 // uncapped draw / TDP per job
		var tdpW float64
		for _, j := range jobs {
			for _, l := range j.limits {
				tdpW = math.Max(tdpW, l.LimitW)
			}
		}
		for _, j := range jobs {
			u, s := j.normalise()
			ratios = append(ratios, u/tdpW)
			all = append(all, s...)
		}
		a, k, err := FitCurve(all)
		if err != nil {
			t.Fatalf("%s: %v", tt.gpu, err)
		}
		sort.Float64s(ratios)
		medianRatio := ratios[len(ratios)/2]
		t.Logf("%-7s %2d jobs %3d runs: a=%.3f k=%.3f; r=0.8 saves %.1f%% at %.1f%% lost; r=0.7 saves %.1f%% at %.1f%% lost; uncapped draw median %.2f x TDP",
			tt.gpu, len(jobs), len(all), a, k, 100*EnergySaving(0.8, a, k), 100*(1-CurveRel(0.8, a, k)),
			100*EnergySaving(0.7, a, k), 100*(1-CurveRel(0.7, a, k)), medianRatio)
		if tt.checkRange && (a < readmeMinA-tolA || a > readmeMaxA+tolA || k < readmeMinK-tolK || k > readmeMaxK+tolK) {
			t.Errorf("%s: fitted a=%.3f k=%.3f, README: a %.2f..%.2f, k %.1f..%.1f", tt.gpu, a, k, readmeMinA, readmeMaxA, readmeMinK, readmeMaxK)
		}
		if !tt.checkRange {
			// The README's (a, k) must fit the data almost as well: the
			// parameters are not identified, only the curve is.
			sse := func(a, k float64) (s float64) {
				for _, c := range all {
					d := curveRaw(c.R, a, k) - c.RelThroughput
					s += d * d
				}
				return s
			}
			if best, dflt := sse(a, k), sse(readmeA, readmeK); dflt > 1.05*best {
				t.Errorf("%s: the README's curve's squared error %.4f is more than 5%% above the fit's %.4f", tt.gpu, dflt, best)
			}
		}
		if tt.checkSavings {
			checkSavings(t, tt.gpu, a, k)
		}
		if tt.checkUncapped && (medianRatio < 0.6 || medianRatio > 0.8) {
			t.Errorf("%s: median uncapped draw %.2f x TDP, README: about 0.7", tt.gpu, medianRatio)
		}

		// Per-job fits with FitLimitCurve, as the online profiler will do:
		// the fitted curve must reproduce the job's throughputs.
		var errs []float64
		for _, j := range jobs {
			c, err := FitLimitCurve(j.limits, 0)
			if errors.Is(err, ErrTooFewSamples) {
				continue // the job never drew more than the lowest limits
			}
			if err != nil {
				t.Fatalf("%s %s: %v", tt.gpu, j.key, err)
			}
			var worst float64
			for _, l := range j.limits {
				worst = math.Max(worst, math.Abs(c.ThroughputAt(l.LimitW)/l.Throughput-1))
			}
			errs = append(errs, worst)
		}
		sort.Float64s(errs)
		med := errs[len(errs)/2]
		t.Logf("%-7s per-job fits: %d jobs, median worst-point error %.1f%%, worst %.1f%%", tt.gpu, len(errs), 100*med, 100*errs[len(errs)-1])
		if med > tt.jobTol {
			t.Errorf("%s: per-job curve fits miss by a median %.1f%% at their worst point, want <= %.0f%%", tt.gpu, 100*med, 100*tt.jobTol)
		}
	}
}

// zeusSets reads every job of the named GPUs' calibration files.
func zeusSets(t *testing.T, gpus ...string) map[string][]zeusJob {
	t.Helper()
	dir := calibrationDir(t)
	out := map[string][]zeusJob{}
	for _, g := range gpus {
		jobs, err := readZeus(filepath.Join(dir, "zeus_"+g+".csv"))
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("calibration data incomplete: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[g] = jobs
	}
	return out
}

// maxLimitRun is a job's run under its highest limit: the uncapped reference.
func (j zeusJob) maxLimitRun() LimitSample {
	ref := j.limits[0]
	for _, s := range j.limits {
		if s.LimitW > ref.LimitW {
			ref = s
		}
	}
	return ref
}

// calibrationMinR: runs below this share of the uncapped draw are left out
// of the model fit (the GPUs' minimum limits sit at r = 0.4 for H100/H200).
const calibrationMinR = 0.4

// TestCalibrateZeus refits the default model constants (DefaultHeadroom,
// DefaultCurveA, DefaultCurveK) to the Zeus runs they were fitted on and
// checks that the constants in model.go are that fit.
func TestCalibrateZeus(t *testing.T) {
	sets := zeusSets(t, "v100", "p100", "rtx6000")
	var samples []ModelSample
	for _, g := range []string{"v100", "p100", "rtx6000"} {
		for _, j := range sets[g] {
			ref := j.maxLimitRun()
			for _, s := range j.limits {
				if r := s.LimitW / ref.PowerW; r >= calibrationMinR {
					samples = append(samples, ModelSample{R: r, DrawRatio: s.PowerW / ref.PowerW, RelThroughput: s.Throughput / ref.Throughput})
				}
			}
		}
	}
	h, a, k, sse, err := FitModelCurve(samples)
	if err != nil {
		t.Fatal(err)
	}
	dflt := ModelSSE(samples, DefaultHeadroom, DefaultCurveA, DefaultCurveK)
	t.Logf("%d runs: fitted headroom %.2f a %.3f k %.2f (squared error %.3f); defaults %.2f %.2f %.1f (%.3f)",
		len(samples), h, a, k, sse, DefaultHeadroom, DefaultCurveA, DefaultCurveK, dflt)
	// a and k trade off along a ridge, so the defaults are rounded values
	// on it: they must fit within 2% of the optimum's error.
	if math.Abs(h-DefaultHeadroom) > 0.02 || dflt > 1.02*sse {
		t.Errorf("defaults (headroom %.2f, a %.2f, k %.1f) are not the fit (%.2f, %.3f, %.2f): squared error %.4f vs %.4f; update model.go",
			DefaultHeadroom, DefaultCurveA, DefaultCurveK, h, a, k, dflt, sse)
	}
}

// balancedPoint is, for one job's runs, the lowest measured limit whose time
// per unit of work stays within maxSlowdown of the run under the highest
// limit, with its slowdown and its energy per unit of work relative to that
// run. time and draw give each limit's time and average draw.
func balancedPoint(limits []float64, time, draw func(float64) float64, maxSlowdown float64) (slowdown, energy float64) {
	top := slices.Max(limits)
	t0, e0 := time(top), time(top)*draw(top)
	best := top
	for _, l := range limits {
		if l < best && time(l) <= t0*(1+maxSlowdown) {
			best = l
		}
	}
	return time(best)/t0 - 1, time(best) * draw(best) / e0
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// TestModelReproducesBalancedPoints: picking each Zeus job's balanced point
// (the lowest measured limit within 10% of its fastest time) on the model's
// predictions gives the same median slowdown and energy ratio as picking it
// on the measurements, over all four GPUs' jobs (A40 included, though it was
// not fitted), on the same limits. Tolerances: 1.5 points of slowdown, 3
// points of energy. At 5% the model is logged only: it saves less there
// than the data (about 0.97x against 0.91x), so it errs on the safe side.
func TestModelReproducesBalancedPoints(t *testing.T) {
	sets := zeusSets(t, "v100", "a40", "p100", "rtx6000")
	m := Model{A: DefaultCurveA, K: DefaultCurveK, Headroom: DefaultHeadroom}
	for _, c := range []struct {
		maxSlowdown, tolSlow, tolEnergy float64
		check                           bool
	}{{0.10, 0.015, 0.03, true}, {0.05, 0, 0, false}} {
		var dataSlow, dataE, modelSlow, modelE []float64
		for _, g := range []string{"v100", "a40", "p100", "rtx6000"} {
			for _, j := range sets[g] {
				ref := j.maxLimitRun()
				byLimit := map[float64]LimitSample{}
				var limits []float64
				for _, s := range j.limits {
					byLimit[s.LimitW] = s
					limits = append(limits, s.LimitW)
				}
				s, e := balancedPoint(limits, func(l float64) float64 { return 1 / byLimit[l].Throughput },
					func(l float64) float64 { return byLimit[l].PowerW }, c.maxSlowdown)
				dataSlow, dataE = append(dataSlow, s), append(dataE, e)
				// The model with this job's uncapped draw: its time is
				// 1/CurveRel at the knee's share, its draw min(U, l/h).
				u := ref.PowerW
				knee := m.Headroom * u
				s, e = balancedPoint(limits, func(l float64) float64 { return 1 / CurveRel(l/knee, m.A, m.K) },
					func(l float64) float64 { return math.Min(u, l/m.Headroom) }, c.maxSlowdown)
				modelSlow, modelE = append(modelSlow, s), append(modelE, e)
			}
		}
		ds, de, ms, me := median(dataSlow), median(dataE), median(modelSlow), median(modelE)
		t.Logf("balanced within %.0f%%, %d jobs: data median slowdown %.1f%% energy %.3fx; model %.1f%% %.3fx",
			100*c.maxSlowdown, len(dataSlow), 100*ds, de, 100*ms, me)
		if c.check && (math.Abs(ds-ms) > c.tolSlow || math.Abs(de-me) > c.tolEnergy) {
			t.Errorf("balanced within %.0f%%: model median slowdown %.1f%% energy %.3fx, data %.1f%% %.3fx; want within %.1f and %.1f points",
				100*c.maxSlowdown, 100*ms, me, 100*ds, de, 100*c.tolSlow, 100*c.tolEnergy)
		}
	}
}
