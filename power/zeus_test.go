package power

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
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

func TestFitZeusExplore(t *testing.T) {
	dir := calibrationDir(t)
	for _, gpu := range []string{"v100", "a40", "p100", "rtx6000"} {
		jobs, err := readZeus(filepath.Join(dir, "zeus_"+gpu+".csv"))
		if errors.Is(err, fs.ErrNotExist) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		var all []CurveSample
		var maxL float64
		var ups []float64
		for _, j := range jobs {
			u, s := j.normalise()
			ups = append(ups, u)
			all = append(all, s...)
			for _, l := range j.limits {
				maxL = math.Max(maxL, l.LimitW)
			}
		}
		a, k, err := FitCurve(all)
		t.Logf("%s: %d jobs, %d samples, maxL %v, a=%.3f k=%.3f save0.8=%.3f slow0.8=%.3f save0.7=%.3f slow0.7=%.3f", gpu, len(jobs), len(all), maxL, a, k,
			EnergySaving(0.8, a, k), 1/CurveRel(0.8, a, k)-1, EnergySaving(0.7, a, k), 1/CurveRel(0.7, a, k)-1)
		_ = ups
	}
}
