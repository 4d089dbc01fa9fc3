package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// fastProfile profiles in about 3 s: the ceiling, then three 50 W steps.
func fastProfile(c *Config) {
	c.Profile = power.ProfileSettings{StepW: 50, MaxSteps: 3, Warmup: 150 * time.Millisecond, Measure: 500 * time.Millisecond}
	c.ProfileTick = 25 * time.Millisecond
}

func enforcedW(t *testing.T, sim *power.SimNode, idx int) float64 {
	t.Helper()
	gpus, err := power.ReadGPUs(sim.NVML())
	if err != nil {
		t.Fatal(err)
	}
	return gpus[idx].LimitW
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProfileFitBudgetChange: a new job's GPUs step through limits (the
// mock records every SetPowerManagementLimit), schedulerd fits and keeps the
// curve and moves the job to its balanced point; a budget then pulls the
// limits down and the measured draw under it.
func TestProfileFitBudgetChange(t *testing.T) {
	f := newFixture(t, fastProfile)
	ctx := context.Background()
	id := f.submit("name: prof\nuser: u\ngpus: 8\nenergy_policy: balanced\nworkload: {synthetic: {duration: 1h, utilization: 0.9}}")
	var j api.Job
	waitFor(t, 30*time.Second, "no power curve", func() bool {
		j, _ = f.c.Job(ctx, id)
		return j.PowerCurve != nil || j.ProfileError != ""
	})
	if j.PowerCurve == nil {
		t.Fatalf("profile failed: %s", j.ProfileError)
	}
	// The profile: the 700 W ceiling, then 400, 350, 300 W (50 W steps
	// below the 448 W uncapped draw), on every GPU of the job.
	seen := map[uint32]int{}
	for _, c := range f.sim.LimitCalls() {
		if c.Ret != nvml.SUCCESS {
			t.Errorf("refused call %+v", c)
		}
		seen[c.LimitmW]++
	}
	for _, mW := range []uint32{400000, 350000, 300000} {
		if seen[mW] != 8 {
			t.Errorf("SetPowerManagementLimit(%d mW) called %d times, want once per GPU (calls %v)", mW, seen[mW], seen)
		}
	}
	m := f.sim.Model()
	pc := j.PowerCurve
	curve := power.JobCurve{UncappedW: pc.UncappedW, MaxThroughput: pc.MaxThroughput, A: pc.A, K: pc.K}
	if pc.Samples != 4 || pc.From != id || !near(pc.UncappedW, m.KneeW(0.9), 2) {
		t.Errorf("curve %+v", pc)
	}
	for _, l := range []float64{300, 350, 400} {
		if got, want := curve.ThroughputAt(l)/curve.MaxThroughput, m.RelThroughput(0.9, l); !near(got, want, 0.03) {
			t.Errorf("fitted relative throughput at %v W = %.3f, the GPU's %.3f", l, got, want)
		}
	}
	// After profiling the GPUs run at the balanced point of the fitted curve.
	bal := power.OperatingPointW(curve, 200, 700, api.PolicyBalanced, 0)
	waitFor(t, 5*time.Second, "GPUs not at the balanced point", func() bool {
		j, _ = f.c.Job(ctx, id)
		return j.PowerLimitW == bal && enforcedW(t, f.sim, j.GPUIndices[0]) == bal
	})
	if s := 1/m.RelThroughput(0.9, bal) - 1; s > 0.11 {
		t.Errorf("balanced limit %v W slows the job by %.1f%%", bal, 100*s)
	}

	// A budget of 2000 W for 8 busy GPUs: 250 W each.
	if _, err := f.c.SetPowerBudget(ctx, api.PowerBudget{DefaultW: 2000}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "measured draw not under the 2000 W budget", func() bool {
		st, _ := f.c.PowerBudget(ctx)
		return st.MeasuredW <= 2000 && st.MeasuredW > 0
	})
	for i := range 8 {
		if l := enforcedW(t, f.sim, i); l != 250 {
			t.Errorf("GPU %d enforces %v W, want 250", i, l)
		}
	}
	calls := f.sim.LimitCalls()
	if last := calls[len(calls)-1]; last.LimitmW != 250000 {
		t.Errorf("last SetPowerManagementLimit %+v, want 250 W", last)
	}
}

func TestDefaultLimitsRestoredOnCleanExit(t *testing.T) {
	f := newFixture(t)
	// Idle GPUs go to their minimum limit.
	waitFor(t, 5*time.Second, "idle GPUs not at 200 W", func() bool { return enforcedW(t, f.sim, 3) == 200 })
	f.stop()
	f.stop = func() {}
	for i := range 8 {
		if l := enforcedW(t, f.sim, i); l != 700 {
			t.Errorf("after a clean exit GPU %d is at %v W, want its default 700 W", i, l)
		}
	}
}

func TestRefusedLimitIsReported(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Sim.RefuseLimits(nvml.ERROR_NO_PERMISSION) })
	ctx := context.Background()
	var nodes []api.Node
	waitFor(t, 5*time.Second, "no limit error reported", func() bool {
		nodes, _ = f.c.Nodes(ctx)
		return len(nodes) == 1 && len(nodes[0].GPUs) == 8 && nodes[0].GPUs[0].LimitError != ""
	})
	msg := nodes[0].GPUs[0].LimitError
	if !strings.Contains(msg, "set power limit of GPU 0 to 200.0 W") || !strings.Contains(msg, "needs root") {
		t.Errorf("limit error %q should name the GPU, the limit and that it needs root", msg)
	}
	// Still refused: nothing changed on the GPU.
	if l := enforcedW(t, f.sim, 0); l != 700 {
		t.Errorf("GPU 0 at %v W", l)
	}
}

func near(got, want, tol float64) bool { return got >= want-tol && got <= want+tol }

func TestTrainedSamplesCarriesForward(t *testing.T) {
	tk := &task{spec: api.JobSpec{Workload: api.Workload{Train: &api.TrainSpec{BatchSize: 32}}}}
	if _, ok := tk.trainedSamples(time.Now()); ok {
		t.Fatal("a count before the first progress report")
	}
	tk.setProgress(api.Progress{Step: 10, SamplesPerS: 100})
	at := tk.progressAt
	// 10 steps x 32 samples, then 2 s at 100 samples/s.
	if got, ok := tk.trainedSamples(at.Add(2 * time.Second)); !ok || got != 520 {
		t.Errorf("samples = %v (%v), want 520", got, ok)
	}
}
