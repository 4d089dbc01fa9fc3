package power

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Default power-curve parameters, fitted by FitModelCurve to Zeus's
// measurements (../shared/calibration, NSDI'23: V100, P100 and RTX6000 jobs,
// every run with limit >= 0.4 x the job's draw under its maximum limit);
// TestCalibrateZeus refits them and checks that the model reproduces the
// data's balanced operating points. A cap starts to bind at DefaultHeadroom x
// a job's average uncapped draw (the draw's peaks sit above its average);
// once it binds, the average draw is limit / DefaultHeadroom and throughput
// follows CurveRel(limit / (DefaultHeadroom x uncapped), a, k).
//
// A40 runs are left out of the fit: their throughput is flat down to
// r = 0.8 and then collapses (2.5x slower at r = 0.4), which this curve's
// form cannot follow; pooled in, they steepen it everywhere (fitted k = 4,
// balanced energy 0.93x against the data's 0.86x). The earlier defaults
// (a = 0.37, k = 3.5, no headroom: the draw at the cap) came from the
// README's summary and gave about 10% energy for 10% slowdown, where the
// data gives 11-16% for about 6%.
const (
	DefaultCurveA   = 0.36
	DefaultCurveK   = 5.0
	DefaultHeadroom = 1.1
)

// MinRelThroughput is the floor of the throughput curve. The curve
// ((r-a)/(1-a))^(1/k) reaches 0 at r = a, the share of the uncapped draw that
// does not scale with clocks; a real GPU then runs at its lowest clocks,
// which are roughly a tenth of its boost clocks, and never stops. Zeus
// measured nothing that far down (its lowest r is about 0.5), so this floor is
// an assumption that only keeps simulated work from stalling.
const MinRelThroughput = 0.1

// Model is one GPU kind's power behaviour. It is a pure value: the simulated
// GPUs (SimNode), the trace simulator and the planner all evaluate the same
// functions on it.
//
// Utilisation is NVML's: the share of time a kernel runs, 0..1. A job's
// average uncapped draw grows linearly from IdleW at 0 to PeakW at 1; its
// draw peaks above that average, so a limit binds only below KneeW =
// Headroom x the uncapped draw. With x = limit / KneeW < 1 the power manager
// holds the average draw at limit / Headroom and the work runs at
// ((x-a)/(1-a))^(1/k) of full speed (CurveRel): the forms fitted to Zeus's
// measurements (see DefaultHeadroom).
type Model struct {
	// Name is what NVML reports as the device name (go-nvml's mock
	// gpus.Config.Name for simulated GPUs).
	Name string
	// IdleW is the draw at utilisation 0.
	IdleW float64
	// PeakW is the uncapped draw at utilisation 1. It is well below
	// MaxLimitW: training jobs measured by Zeus draw a median of about
	// 0.7 x TDP uncapped.
	PeakW float64
	// MinLimitW, MaxLimitW and DefaultLimitW are NVML's power-limit
	// constraints and default limit.
	MinLimitW, MaxLimitW, DefaultLimitW float64
	// A and K shape the throughput curve: see CurveRel.
	A, K float64
	// Headroom is the limit, as a multiple of the average uncapped draw, at
	// which a cap starts to bind (0 counts as 1: the draw sits at the cap).
	Headroom float64
	// RelSpeed is training throughput relative to an H100 SXM at full
	// speed (1 = the same; 0 counts as 1). It only ranks GPU models by work
	// per joule (WorkPerJ) on heterogeneous clusters.
	RelSpeed float64
}

