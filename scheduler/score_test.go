package scheduler

import (
	"math"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

func TestBinPackScore(t *testing.T) {
	tests := []struct {
		free, need int
		want       float64
	}{
		{8, 8, 1},       // fills the node exactly: 1/(1+0)
		{8, 1, 1.0 / 8}, // leaves 7 free: 1/(1+7)
		{2, 1, 1.0 / 2}, // leaves 1 free
		{4, 0, 1.0 / 5}, // a CPU-only job leaves all 4
		{1, 2, 0},       // does not fit
	}
	for _, tt := range tests {
		if got := BinPackScore(ScoreInput{Free: tt.free, Need: tt.need}); got != tt.want {
			t.Errorf("BinPackScore(free %d, need %d) = %v, want %v", tt.free, tt.need, got, tt.want)
		}
	}
}

func TestFirstFitScore(t *testing.T) {
	tests := []struct {
		ord, nodes int
		want       float64
	}{
		{0, 4, 1}, {1, 4, 0.75}, {3, 4, 0.25}, {0, 0, 0},
	}
	for _, tt := range tests {
		if got := FirstFitScore(ScoreInput{Ord: tt.ord, Nodes: tt.nodes}); got != tt.want {
			t.Errorf("FirstFitScore(%d of %d) = %v, want %v", tt.ord, tt.nodes, got, tt.want)
		}
	}
}

func TestMarginalEnergyJ(t *testing.T) {
	h100, _ := power.ModelFor("h100") // idle 72 W, uncapped at full load 490 W
	a100, _ := power.ModelFor("a100") // idle 60 W, 280 W, RelSpeed 0.45
	np := power.NodePower{IdleW: 1500, LoadedW: 3000, SuspendedW: 50, WakeDelay: 5 * time.Minute}
	hour := time.Hour
	tests := []struct {
		name string
		in   ScoreInput
		want float64
	}{
		// 1 GPU for 1 h on a half-busy awake node: (490-72) W on the GPU plus
		// the baseline's rise of 1500/8 W = 187.5 W, for 3600 s.
		{"awake, in use", ScoreInput{Need: 1, Free: 4, Total: 8, Power: api.PowerOn, GPU: h100, NodePower: np, Estimate: hour},
			(418 + 187.5) * 3600},
		// The same on a suspended node adds the wake-up (1500 + 8x72 W for
		// 300 s) and the node's whole idle draw above suspended
		// (1500 + 576 - 50 W) for the hour.
		{"suspended", ScoreInput{Need: 1, Free: 8, Total: 8, Power: api.PowerSuspended, GPU: h100, NodePower: np, Estimate: hour},
			(418+187.5)*3600 + 2076*300 + 2026*3600},
		// An awake empty node that would be suspended after 15 min pays its
		// idle draw for the other 45 min.
		{"awake, empty", ScoreInput{Need: 1, Free: 8, Total: 8, Power: api.PowerOn, GPU: h100, NodePower: np, Estimate: hour, IdleTimeout: 15 * time.Minute},
			(418+187.5)*3600 + 2026*2700},
		// An A100 runs 1/0.45 as long at (280-60) W.
		{"slower model", ScoreInput{Need: 1, Free: 4, Total: 8, Power: api.PowerOn, GPU: a100, NodePower: np, Estimate: hour},
			(220 + 187.5) * 3600 / 0.45},
	}
	for _, tt := range tests {
		if got := MarginalEnergyJ(tt.in); math.Abs(got-tt.want) > 1e-6*tt.want {
			t.Errorf("%s: MarginalEnergyJ = %.1f, want %.1f", tt.name, got, tt.want)
		}
	}
}

func TestEnergyScore(t *testing.T) {
	h100, _ := power.ModelFor("h100")
	np := power.DefaultNodePower
	on := ScoreInput{Need: 1, Free: 4, Total: 8, Power: api.PowerOn, GPU: h100, NodePower: np, Estimate: time.Hour}
	ideal := MarginalEnergyJ(on)
	on.IdealJ = ideal
	asleep := on
	asleep.Power, asleep.Free = api.PowerSuspended, 8
	if got := EnergyScore(on); got != 1 {
		t.Errorf("the cheapest node scores %v, want 1", got)
	}
	want := ideal / MarginalEnergyJ(asleep)
	if got := EnergyScore(asleep); got != want || got >= 0.5 {
		t.Errorf("a suspended node scores %v, want %v (well below an awake one)", got, want)
	}
	if got := EnergyScore(ScoreInput{}); got != 1 {
		t.Errorf("no energy information must not penalise: got %v", got)
	}
}
