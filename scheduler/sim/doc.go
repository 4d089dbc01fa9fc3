// Package sim replays a GPU-cluster job trace (the CSV schema of
// ../shared/traces/README.md) on a virtual cluster with a virtual clock,
// through the same scheduler core (scheduler.Core: Submit, Heartbeat, Tick,
// Schedule) and the same power model (power.Model, power.NodePower) that
// schedulerd uses, and reports energy, cost, CO2, job completion times and
// GPU utilisation per policy.
//
// Nodes register and report finished jobs through Core.Heartbeat exactly as
// agents do; the clock jumps from event to event (arrivals, completions and
// the core's own timers from Core.NextTimer). It does no I/O beyond reading
// the trace and cluster readers it is given, and never reads the wall clock.
//
// It must not import storage, web, agent, net/http or bbolt.
package sim