// models holds the calibrated defaults per GPU kind. Limits and idle draw
// come from the calibration README's table (public nvidia-smi readings and
// vendor data). PeakW is 0.7 x the maximum limit: the README's measured median
// uncapped draw of training jobs is about 0.7 x TDP on V100 and A40, and no
// comparable measurement exists for A100/H100/H200, so the same ratio is
// carried over. At the minimum limit this gives r = 200/490 = 0.41 on
// H100/H200 and 100/280 = 0.36 on A100, i.e. a deep cap really hurts.
var models = map[string]Model{
	"h100": {
		Name:  "NVIDIA H100 80GB HBM3", // go-nvml gpus.H100_SXM5_80GB
		IdleW: 72,                      // README: ~72-111 W; the low end is an idle, unloaded SXM5
		PeakW: 0.7 * 700,
		// H100 SXM5: 200..700 W, default 700 W.
		MinLimitW: 200, MaxLimitW: 700, DefaultLimitW: 700,
		A: DefaultCurveA, K: DefaultCurveK, Headroom: DefaultHeadroom, RelSpeed: 1,
	},
	"h200": {
		Name:      "NVIDIA H200 141GB HBM3e", // go-nvml gpus.H200_SXM5_141GB
		IdleW:     75,
		PeakW:     0.7 * 700,
		MinLimitW: 200, MaxLimitW: 700, DefaultLimitW: 700,
		// Same compute as the H100; its extra memory bandwidth helps only
		// memory-bound jobs, so 1.1 is a modest, assumed average.
		A: DefaultCurveA, K: DefaultCurveK, Headroom: DefaultHeadroom, RelSpeed: 1.1,
	},
	"a100": {
		// go-nvml's dgxa100 mock uses gpus.A100_SXM4_40GB, whose name
		// carries a "Mock " prefix; SimNode reports the mock's name.
		Name:      "Mock NVIDIA A100-SXM4-40GB",
		IdleW:     60,
		PeakW:     0.7 * 400,
		MinLimitW: 100, MaxLimitW: 400, DefaultLimitW: 400,
		// Assumed: dense BF16 312 vs 989 TFLOPS is 0.32; end-to-end
		// training runs closer to 0.4-0.5 of an H100, so 0.45.
		A: DefaultCurveA, K: DefaultCurveK, Headroom: DefaultHeadroom, RelSpeed: 0.45,
	},
}

// kindAliases maps accepted spellings to a models key.
var kindAliases = map[string]string{
	"h100": "h100", "dgxh100": "h100",
	"h200": "h200", "dgxh200": "h200",
	"a100": "a100", "dgxa100": "a100",
}

