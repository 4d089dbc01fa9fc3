package power

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// fakeClock is an injected clock that tests advance by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSim(t *testing.T, kind string) (*SimNode, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	s, err := NewSimNode(kind, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func dev(t *testing.T, s *SimNode, i int) nvml.Device {
	t.Helper()
	d, ret := s.NVML().DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		t.Fatalf("DeviceGetHandleByIndex(%d): %v", i, ret)
	}
	return d
}

func energymJ(t *testing.T, d nvml.Device) uint64 {
	t.Helper()
	e, ret := d.GetTotalEnergyConsumption()
	if ret != nvml.SUCCESS {
		t.Fatal(ret)
	}
	return e
}

func TestNewSimNodeKinds(t *testing.T) {
	for _, kind := range []string{"dgxh100", "dgxh200", "dgxa100", "h100", "h200", "a100"} {
		s, _ := newSim(t, kind)
		gpus, err := ReadGPUs(s.NVML())
		if err != nil {
			t.Fatalf("%s: ReadGPUs: %v", kind, err)
		}
		m, _ := ModelFor(kind)
		if len(gpus) != 8 || s.GPUCount() != 8 {
			t.Fatalf("%s: %d GPUs, want 8", kind, len(gpus))
		}
		for i, g := range gpus {
			if g.Index != i || !strings.HasPrefix(g.UUID, "GPU-") || g.Model != m.Name {
				t.Errorf("%s GPU %d: identity %+v", kind, i, g)
			}
			if g.PowerW != m.IdleW || g.Utilization != 0 || g.LimitW != m.DefaultLimitW ||
				g.MinLimitW != m.MinLimitW || g.MaxLimitW != m.MaxLimitW || g.EnergyJ != 0 {
				t.Errorf("%s GPU %d: fresh telemetry %+v, want idle at the default limit", kind, i, g)
			}
			if g.MemoryTotalMiB <= 0 || g.MemoryUsedMiB <= 0 || g.MemoryUsedMiB >= g.MemoryTotalMiB || g.TemperatureC <= 20 {
				t.Errorf("%s GPU %d: memory/temperature %+v", kind, i, g)
			}
		}
	}
	// Named nodes have stable UUIDs, different per node and GPU.
	a1, _ := NewSimNode("dgxh100", nil, WithNodeName("node-a"))
	a2, _ := NewSimNode("dgxh100", nil, WithNodeName("node-a"))
	b, _ := NewSimNode("dgxh100", nil, WithNodeName("node-b"))
	ga1, _ := ReadGPUs(a1.NVML())
	ga2, _ := ReadGPUs(a2.NVML())
	gb, _ := ReadGPUs(b.NVML())
	seen := map[string]bool{}
	for i := range ga1 {
		if ga1[i].UUID != ga2[i].UUID || len(ga1[i].UUID) != len("GPU-")+36 {
			t.Errorf("GPU %d: UUIDs %q and %q, want the same well-formed one", i, ga1[i].UUID, ga2[i].UUID)
		}
		seen[ga1[i].UUID], seen[gb[i].UUID] = true, true
	}
	if len(seen) != 16 {
		t.Errorf("%d distinct UUIDs over two named nodes, want 16", len(seen))
	}
	if d, ret := a1.NVML().DeviceGetHandleByUUID(ga1[3].UUID); ret != nvml.SUCCESS {
		t.Errorf("DeviceGetHandleByUUID(named) = %v, %v", d, ret)
	}
	if got := a1.NVML().ErrorString(nvml.ERROR_NO_PERMISSION); !strings.Contains(got, "root") {
		t.Errorf("ErrorString = %q", got)
	}
	if _, err := NewSimNode("dgxb200", nil); err == nil || !strings.Contains(err.Error(), "dgxh100") {
		t.Errorf("NewSimNode(dgxb200) error = %v, want one listing the kinds", err)
	}
}

