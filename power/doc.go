// Package power is joule's one place for watts: it reaches GPUs only through
// go-nvml's nvml.Interface (real NVML, or go-nvml's own mock servers driven by
// the power model in SimNode), holds the calibrated power model that the
// simulated GPUs, the trace simulator and the planner share, fits
// throughput-versus-power-limit curves, holds the non-GPU node power
// (NodePower: baseline, suspended draw, wake delay), and meters energy from
// the GPUs' total-energy counters.
//
// Power capping lives here as pure functions: BudgetPlan (the facility budget
// as a default and cron windows, see power/window), OperatingPointW (each
// energy policy's limit on a job's curve), Allocate (a limit for every GPU,
// water-filled under the budget) and Profiler (the state machine that steps
// a new job through power limits). The scheduler core decides with them; the
// agent measures with them.
//
// Units are in names: PowerW, LimitW, EnergyJ. NVML's milliwatts and
// millijoules (LimitmW, EnergymJ) never leave this package.
//
// power must not import storage, web, net/http or bbolt: it is used by the
// pure scheduler core and the simulator as well as by the agent.
package power
