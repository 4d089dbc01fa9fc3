package power

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// NodePower is the draw of everything in a GPU node except its GPUs (CPUs,
// memory, NVSwitch, NICs, fans, power-supply losses), the node's suspended
// draw and the cost of waking it. The scheduler's energy scorer and the trace
// simulator both read it; GPU draw comes from Model.
//
// No public whole-node idle figure exists for a DGX H100/H200 (see
// ../shared/calibration/README.md), so the defaults (DefaultNodePower) are
// choices, stated here and printed by every simulator run:
//
//   - LoadedW 3000 W: the README puts the non-GPU part of a DGX at roughly
//     1.5-3 kW depending on load; with 8 GPUs at their modelled uncapped
//     training draw (8 x 490 W) this gives 6.9 kW, inside the 6.5-8.5 kW
//     typical training draw the README cites.
//   - IdleW 1500 W: the low end of that 1.5-3 kW range (dual CPUs idling,
//     fans at floor, NVSwitch and NICs powered). With 8 idle H100s (8 x 72 W)
//     an idle node draws about 2.1 kW.
//   - SuspendedW 50 W: BMC, standby rails and fans stopped, as for a server
//     in ACPI S3/S5 with its management controller alive.
//   - WakeDelay 5 min and WakeEnergyJ: a DGX takes minutes to boot (POST,
//     memory training, GPU and fabric manager start); during that time it
//     draws its idle power, so waking costs IdleW x WakeDelay on top.
type NodePower struct {
	// IdleW is the non-GPU draw of an awake node with no busy GPU.
	IdleW float64
	// LoadedW is the non-GPU draw with every GPU busy; in between it is
	// linear in the share of busy GPUs.
	LoadedW float64
	// SuspendedW is the whole node's draw while suspended, GPUs included.
	SuspendedW float64
	// WakeDelay is how long a suspended node takes to become usable.
	WakeDelay time.Duration
}

// DefaultNodePower is the documented default for an 8-GPU DGX-class node;
// see NodePower for where each figure comes from.
var DefaultNodePower = NodePower{IdleW: 1500, LoadedW: 3000, SuspendedW: 50, WakeDelay: 5 * time.Minute}

// Validate reports whether the figures are usable.
func (p NodePower) Validate() error {
	switch {
	case !(p.IdleW >= 0) || math.IsInf(p.IdleW, 0):
		return fmt.Errorf("node power: idle draw %v W must be >= 0", p.IdleW)
	case !(p.LoadedW >= p.IdleW) || math.IsInf(p.LoadedW, 0):
		return fmt.Errorf("node power: loaded draw %v W must be >= idle draw %v W", p.LoadedW, p.IdleW)
	case !(p.SuspendedW >= 0 && p.SuspendedW <= p.IdleW):
		return fmt.Errorf("node power: suspended draw %v W must be in 0..idle draw %v W", p.SuspendedW, p.IdleW)
	case p.WakeDelay < 0:
		return fmt.Errorf("node power: wake delay %v must be >= 0", p.WakeDelay)
	}
	return nil
}

// BaselineW is the non-GPU draw of an awake node with busy of total GPUs
// busy: IdleW + busy/total x (LoadedW - IdleW).
func (p NodePower) BaselineW(busy, total int) float64 {
	if total <= 0 || busy <= 0 {
		return p.IdleW
	}
	share := math.Min(float64(busy)/float64(total), 1)
	return p.IdleW + share*(p.LoadedW-p.IdleW)
}

// WakeEnergyJ is the energy spent waking a suspended node: its idle
// baseline plus idle GPUs over WakeDelay.
func (p NodePower) WakeEnergyJ(m Model, gpus int) float64 {
	return (p.IdleW + float64(gpus)*m.IdleW) * p.WakeDelay.Seconds()
}

// ParseNodePower reads "idle=1500,loaded=3000,suspended=50,wake=5m" (any
// subset; the rest keeps the defaults in base).
func ParseNodePower(s string, base NodePower) (NodePower, error) {
	p := base
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return base, fmt.Errorf("node power %q: %q is not key=value; use e.g. idle=1500,loaded=3000,suspended=50,wake=5m", s, kv)
		}
		if k == "wake" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return base, fmt.Errorf("node power %q: wake=%s: %w (use e.g. wake=5m)", s, v, err)
			}
			p.WakeDelay = d
			continue
		}
		var w float64
		if _, err := fmt.Sscanf(v, "%g", &w); err != nil {
			return base, fmt.Errorf("node power %q: %s=%s is not a number of watts", s, k, v)
		}
		switch k {
		case "idle":
			p.IdleW = w
		case "loaded":
			p.LoadedW = w
		case "suspended":
			p.SuspendedW = w
		default:
			return base, fmt.Errorf("node power %q: unknown key %q; use idle, loaded, suspended or wake", s, k)
		}
	}
	return p, p.Validate()
}

// WorkPerJ is the work done per joule at full utilisation at the default
// limit, in units of an H100's work per second per watt: RelSpeed / PeakW.
// Higher is better; the energy scorer prefers the model where it is highest.
func (m Model) WorkPerJ() float64 {
	if !(m.PeakW > 0) {
		return 0
	}
	s := m.RelSpeed
	if !(s > 0) {
		s = 1
	}
	return s / m.PeakW
}
