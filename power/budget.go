package power

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power/window"
)

// BudgetPlan is a validated power budget with its windows compiled. It is
// immutable and safe for concurrent use. A nil *BudgetPlan means no budget.
type BudgetPlan struct {
	b       api.PowerBudget
	windows *window.Set
}

// BudgetError names the budget field that is wrong and says how to fix it.
type BudgetError struct {
	Field string
	Msg   string
}

func (e *BudgetError) Error() string { return "power budget " + e.Field + ": " + e.Msg }

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// CompileBudget checks a budget's fields and parses its windows. It does not
// know the GPUs: CheckBudgetFloor refuses a budget they cannot meet.
func CompileBudget(b api.PowerBudget) (*BudgetPlan, error) {
	bad := func(field, format string, a ...any) error {
		return &BudgetError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	switch {
	case !finite(b.DefaultW) || b.DefaultW < 0:
		return nil, bad("default_w", "%v: give the cluster's GPU budget in watts (e.g. 400000 for 400 kW), or 0 for none outside the windows", b.DefaultW)
	case !finite(b.NodeMaxW) || b.NodeMaxW < 0:
		return nil, bad("node_max_w", "%v: give the most one node's GPUs may draw in watts, or 0 for no per-node cap", b.NodeMaxW)
	case len(b.Windows) > 64:
		return nil, bad("windows", "%d windows; at most 64", len(b.Windows))
	}
	pairs := make([]window.Pair, len(b.Windows))
	for i, w := range b.Windows {
		if !finite(w.Watts) || w.Watts <= 0 {
			return nil, bad(fmt.Sprintf("windows[%d].watts", i), "%v: give the budget in force during the window in watts, > 0", w.Watts)
		}
		pairs[i] = window.Pair{Start: w.Start, End: w.End}
	}
	set, err := window.Compile(pairs)
	if err != nil {
		return nil, &BudgetError{Field: "windows", Msg: err.Error()}
	}
	b.Windows = slices.Clone(b.Windows)
	return &BudgetPlan{b: b, windows: set}, nil
}

// Budget returns the budget as set.
func (p *BudgetPlan) Budget() api.PowerBudget {
	if p == nil {
		return api.PowerBudget{}
	}
	b := p.b
	b.Windows = slices.Clone(p.b.Windows)
	return b
}

// WattsAt is the budget in force at t (0: none) and the index of the window
// that sets it (-1: the default).
func (p *BudgetPlan) WattsAt(t time.Time) (watts float64, win int) {
	if p == nil {
		return 0, -1
	}
	if w := p.windows.At(t); w >= 0 {
		return p.b.Windows[w].Watts, w
	}
	return p.b.DefaultW, -1
}

// BudgetStep is a span [From, To) during which the budget W is in force
// (0: none).
type BudgetStep struct {
	From, To time.Time
	W        float64
}

// Steps splits [from, to) into spans of constant budget, in order.
func (p *BudgetPlan) Steps(from, to time.Time) []BudgetStep {
	if p == nil || !to.After(from) {
		return nil
	}
	if p.windows.Len() == 0 {
		return []BudgetStep{{From: from, To: to, W: p.b.DefaultW}}
	}
	segs := p.windows.Segments(from, to)
	out := make([]BudgetStep, len(segs))
	for i, s := range segs {
		out[i] = BudgetStep{From: s.From, To: s.To, W: p.b.DefaultW}
		if s.Window >= 0 {
			out[i].W = p.b.Windows[s.Window].Watts
		}
	}
	return out
}

// MaxW is the largest budget the plan ever puts in force: the default or a
// window's (0: none).
func (p *BudgetPlan) MaxW() float64 {
	if p == nil {
		return 0
	}
	w := p.b.DefaultW
	for _, win := range p.b.Windows {
		w = math.Max(w, win.Watts)
	}
	return w
}

// NodeMaxW is the per-node cap (0: none).
func (p *BudgetPlan) NodeMaxW() float64 {
	if p == nil {
		return 0
	}
	return p.b.NodeMaxW
}

// NextChange is the first instant after t, within horizon, at which the
// budget in force may change (a window edge); zero if none.
func (p *BudgetPlan) NextChange(t time.Time, horizon time.Duration) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.windows.Next(t, horizon)
}

// CheckBudgetFloor refuses a budget that the GPUs cannot meet even with
// every GPU that must stay awake at its minimum limit: clusterMinW is that
// floor and clusterWhat says what it is made of (e.g. "every GPU at its
// minimum power limit"), nodeMinW the largest sum of minimum limits on one
// node (and nodeName that node).
func CheckBudgetFloor(p *BudgetPlan, clusterMinW float64, clusterWhat string, nodeMinW float64, nodeName string) error {
	if p == nil {
		return nil
	}
	b := p.b
	check := func(field string, w float64) error {
		if w > 0 && w < clusterMinW {
			return &BudgetError{Field: field, Msg: fmt.Sprintf(
				"%.0f W is below the GPUs' minimum possible draw of %.0f W (%s); give at least %.0f W",
				w, clusterMinW, clusterWhat, clusterMinW)}
		}
		return nil
	}
	if err := check("default_w", b.DefaultW); err != nil {
		return err
	}
	for i, w := range b.Windows {
		if err := check(fmt.Sprintf("windows[%d].watts", i), w.Watts); err != nil {
			return err
		}
	}
	if b.NodeMaxW > 0 && b.NodeMaxW < nodeMinW {
		return &BudgetError{Field: "node_max_w", Msg: fmt.Sprintf(
			"%.0f W is below node %s's minimum possible draw of %.0f W (its GPUs at their minimum power limits); give at least %.0f W",
			b.NodeMaxW, nodeName, nodeMinW, nodeMinW)}
	}
	return nil
}
