package power

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

func h100GPU(node string, idx int, job string) AllocGPU {
	m := models["h100"]
	return AllocGPU{Node: node, Index: idx, MinLimitW: m.MinLimitW, MaxLimitW: m.MaxLimitW, IdleW: m.IdleW, Job: job}
}

func TestOperatingPointW(t *testing.T) {
	// A job drawing 448 W uncapped (H100 at utilisation 0.9), so its cap
	// binds below 1.1 x 448 W, with the default a and k.
	c := ModelCurve(models["h100"], 0.9)
	if !near(c.UncappedW, DefaultHeadroom*(72+0.9*(490-72)), 1e-9) {
		t.Fatalf("uncapped %v", c.UncappedW)
	}
	perf := OperatingPointW(c, 200, 700, api.PolicyPerformance, 0)
	bal := OperatingPointW(c, 200, 700, api.PolicyBalanced, 0)
	bal20 := OperatingPointW(c, 200, 700, api.PolicyBalanced, 0.2)
	eff := OperatingPointW(c, 200, 700, api.PolicyEfficient, 0)
	if perf != 700 {
		t.Errorf("performance = %v, want the maximum 700 W", perf)
	}
	// Balanced: relative throughput 1/1.1 at r = a + (1-a)(1/1.1)^k.
	wantBal := math.Ceil((DefaultCurveA + (1-DefaultCurveA)*math.Pow(1/1.1, DefaultCurveK)) * c.UncappedW)
	if bal != wantBal {
		t.Errorf("balanced = %v, want %v", bal, wantBal)
	}
	if s := 1/CurveRel(bal/c.UncappedW, c.A, c.K) - 1; s > 0.10+1e-9 {
		t.Errorf("balanced slowdown %.4f exceeds 10%%", s)
	}
	if s := 1/CurveRel((bal-1)/c.UncappedW, c.A, c.K) - 1; s <= 0.10 {
		t.Errorf("balanced is not the lowest limit: one watt less still slows only %.4f", s)
	}
	if !(bal20 < bal) {
		t.Errorf("a 20%% allowance (%v W) should give a lower limit than 10%% (%v W)", bal20, bal)
	}
	// Efficient: no limit in range uses less energy per unit of work.
	energy := func(l float64) float64 { return math.Min(l, c.UncappedW) / CurveRel(l/c.UncappedW, c.A, c.K) }
	for l := 200.0; l <= 700; l += 1 {
		if energy(l) < energy(eff)-1e-9 {
			t.Fatalf("efficient = %v W (%.2f), but %v W needs %.2f per unit", eff, energy(eff), l, energy(l))
		}
	}
	if !(eff < bal && bal < perf) {
		t.Errorf("want efficient < balanced < performance, got %v %v %v", eff, bal, perf)
	}
	// Clamped into the constraints.
	if got := OperatingPointW(c, 420, 430, api.PolicyEfficient, 0); got < 420 || got > 430 {
		t.Errorf("efficient within 420..430 = %v", got)
	}
	if got := OperatingPointW(c, 420, 430, api.PolicyBalanced, 0); got != 420 {
		t.Errorf("balanced within 420..430 = %v, want 420 (its point lies below)", got)
	}
}

func TestAllocateNoPressure(t *testing.T) {
	gpus := []AllocGPU{h100GPU("a", 0, "j1"), h100GPU("a", 1, "j1"), h100GPU("a", 2, "j2"), h100GPU("a", 3, "")}
	c := ModelCurve(models["h100"], 0.9)
	in := AllocInput{GPUs: gpus, Jobs: map[string]AllocJob{
		"j1": {Curve: c, Policy: api.PolicyPerformance},
		"j2": {Curve: c, Policy: api.PolicyBalanced},
	}}
	a := Allocate(in)
	bal := OperatingPointW(c, 200, 700, api.PolicyBalanced, 0)
	want := map[int]float64{0: 700, 1: 700, 2: bal, 3: 200}
	for i, w := range want {
		if a.LimitsW["a"][i] != w {
			t.Errorf("GPU %d limit %v, want %v", i, a.LimitsW["a"][i], w)
		}
	}
	// 700 + 700 + bal + the idle GPU's 72 W.
	if !near(a.DrawW, 1400+bal+72, 1e-9) || !a.Fits || a.JobRel["j2"] != 1 {
		t.Errorf("draw %v fits %v rel %v", a.DrawW, a.Fits, a.JobRel)
	}
}