func TestSimEnergyIsIntegralOfPower(t *testing.T) {
	s, clk := newSim(t, "dgxh100")
	m := s.Model()
	d := dev(t, s, 3)

	// 10 s idle, then 10 s at full load uncapped, then 10 s at full load
	// capped at 300 W, then 5 s at half load: the counter (mJ) must equal the
	// sum of draw x time.
	steps := []struct {
		util, limitW float64
		dur          time.Duration
	}{
		{0, 700, 10 * time.Second},
		{1, 700, 10 * time.Second},
		{1, 300, 10 * time.Second},
		{0.5, 300, 5 * time.Second},
	}
	var wantJ float64
	for _, st := range steps {
		s.SetUtilization(3, st.util)
		if _, err := SetLimitW(s.NVML(), 3, st.limitW); err != nil {
			t.Fatal(err)
		}
		before := energymJ(t, d)
		clk.Advance(st.dur)
		wantStepJ := m.DrawW(st.util, st.limitW) * st.dur.Seconds()
		if got := float64(energymJ(t, d)-before) / 1000; !near(got, wantStepJ, 0.002) {
			t.Errorf("util %v limit %v for %v: %v J, want %v J", st.util, st.limitW, st.dur, got, wantStepJ)
		}
		wantJ += wantStepJ
	}
	if got := float64(energymJ(t, d)) / 1000; !near(got, wantJ, 0.002) {
		t.Errorf("total energy %v J, want %v J", got, wantJ)
	}
	// 10 s at util 1 uncapped is PeakW x 10 J exactly.
	if want := m.PeakW * 10; !near(m.DrawW(1, 700)*10, want, 1e-9) {
		t.Errorf("full load uncapped draws %v W, want PeakW %v", m.DrawW(1, 700), m.PeakW)
	}
	// Other GPUs stayed idle all along.
	if got, want := float64(energymJ(t, dev(t, s, 0)))/1000, m.IdleW*35; !near(got, want, 0.002) {
		t.Errorf("idle GPU 0: %v J, want %v J", got, want)
	}
	// A clock that goes backwards adds nothing and takes nothing away.
	before := energymJ(t, d)
	clk.Advance(-time.Minute)
	if got := energymJ(t, d); got != before {
		t.Errorf("clock went back: counter %d -> %d", before, got)
	}
}

func TestSimLimitClampsAndSlows(t *testing.T) {
	s, _ := newSim(t, "dgxh100")
	m := s.Model()
	d := dev(t, s, 0)
	s.SetUtilization(0, 1)
	if got := s.RelThroughput(0); got != 1 {
		t.Errorf("uncapped RelThroughput = %v, want 1", got)
	}
	p, _ := d.GetPowerUsage()
	if got := mWToW(p); got != m.PeakW {
		t.Errorf("uncapped power %v W, want PeakW %v", got, m.PeakW)
	}
	hot, _ := d.GetTemperature(nvml.TEMPERATURE_GPU)
	usedFull, _ := d.GetMemoryInfo()

	enforced, err := SetLimitW(s.NVML(), 0, 350)
	if err != nil || enforced != 350 {
		t.Fatalf("SetLimitW(350) = %v, %v", enforced, err)
	}
	p, _ = d.GetPowerUsage()
	// The cap holds the peaks at 350 W: the average draw sits Headroom below.
	if got, want := mWToW(p), 350/m.Headroom; math.Abs(got-want) > 0.001 {
		t.Errorf("capped power %v W, want the 350 W limit / headroom %v = %v W", got, m.Headroom, want)
	}
	rel := s.RelThroughput(0)
	if want := CurveRel(350/(m.Headroom*m.PeakW), m.A, m.K); rel >= 1 || !near(rel, want, 1e-12) {
		t.Errorf("capped RelThroughput = %v, want %v < 1", rel, want)
	}
	if cool, _ := d.GetTemperature(nvml.TEMPERATURE_GPU); cool >= hot {
		t.Errorf("temperature capped %d C, uncapped %d C: capping should cool", cool, hot)
	}
	if _, ret := d.GetTemperature(nvml.TEMPERATURE_COUNT); ret != nvml.ERROR_INVALID_ARGUMENT {
		t.Errorf("GetTemperature(bad sensor) = %v", ret)
	}
	u, _ := d.GetUtilizationRates()
	if u.Gpu != 100 {
		t.Errorf("utilisation %d%%, want 100", u.Gpu)
	}
	s.SetUtilization(0, 0.2)
	usedLow, _ := d.GetMemoryInfo()
	if usedLow.Used >= usedFull.Used || usedFull.Used+usedFull.Free != usedFull.Total {
		t.Errorf("memory used at util 0.2 %d >= at util 1 %d, or used+free != total", usedLow.Used, usedFull.Used)
	}
	// Other GPUs are untouched, and out-of-range indices are harmless.
	if got := s.RelThroughput(1); got != 1 {
		t.Errorf("GPU 1 RelThroughput = %v", got)
	}
	s.SetUtilization(99, 1)
	if got := s.RelThroughput(-1); got != 0 {
		t.Errorf("RelThroughput(-1) = %v, want 0", got)
	}
}

