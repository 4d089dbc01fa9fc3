package power

import (
	"math"
	"strings"
	"testing"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestModelFor(t *testing.T) {
	tests := []struct {
		kind, name string
		minW, maxW float64
	}{
		{"h100", "NVIDIA H100 80GB HBM3", 200, 700},
		{"dgxh100", "NVIDIA H100 80GB HBM3", 200, 700},
		{" H100 ", "NVIDIA H100 80GB HBM3", 200, 700},
		{"h200", "NVIDIA H200 141GB HBM3e", 200, 700},
		{"dgxh200", "NVIDIA H200 141GB HBM3e", 200, 700},
		{"a100", "Mock NVIDIA A100-SXM4-40GB", 100, 400},
		{"DGXA100", "Mock NVIDIA A100-SXM4-40GB", 100, 400},
	}
	for _, tt := range tests {
		m, err := ModelFor(tt.kind)
		if err != nil {
			t.Fatalf("ModelFor(%q): %v", tt.kind, err)
		}
		if m.Name != tt.name || m.MinLimitW != tt.minW || m.MaxLimitW != tt.maxW {
			t.Errorf("ModelFor(%q) = %+v, want name %q limits %v..%v", tt.kind, m, tt.name, tt.minW, tt.maxW)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("built-in model %q: %v", tt.kind, err)
		}
	}
	for _, bad := range []string{"", "v100", "dgxb200", "h100x"} {
		_, err := ModelFor(bad)
		if err == nil || !strings.Contains(err.Error(), "a100, h100, h200") {
			t.Errorf("ModelFor(%q) error = %v, want one listing the kinds", bad, err)
		}
	}
}

func TestModelByName(t *testing.T) {
	tests := []struct{ name, kind string }{
		{"NVIDIA H100 80GB HBM3", "h100"},
		{"Mock NVIDIA A100-SXM4-40GB", "a100"},
		{"NVIDIA A100-PCIE-80GB", "a100"},
		{"NVIDIA H200 141GB HBM3e", "h200"},
		{"nvidia h200", "h200"},
		{"Tesla V100-SXM2-16GB", ""},
	}
	for _, tt := range tests {
		m, err := ModelByName(tt.name)
		if tt.kind == "" {
			if err == nil {
				t.Errorf("ModelByName(%q) = %v, want an error", tt.name, m.Name)
			}
			continue
		}
		want, _ := ModelFor(tt.kind)
		if err != nil || m != want {
			t.Errorf("ModelByName(%q) = %v, %v; want the %s model", tt.name, m.Name, err, tt.kind)
		}
	}
	// Every simulated node's GPUs map back to their own model.
	for _, kind := range []string{"dgxh100", "dgxh200", "dgxa100"} {
		s, err := NewSimNode(kind, nil)
		if err != nil {
			t.Fatal(err)
		}
		gpus, _ := ReadGPUs(s.NVML())
		if m, err := ModelByName(gpus[0].Model); err != nil || m != s.Model() {
			t.Errorf("%s: ModelByName(%q) = %v, %v", kind, gpus[0].Model, m.Name, err)
		}
	}
}

func TestModelValidate(t *testing.T) {
	good, _ := ModelFor("h100")
	tests := []struct {
		name   string
		change func(*Model)
	}{
		{"peak below idle", func(m *Model) { m.PeakW = m.IdleW }},
		{"negative idle", func(m *Model) { m.IdleW = -1 }},
		{"min above max", func(m *Model) { m.MinLimitW = 800 }},
		{"default outside", func(m *Model) { m.DefaultLimitW = 100 }},
		{"a = 1", func(m *Model) { m.A = 1 }},
		{"k = 0", func(m *Model) { m.K = 0 }},
		{"NaN peak", func(m *Model) { m.PeakW = math.NaN() }},
	}
	for _, tt := range tests {
		m := good
		tt.change(&m)
		if m.Validate() == nil {
			t.Errorf("%s: Validate accepted %+v", tt.name, m)
		}
	}
}

// testModel has round numbers: idle 100 W, peak 500 W, limits 200..700 W,
// a = 0.5, k = 2 so that rel(r) = sqrt((r - 0.5) / 0.5).
var testModel = Model{Name: "test", IdleW: 100, PeakW: 500, MinLimitW: 200, MaxLimitW: 700, DefaultLimitW: 700, A: 0.5, K: 2}

func TestUncappedW(t *testing.T) {
	tests := []struct{ util, want float64 }{
		{0, 100}, {0.5, 300}, {1, 500}, {-1, 100}, {2, 500}, {math.NaN(), 100},
	}
	for _, tt := range tests {
		if got := testModel.UncappedW(tt.util); got != tt.want {
			t.Errorf("UncappedW(%v) = %v, want %v", tt.util, got, tt.want)
		}
	}
}

func TestClampLimitW(t *testing.T) {
	tests := []struct{ w, want float64 }{
		{100, 200}, {200, 200}, {450, 450}, {700, 700}, {900, 700},
		{math.Inf(1), 700}, {math.Inf(-1), 200}, {math.NaN(), 700},
	}
	for _, tt := range tests {
		if got := testModel.ClampLimitW(tt.w); got != tt.want {
			t.Errorf("ClampLimitW(%v) = %v, want %v", tt.w, got, tt.want)
		}
	}
}

func TestDrawW(t *testing.T) {
	low := testModel
	low.MinLimitW = 50 // a limit below idle draw, to exercise the floor
	tests := []struct {
		name        string
		m           Model
		util, limit float64
		want        float64
	}{
		{"idle, no cap", testModel, 0, 700, 100},
		{"full, no cap", testModel, 1, 700, 500},
		{"full, cap binds", testModel, 1, 400, 400},
		{"half, cap above draw", testModel, 0.5, 400, 300},
		{"cap below min is clamped to min", testModel, 1, 10, 200},
		{"cap above max is clamped to max", testModel, 1, 9000, 500},
		{"never below idle", low, 1, 60, 100},
	}
	for _, tt := range tests {
		if got := tt.m.DrawW(tt.util, tt.limit); got != tt.want {
			t.Errorf("%s: DrawW(%v, %v) = %v, want %v", tt.name, tt.util, tt.limit, got, tt.want)
		}
	}
}

func TestRelThroughput(t *testing.T) {
	tests := []struct {
		name        string
		util, limit float64
		want        float64
	}{
		{"uncapped", 1, 700, 1},
		{"cap equals draw", 1, 500, 1},
		{"idle GPU is never slowed", 0, 200, 1},
		// r = 400/500 = 0.8: sqrt((0.8-0.5)/0.5) = sqrt(0.6)
		{"r = 0.8", 1, 400, math.Sqrt(0.6)},
		// r = 300/500 = 0.6: sqrt(0.2)
		{"r = 0.6", 1, 300, math.Sqrt(0.2)},
		// util 0.5: uncapped 300 W, r = 200/300
		{"half load at min limit", 0.5, 200, math.Sqrt((200.0/300 - 0.5) / 0.5)},
		// r = 200/500 = 0.4 < a: the floor
		{"below a hits the floor", 1, 200, MinRelThroughput},
	}
	for _, tt := range tests {
		if got := testModel.RelThroughput(tt.util, tt.limit); !near(got, tt.want, 1e-12) {
			t.Errorf("%s: RelThroughput(%v, %v) = %v, want %v", tt.name, tt.util, tt.limit, got, tt.want)
		}
	}
}

func TestCurveRel(t *testing.T) {
	tests := []struct{ r, a, k, want float64 }{
		{1, 0.37, 3.5, 1},
		{1.5, 0.37, 3.5, 1},
		{0.37 + 0.63*math.Pow(0.9, 3.5), 0.37, 3.5, 0.9}, // the inverse of 0.9
		{0.37, 0.37, 3.5, MinRelThroughput},
		{0.2, 0.37, 3.5, MinRelThroughput},
		{0.5, 1.2, 3.5, MinRelThroughput}, // invalid a
		{0.5, 0.3, 0, MinRelThroughput},   // invalid k
		{math.NaN(), 0.3, 3, MinRelThroughput},
	}
	for _, tt := range tests {
		if got := CurveRel(tt.r, tt.a, tt.k); !near(got, tt.want, 1e-12) {
			t.Errorf("CurveRel(%v, %v, %v) = %v, want %v", tt.r, tt.a, tt.k, got, tt.want)
		}
	}
	// Monotone non-decreasing in r.
	prev := 0.0
	for r := 0.0; r <= 1.2; r += 0.01 {
		got := CurveRel(r, DefaultCurveA, DefaultCurveK)
		if got < prev {
			t.Fatalf("CurveRel not monotone at r=%v: %v < %v", r, got, prev)
		}
		prev = got
	}
}

func TestLimitForRelW(t *testing.T) {
	for _, kind := range Kinds() {
		m, _ := ModelFor(kind)
		for _, rel := range []float64{0.7, 0.8, 0.9, 0.95} {
			l := m.LimitForRelW(1, rel)
			if got := m.RelThroughput(1, l); l > m.MinLimitW && !near(got, rel, 1e-9) {
				t.Errorf("%s: RelThroughput(1, LimitForRelW(1, %v) = %v) = %v", kind, rel, l, got)
			}
		}
		if got, want := m.LimitForRelW(1, 1), m.ClampLimitW(m.Headroom*m.PeakW); got != want {
			t.Errorf("%s: LimitForRelW(1, 1) = %v, want the knee (headroom x uncapped draw) %v", kind, got, want)
		}
		// Below the floor: the lowest limit that still gives the floor.
		if l := m.LimitForRelW(1, 0.01); l != m.MinLimitW && !near(m.RelThroughput(1, l), MinRelThroughput, 1e-9) {
			t.Errorf("%s: LimitForRelW(1, 0.01) = %v, want the minimum limit %v or the floor's limit", kind, l, m.MinLimitW)
		}
	}
}

func TestEnergySaving(t *testing.T) {
	// a = 0.5, k = 2, r = 0.8: rel = sqrt(0.6); energy per work = r / rel.
	if got, want := EnergySaving(0.8, 0.5, 2), 1-0.8/math.Sqrt(0.6); !near(got, want, 1e-12) {
		t.Errorf("EnergySaving(0.8, 0.5, 2) = %v, want %v", got, want)
	}
	if got := EnergySaving(1.2, 0.5, 2); got != 0 {
		t.Errorf("EnergySaving above the uncapped draw = %v, want 0", got)
	}
}