func TestAllocateCutsCheapestFirst(t *testing.T) {
	// j1 runs at performance (700 W) but draws only 448 W: the first 252 W
	// cost it nothing, so a budget 200 W under the demand comes out of j1
	// alone and j2 keeps its operating point.
	c := ModelCurve(models["h100"], 0.9)
	gpus := []AllocGPU{h100GPU("a", 0, "j1"), h100GPU("a", 1, "j2")}
	jobs := map[string]AllocJob{"j1": {Curve: c, Policy: api.PolicyPerformance}, "j2": {Curve: c, Policy: api.PolicyBalanced}}
	free := Allocate(AllocInput{GPUs: gpus, Jobs: jobs})
	a := Allocate(AllocInput{GPUs: gpus, Jobs: jobs, BudgetW: free.DrawW - 200})
	if a.LimitsW["a"][0] != 500 || a.LimitsW["a"][1] != free.LimitsW["a"][1] || a.JobRel["j1"] != 1 {
		t.Errorf("limits %v (rel %v), want j1 at 500 W unharmed and j2 unchanged", a.LimitsW, a.JobRel)
	}
	// A budget far below: both come down, the sum is exactly the budget.
	a = Allocate(AllocInput{GPUs: gpus, Jobs: jobs, BudgetW: 600})
	if !a.Fits || !near(a.DrawW, 600, 1e-6) {
		t.Errorf("draw %v fits %v, want exactly 600 W", a.DrawW, a.Fits)
	}
	// Below the minimum: everything at its minimum, and it says it does not fit.
	a = Allocate(AllocInput{GPUs: gpus, Jobs: jobs, BudgetW: 300})
	if a.Fits || a.LimitsW["a"][0] != 200 || a.LimitsW["a"][1] != 200 {
		t.Errorf("infeasible budget: fits %v limits %v", a.Fits, a.LimitsW)
	}
}

// TestAllocateProperty: over random clusters, jobs, curves, policies and
// budgets, the limits of busy GPUs plus the idle GPUs' draw never exceed the
// budget or any node's cap when a fit is possible, and no limit leaves its
// GPU's constraints.
func TestAllocateProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	kinds := []Model{models["h100"], models["h200"], models["a100"]}
	policies := []string{api.PolicyPerformance, api.PolicyBalanced, api.PolicyEfficient}
	for trial := range 500 {
		in := AllocInput{Jobs: map[string]AllocJob{}, MaxSlowdown: rng.Float64() * 0.3}
		var minSum, maxSum float64
		nodeMin := map[string]float64{}
		nNodes := 1 + rng.IntN(6)
		jobSeq := 0
		for n := range nNodes {
			node := fmt.Sprintf("n%d", n)
			m := kinds[rng.IntN(len(kinds))]
			for i := 0; i < 8; {
				size := 1 + rng.IntN(4)
				job := ""
				if rng.Float64() < 0.7 {
					jobSeq++
					job = fmt.Sprintf("j%d", jobSeq)
					c := ModelCurve(m, rng.Float64())
					c.A, c.K = rng.Float64()*0.8, 0.5+rng.Float64()*6
					in.Jobs[job] = AllocJob{Curve: c, Policy: policies[rng.IntN(3)], Profiling: rng.Float64() < 0.1}
				}
				for k := 0; k < size && i < 8; k++ {
					g := AllocGPU{Node: node, Index: i, MinLimitW: m.MinLimitW, MaxLimitW: m.MaxLimitW, IdleW: m.IdleW, Job: job}
					in.GPUs = append(in.GPUs, g)
					i++
					minSum += m.MinLimitW
					nodeMin[node] += m.MinLimitW
					maxSum += m.MaxLimitW
				}
			}
		}
		in.BudgetW = minSum + rng.Float64()*(maxSum-minSum)
		largestNodeMin := 0.0
		for _, w := range nodeMin {
			largestNodeMin = math.Max(largestNodeMin, w)
		}
		if rng.Float64() < 0.5 {
			in.NodeMaxW = largestNodeMin + rng.Float64()*3000
		}
		a := Allocate(in)
		if !a.Fits {
			t.Fatalf("trial %d: a budget above every GPU's minimum (%v >= %v) did not fit", trial, in.BudgetW, minSum)
		}
		var sum float64
		nodeSum := map[string]float64{}
		for _, g := range in.GPUs {
			l, ok := a.LimitsW[g.Node][g.Index]
			if !ok || l < g.MinLimitW || l > g.MaxLimitW {
				t.Fatalf("trial %d: GPU %s/%d limit %v (set %v) outside %v..%v", trial, g.Node, g.Index, l, ok, g.MinLimitW, g.MaxLimitW)
			}
			d := l
			if g.Job == "" {
				d = g.IdleW
				if l != g.MinLimitW {
					t.Fatalf("trial %d: idle GPU %s/%d at %v W, want its minimum", trial, g.Node, g.Index, l)
				}
			}
			sum += d
			nodeSum[g.Node] += d
		}
		if sum > in.BudgetW+1e-6 {
			t.Fatalf("trial %d: limits + idle draw %v W exceed the budget %v W", trial, sum, in.BudgetW)
		}
		if !near(sum, a.DrawW, 1e-6) {
			t.Fatalf("trial %d: DrawW %v, sum %v", trial, a.DrawW, sum)
		}
		for node, s := range nodeSum {
			if in.NodeMaxW > 0 && s > in.NodeMaxW+1e-6 {
				t.Fatalf("trial %d: node %s at %v W over its cap %v W", trial, node, s, in.NodeMaxW)
			}
		}
		for id, rel := range a.JobRel {
			if rel > 1+1e-9 || a.JobLimitW[id] > a.JobTargetW[id]+1e-9 {
				t.Fatalf("trial %d: job %s above its operating point", trial, id)
			}
		}
	}
}