func TestSimRefusesOutOfRangeLimit(t *testing.T) {
	s, _ := newSim(t, "dgxa100")
	d := dev(t, s, 2)
	for _, mW := range []uint32{99_999, 400_001, 0} {
		if ret := d.SetPowerManagementLimit(mW); ret != nvml.ERROR_INVALID_ARGUMENT {
			t.Errorf("SetPowerManagementLimit(%d mW) = %v, want ERROR_INVALID_ARGUMENT", mW, ret)
		}
	}
	if ret := d.SetPowerManagementLimit(250_000); ret != nvml.SUCCESS {
		t.Errorf("SetPowerManagementLimit(250 W) = %v", ret)
	}
	if l, _ := d.GetPowerManagementLimit(); l != 250_000 {
		t.Errorf("limit after refusals and one success = %d mW, want 250000", l)
	}
	want := []LimitCall{
		{2, 99_999, nvml.ERROR_INVALID_ARGUMENT},
		{2, 400_001, nvml.ERROR_INVALID_ARGUMENT},
		{2, 0, nvml.ERROR_INVALID_ARGUMENT},
		{2, 250_000, nvml.SUCCESS},
	}
	got := s.LimitCalls()
	if len(got) != len(want) {
		t.Fatalf("LimitCalls = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("LimitCalls[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// SetLimitW clamps instead of being refused.
	for _, tt := range []struct{ w, want float64 }{{50, 100}, {1000, 400}, {123.4567, 123.457}} {
		if got, err := SetLimitW(s.NVML(), 2, tt.w); err != nil || got != tt.want {
			t.Errorf("SetLimitW(%v) = %v, %v; want %v", tt.w, got, err, tt.want)
		}
	}
	if _, err := SetLimitW(s.NVML(), 2, math.NaN()); err == nil {
		t.Error("SetLimitW(NaN) succeeded")
	}
	if _, err := SetLimitW(s.NVML(), 8, 300); !errors.Is(err, nvml.ERROR_INVALID_ARGUMENT) {
		t.Errorf("SetLimitW on GPU 8 of 8: %v, want ERROR_INVALID_ARGUMENT", err)
	}
	defs, err := DefaultLimitsW(s.NVML())
	if err != nil || len(defs) != 8 || defs[2] != 400 {
		t.Errorf("DefaultLimitsW = %v, %v; want 8 GPUs at 400 W", defs, err)
	}
}

// TestSimConcurrent drives one node from many goroutines the way the agent
// does (heartbeat reads, job runners, limit setting); run with -race.
func TestSimConcurrent(t *testing.T) {
	s, clk := newSim(t, "dgxh200")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s.SetUtilization(g, float64(i%10)/10)
				if _, err := SetLimitW(s.NVML(), g, 200+float64(i)); err != nil {
					t.Error(err)
					return
				}
				_ = s.RelThroughput(g)
				clk.Advance(time.Millisecond)
			}
		})
	}
	var meter Meter
	wg.Go(func() {
		for range 100 {
			gpus, err := ReadGPUs(s.NVML())
			if err != nil {
				t.Error(err)
				return
			}
			for _, g := range gpus {
				if d := meter.Add(g.UUID, g.EnergyJ); d < 0 {
					t.Errorf("negative delta %v", d)
				}
			}
			_ = s.LimitCalls()
		}
	})
	wg.Wait()
	if n := len(s.LimitCalls()); n != 8*200 {
		t.Errorf("%d limit calls recorded, want %d", n, 8*200)
	}
}

func TestSimNodeSuspended(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := NewSimNode("dgxh100", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := s.NVML().DeviceGetHandleByIndex(0)
	now = now.Add(10 * time.Second) // 10 s idle at 72 W = 720 J
	s.SetSuspended(true)
	now = now.Add(time.Hour)
	if e, _ := dev.GetTotalEnergyConsumption(); e != 720_000 {
		t.Fatalf("energy counter = %d mJ, want 720000: a suspended GPU draws nothing", e)
	}
	if p, _ := dev.GetPowerUsage(); p != 0 || s.RelThroughput(0) != 0 || !s.Suspended() {
		t.Fatalf("suspended: power %d mW, throughput %v", p, s.RelThroughput(0))
	}
	s.SetSuspended(false)
	now = now.Add(time.Second)
	if e, _ := dev.GetTotalEnergyConsumption(); e != 792_000 {
		t.Fatalf("energy counter = %d mJ after resuming, want 792000", e)
	}
}
