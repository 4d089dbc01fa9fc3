// Package scheduler is joule's pure core: the job queue, off-peak planning,
// placement and the bookkeeping of nodes, GPUs, energy, cost and CO2. It is a state machine that takes
// events (a job submitted or cancelled, a node's heartbeat, a tick at time t)
// and returns decisions (jobs to run and stop on each node).
//
// It does no I/O and never reads the wall clock: every method takes `now`.
// It must not import storage, web, agent, net/http or bbolt (power/tariff,
// itself pure, prices energy and drives the planner); the daemon wraps
// it with storage and HTTP, and the simulator wraps the same code with a
// virtual clock, so the rules the simulator measures are the rules production
// runs.
package scheduler