// Kinds lists the GPU kinds ModelFor knows, sorted.
func Kinds() []string {
	ks := make([]string, 0, len(models))
	for k := range models {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func canonicalKind(kind string) (string, error) {
	k, ok := kindAliases[strings.ToLower(strings.TrimSpace(kind))]
	if !ok {
		return "", fmt.Errorf("unknown GPU kind %q: use one of %s (or dgxh100, dgxh200, dgxa100)",
			kind, strings.Join(Kinds(), ", "))
	}
	return k, nil
}

// ModelFor returns the calibrated model for a GPU kind: "h100", "h200" or
// "a100"; the node names "dgxh100", "dgxh200" and "dgxa100" are accepted too.
func ModelFor(kind string) (Model, error) {
	k, err := canonicalKind(kind)
	if err != nil {
		return Model{}, err
	}
	return models[k], nil
}

// ModelByName finds the model for a GPU by the name NVML reports (api.GPU's
// Model): any name containing H100, H200 or A100, case-insensitively, maps
// to that kind's model. PCIe and other variants share the SXM model, which
// is approximate (an A100 PCIe is limited to 250-300 W).
func ModelByName(name string) (Model, error) {
	up := strings.ToUpper(name)
	for _, k := range Kinds() {
		if strings.Contains(up, strings.ToUpper(k)) {
			return models[k], nil
		}
	}
	return Model{}, fmt.Errorf("no power model for GPU %q: known kinds are %s", name, strings.Join(Kinds(), ", "))
}

// Validate reports whether the model's numbers are usable.
func (m Model) Validate() error {
	switch {
	case !(m.IdleW >= 0):
		return fmt.Errorf("power model %q: idle draw %v W must be >= 0", m.Name, m.IdleW)
	case !(m.PeakW > m.IdleW):
		return fmt.Errorf("power model %q: peak draw %v W must exceed idle draw %v W", m.Name, m.PeakW, m.IdleW)
	case !(m.MinLimitW > 0 && m.MinLimitW <= m.MaxLimitW):
		return fmt.Errorf("power model %q: limits %v..%v W must satisfy 0 < min <= max", m.Name, m.MinLimitW, m.MaxLimitW)
	case !(m.DefaultLimitW >= m.MinLimitW && m.DefaultLimitW <= m.MaxLimitW):
		return fmt.Errorf("power model %q: default limit %v W outside %v..%v W", m.Name, m.DefaultLimitW, m.MinLimitW, m.MaxLimitW)
	case !(m.A >= 0 && m.A < 1):
		return fmt.Errorf("power model %q: curve a = %v must be in [0, 1)", m.Name, m.A)
	case !(m.K > 0 && !math.IsInf(m.K, 0)):
		return fmt.Errorf("power model %q: curve k = %v must be > 0", m.Name, m.K)
	case !(m.Headroom == 0 || (m.Headroom >= 1 && m.Headroom <= 2)):
		return fmt.Errorf("power model %q: headroom %v must be in [1, 2] (or 0 for 1)", m.Name, m.Headroom)
	}
	return nil
}

// clampUtil bounds a utilisation to 0..1 (NaN counts as 0).
func clampUtil(u float64) float64 {
	if !(u > 0) {
		return 0
	}
	return math.Min(u, 1)
}

// UncappedW is the draw at utilisation util (0..1) with no binding limit:
// IdleW + util x (PeakW - IdleW). util is clamped to 0..1.
func (m Model) UncappedW(util float64) float64 {
	return m.IdleW + clampUtil(util)*(m.PeakW-m.IdleW)
}

// ClampLimitW bounds a power limit to [MinLimitW, MaxLimitW], as the GPU
// itself would accept it. NaN gives the default limit.
func (m Model) ClampLimitW(w float64) float64 {
	if math.IsNaN(w) {
		return m.DefaultLimitW
	}
	return math.Min(math.Max(w, m.MinLimitW), m.MaxLimitW)
}

// headroom is Headroom, 0 counting as 1.
func (m Model) headroom() float64 {
	if m.Headroom > 0 {
		return m.Headroom
	}
	return 1
}

// KneeW is the limit at utilisation util below which a cap binds:
// Headroom x UncappedW(util).
func (m Model) KneeW(util float64) float64 {
	return m.headroom() * m.UncappedW(util)
}

// DrawW is the average draw at utilisation util under power limit limitW
// (clamped to the GPU's constraints first, as NVML would).
//
// The power manager lowers clocks until the draw's peaks fit under the
// limit, so the average draw is min(uncapped, limit / Headroom). It never
// goes below IdleW: an idle GPU draws its idle power whatever the limit (on
// real GPUs the minimum limit is far above idle draw, so this floor only
// matters for models with unusual numbers).
func (m Model) DrawW(util, limitW float64) float64 {
	d := math.Min(m.UncappedW(util), m.ClampLimitW(limitW)/m.headroom())
	return math.Max(d, m.IdleW)
}

// RelThroughput is how fast work progresses at utilisation util under
// limitW, relative to the same work uncapped: 1 when the limit does not bind
// (limit >= KneeW, or nothing runs), CurveRel(limit/KneeW) below.
func (m Model) RelThroughput(util, limitW float64) float64 {
	if clampUtil(util) == 0 {
		return 1
	}
	return CurveRel(m.ClampLimitW(limitW)/m.KneeW(util), m.A, m.K)
}

// LimitForRelW is the inverse of the curve: the limit at utilisation util
// that keeps a share rel (0..1] of full speed, clamped to the GPU's
// constraints. rel >= 1 gives KneeW.
func (m Model) LimitForRelW(util, rel float64) float64 {
	u := m.KneeW(util)
	if !(rel < 1) {
		return m.ClampLimitW(u)
	}
	rel = math.Max(rel, MinRelThroughput)
	r := m.A + (1-m.A)*math.Pow(rel, m.K)
	return m.ClampLimitW(r * u)
}

// CurveRel is the throughput curve shared by every model and fit: with
// r = limit / the limit where the cap starts to bind (KneeW), relative throughput is 1 for r >= 1 and
// ((r-a)/(1-a))^(1/k) below, never less than MinRelThroughput. Invalid
// parameters (a outside [0,1), k <= 0) or r NaN give MinRelThroughput for
// r < 1.
func CurveRel(r, a, k float64) float64 {
	if r >= 1 {
		return 1
	}
	if !(a >= 0 && a < 1 && k > 0) || !(r > a) {
		return MinRelThroughput
	}
	return math.Max(math.Pow((r-a)/(1-a), 1/k), MinRelThroughput)
}

// curveRaw is CurveRel without the floor: 0 at r <= a. Fits use it so that
// the floor, an assumption, does not bend fitted parameters.
func curveRaw(r, a, k float64) float64 {
	if r >= 1 {
		return 1
	}
	if !(r > a) {
		return 0
	}
	return math.Pow((r-a)/(1-a), 1/k)
}

// EnergySaving is the share of GPU energy per unit of work saved by capping
// at r = limit/KneeW (r < 1) under a curve (a, k): the average draw is r
// times the uncapped one (see DrawW), so it is 1 - r / CurveRel(r). The
// slowdown (extra time) is 1/CurveRel(r) - 1.
func EnergySaving(r, a, k float64) float64 {
	if r >= 1 {
		return 0
	}
	return 1 - r/CurveRel(r, a, k)
}