// TestFitLimitCurveFromProfile: what the profiler measures (a few limits in
// 25 W steps from below the uncapped draw to the minimum limit, throughput
// with 2% noise) recovers the
// known curve well enough to pick the same operating points.
func TestFitLimitCurveFromProfile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	want := JobCurve{UncappedW: 448, MaxThroughput: 950, A: 0.37, K: 3.5}
	for trial := range 5 {
		s := []LimitSample{{LimitW: 700, Throughput: want.MaxThroughput * (1 + 0.02*rng.NormFloat64()), PowerW: 448}}
		for l := 425.0; l >= 200; l -= 25 { // down to the minimum limit, as the profiler steps
			s = append(s, LimitSample{LimitW: l, Throughput: want.ThroughputAt(l) * (1 + 0.02*rng.NormFloat64()), PowerW: l})
		}
		got, err := FitLimitCurve(s, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []float64{300, 350, 400} {
			if g, w := got.ThroughputAt(l)/got.MaxThroughput, want.ThroughputAt(l)/want.MaxThroughput; math.Abs(g-w) > 0.03 {
				t.Errorf("trial %d: fitted relative throughput at %v W = %.3f, want %.3f (fit %+v)", trial, l, g, w, got)
			}
		}
		if g, w := OperatingPointW(got, 200, 700, api.PolicyBalanced, 0), OperatingPointW(want, 200, 700, api.PolicyBalanced, 0); math.Abs(g-w) > 15 {
			t.Errorf("trial %d: balanced point from the fit %v W, from the true curve %v W", trial, g, w)
		}
		// Energy per unit of work is flat near its minimum, so judge the
		// efficient point by what it costs on the true curve.
		perUnit := func(l float64) float64 { return math.Min(l, want.UncappedW) / want.ThroughputAt(l) }
		g, w := OperatingPointW(got, 200, 700, api.PolicyEfficient, 0), OperatingPointW(want, 200, 700, api.PolicyEfficient, 0)
		if perUnit(g) > 1.02*perUnit(w) {
			t.Errorf("trial %d: efficient point from the fit %v W costs %.4f J/unit, the true optimum %v W %.4f", trial, g, perUnit(g), w, perUnit(w))
		}
	}
}

