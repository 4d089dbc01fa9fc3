package power

import (
	"testing"
	"time"
)

// TestProfilerOnSimulatedGPU drives the profiler against a simulated H100 at
// utilisation 0.9 (uncapped draw 448 W) with a virtual clock, and fits what
// it measured: the fitted curve is the model's.
func TestProfilerOnSimulatedGPU(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim, err := NewSimNode("dgxh100", func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	sim.SetUtilization(0, 0.9)
	lib := sim.NVML()
	s := ProfileSettings{StepW: 25, MaxSteps: 6, Warmup: 2 * time.Second, Measure: 4 * time.Second}
	p, err := NewProfiler(s, 200, 700)
	if err != nil {
		t.Fatal(err)
	}
	var work, set float64
	var states []ProfileState
	tick := 500 * time.Millisecond
	for i := 0; p.State() != ProfileDone; i++ {
		if i > 1000 {
			t.Fatal("profiler never finished")
		}
		d, _ := lib.DeviceGetHandleByIndex(0)
		mW, _ := d.GetPowerUsage()
		if l := p.Observe(clock, work, float64(mW)/1000); l > 0 && l != set {
			set = l
			if _, err := SetLimitW(lib, 0, l); err != nil {
				t.Fatal(err)
			}
		}
		if len(states) == 0 || states[len(states)-1] != p.State() {
			states = append(states, p.State())
		}
		work += tick.Seconds() * 100 * sim.RelThroughput(0) // 100 units/s uncapped
		clock = clock.Add(tick)
	}
	if states[0] != ProfileWarmup || states[1] != ProfileProfiling || states[len(states)-1] != ProfileDone {
		t.Errorf("states %v: want warmup, profiling, ..., done", states)
	}
	var limits []float64
	for _, c := range sim.LimitCalls() {
		limits = append(limits, float64(c.LimitmW)/1000)
	}
	// The ceiling, then 25 W steps from the first one below 448 W: six of them.
	want := []float64{700, 425, 400, 375, 350, 325, 300}
	if len(limits) != len(want) {
		t.Fatalf("limits set %v, want %v", limits, want)
	}
	for i := range want {
		if limits[i] != want[i] {
			t.Fatalf("limits set %v, want %v", limits, want)
		}
	}
	samples := p.Samples()
	if len(samples) != 7 || !near(samples[0].PowerW, 448.2, 0.5) || !near(samples[0].Throughput, 100, 1) {
		t.Fatalf("samples %+v", samples)
	}
	c, err := FitLimitCurve(samples, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := sim.Model()
	for _, l := range []float64{250, 300, 350, 400} {
		if got, want := c.ThroughputAt(l)/c.MaxThroughput, m.RelThroughput(0.9, l); !near(got, want, 0.02) {
			t.Errorf("fitted relative throughput at %v W = %.3f, the model's %.3f (fit %+v)", l, got, want, c)
		}
	}
}

func TestProfilerSettings(t *testing.T) {
	bad := []ProfileSettings{
		{StepW: 0, MaxSteps: 5, Measure: time.Second},
		{StepW: 25, MaxSteps: 1, Measure: time.Second},
		{StepW: 25, MaxSteps: 5, Measure: 0},
	}
	for _, s := range bad {
		if _, err := NewProfiler(s, 200, 700); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if _, err := NewProfiler(DefaultProfileSettings(), 300, 200); err == nil {
		t.Error("ceiling below the minimum accepted")
	}
	// A ceiling at the minimum: one sample, then done.
	p, _ := NewProfiler(ProfileSettings{StepW: 25, MaxSteps: 5, Measure: time.Second}, 200, 200)
	t0 := time.Unix(0, 0)
	for i := range 10 {
		p.Observe(t0.Add(time.Duration(i)*time.Second), float64(i), 200)
	}
	if p.State() != ProfileDone || len(p.Samples()) != 1 {
		t.Errorf("state %v samples %v", p.State(), p.Samples())
	}
}
