// Package scheduler is joule's pure core: the job queue (priority, fair
// share, EASY backfill, preemption), off-peak planning of deferrable jobs,
// the placement pipeline (Core.place: filter, score, select, with placement
// metrics), node power states (suspend idle nodes, wake them for work) and
// the bookkeeping of nodes, GPUs, energy, cost and CO2. It is a state machine
// that takes events (a job submitted or cancelled, a node's heartbeat, a
// tick at time t) and returns decisions (jobs to run, stop or checkpoint on
// each node, power states, and a power limit for every GPU under the
// facility's power budget: power.go). The rules are a named Policy; new
// policies are new option sets in policy.go.
//
// It does no I/O and never reads the wall clock: every method takes `now`.
// It must not import storage, web, agent, net/http or bbolt (power/tariff,
// itself pure, prices energy and drives the planner); the daemon wraps it
// with storage and HTTP, and the simulator (scheduler/sim) wraps the same
// code with a virtual clock, so the rules the simulator measures are the
// rules production runs.
package scheduler