func TestCompileBudget(t *testing.T) {
	ok := api.PowerBudget{DefaultW: 600000, NodeMaxW: 6000, Windows: []api.BudgetWindow{
		{Start: "CRON_TZ=Europe/Berlin 0 8 * * 1-5", End: "CRON_TZ=Europe/Berlin 0 20 * * 1-5", Watts: 400000}}}
	p, err := CompileBudget(ok)
	if err != nil {
		t.Fatal(err)
	}
	// Monday 2024-01-08 12:00 UTC is 13:00 in Berlin: in the window.
	if w, win := p.WattsAt(utcTime("2024-01-08T12:00:00Z")); w != 400000 || win != 0 {
		t.Errorf("weekday noon: %v W window %d", w, win)
	}
	if w, win := p.WattsAt(utcTime("2024-01-08T20:00:00Z")); w != 600000 || win != -1 {
		t.Errorf("weekday 21:00 Berlin: %v W window %d", w, win)
	}
	for _, c := range []struct {
		b    api.PowerBudget
		says string
	}{
		{api.PowerBudget{DefaultW: -1}, "default_w"},
		{api.PowerBudget{DefaultW: math.NaN()}, "default_w"},
		{api.PowerBudget{NodeMaxW: -5}, "node_max_w"},
		{api.PowerBudget{Windows: []api.BudgetWindow{{Start: "0 8 * * *", End: "0 9 * * *", Watts: 0}}}, "windows[0].watts"},
		{api.PowerBudget{Windows: []api.BudgetWindow{{Start: "CRON_TZ=UTC", End: "0 9 * * *", Watts: 5}}}, "windows[0].start"},
		{api.PowerBudget{Windows: []api.BudgetWindow{{Start: "0 8 * * *", End: "0 25 * * *", Watts: 5}}}, "windows[0].end"},
	} {
		if _, err := CompileBudget(c.b); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: err %v, want one naming %s", c.b, err, c.says)
		}
	}
	// 16 H100s at 200 W: 3200 W; one node of 8: 1600 W.
	if err := CheckBudgetFloor(p, 3200, "every GPU at its minimum power limit", 1600, "a"); err != nil {
		t.Errorf("floor: %v", err)
	}
	low, _ := CompileBudget(api.PowerBudget{DefaultW: 3000})
	if err := CheckBudgetFloor(low, 3200, "every GPU at its minimum power limit", 1600, "a"); err == nil || !strings.Contains(err.Error(), "at least 3200 W") {
		t.Errorf("3000 W for 3200 W of minimum draw: %v", err)
	}
	lowNode, _ := CompileBudget(api.PowerBudget{DefaultW: 5000, NodeMaxW: 1000})
	if err := CheckBudgetFloor(lowNode, 3200, "every GPU at its minimum power limit", 1600, "a"); err == nil || !strings.Contains(err.Error(), "node a") {
		t.Errorf("node cap 1000 W for 1600 W: %v", err)
	}
}

func utcTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// BenchmarkAllocate: 100 DGX-H100 nodes, one job per GPU pair, a budget 30%
// under their operating points (the water-filling works hard).
func BenchmarkAllocate(b *testing.B) {
	c := ModelCurve(models["h100"], 0.9)
	in := AllocInput{Jobs: map[string]AllocJob{}}
	for n := range 100 {
		for i := range 8 {
			job := fmt.Sprintf("j%d-%d", n, i/2)
			in.GPUs = append(in.GPUs, h100GPU(fmt.Sprintf("n%d", n), i, job))
			in.Jobs[job] = AllocJob{Curve: c, Policy: []string{api.PolicyPerformance, api.PolicyBalanced}[i/2%2]}
		}
	}
	free := Allocate(in)
	in.BudgetW = 0.7 * free.DrawW
	for b.Loop() {
		if a := Allocate(in); !a.Fits {
			b.Fatal("does not fit")
		}
	}
}

func TestAllocateProfilingComesDownLast(t *testing.T) {
	c := ModelCurve(models["h100"], 0.9)
	gpus := []AllocGPU{h100GPU("a", 0, "prof"), h100GPU("a", 1, "run")}
	jobs := map[string]AllocJob{"prof": {Curve: c, Policy: api.PolicyBalanced, Profiling: true}, "run": {Curve: c, Policy: api.PolicyBalanced}}
	// 700 W for the profiling job, the balanced point for the other; 300 W less.
	free := Allocate(AllocInput{GPUs: gpus, Jobs: jobs})
	a := Allocate(AllocInput{GPUs: gpus, Jobs: jobs, BudgetW: free.DrawW - 100})
	if a.LimitsW["a"][0] != 700 || !near(a.LimitsW["a"][1], free.LimitsW["a"][1]-100, 1e-6) {
		t.Errorf("limits %v: the profiling job must keep 700 W while the other can give", a.LimitsW)
	}
	// Only once the other is at its minimum does the profiling job give.
	a = Allocate(AllocInput{GPUs: gpus, Jobs: jobs, BudgetW: 800})
	if a.LimitsW["a"][1] != 200 || a.LimitsW["a"][0] != 600 {
		t.Errorf("limits %v, want 600 W (profiling) and 200 W", a.LimitsW)
	}
}
