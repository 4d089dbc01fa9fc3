package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// Policy is a named set of scheduling options: how the queue is ordered,
// whether backfill runs, which scorers rank the candidate nodes and with
// what weight, and what happens to idle nodes. Policies are the extension
// point: a later policy (power capping, off-peak) is a new entry in
// policies that sets more options, not a new code path.
type Policy struct {
	Name string
	// FairShareWeight is how many priority points a user's and a project's
	// usage can take away (0 turns fair share off: pure priority, then
	// submission order). FairShareHalfLife decays the usage.
	FairShareWeight   float64
	FairShareHalfLife time.Duration
	// Backfill turns on EASY backfill: the first job that cannot start
	// gets a reservation at the earliest time it can; later jobs start now
	// only if they do not delay it.
	Backfill bool
	// PreemptGap lets the first job that cannot start stop running jobs at
	// least this many priority points below it, or deferrable ones at or
	// below its priority (0 turns preemption off). Victims are stopped
	// (train jobs checkpoint) and requeued, never lost.
	PreemptGap int
	// Scorers rank feasible nodes; the weighted sum wins.
	Scorers []WeightedScorer
	// SuspendIdle suspends a node that has held no job for IdleTimeout;
	// its GPUs first get their minimum power limit. Suspended nodes are
	// woken when a job needs them, after Node.WakeDelay.
	SuspendIdle bool
	IdleTimeout time.Duration
	// Node is the non-GPU power of a node (baseline, suspended draw, wake
	// delay), used by the energy scorer and by the simulator.
	Node power.NodePower
	// PowerCap holds the GPUs under a power budget (power.go): the
	// simulator's energy+cap replays give every job its limit and pace.
	PowerCap bool
	// OffPeak says the policy defers work to cheap tariff windows. The core
	// always plans jobs that ask for it (Spec.Deferrable, offpeak.go); under
	// an OffPeak policy the simulator submits its deferrable fraction of the
	// trace as such jobs and re-plans at every tariff window edge in virtual
	// time, as the daemon does on its cron schedule.
	OffPeak bool
	// DeferrableYield: a deferrable job released by the planner (its
	// cheap window has come, or waiting gains nothing) waits behind every
	// other queued job, filling what they leave, until its deadline nears
	// (urgent, offpeak.go); urgent deferrable jobs go first, earliest
	// deadline first (EDF), and start at the performance operating point.
	DeferrableYield bool
	// DeadlineFirst lets an urgent deferrable job (isUrgent) that cannot
	// start preempt any running job at or below its priority that is not
	// deadline-bound itself, not only deferrable work: ordinary jobs are
	// checkpointed and requeued so that the deadline holds. On in
	// energy+cap+offpeak: on the ITP replays it meets the last meetable
	// deadlines for about 0.2% of the other jobs' mean JCT (README).
	DeadlineFirst bool
	// DeferrableEnergyPolicy, when set, is the operating point
	// (api.PolicyEfficient, ...) a deferrable job starts at when its
	// deadline leaves room for that point's slowdown: its own JCT does not
	// matter within the deadline. The job's spec shows the point it runs at.
	DeferrableEnergyPolicy string
	// HurryWhenQueued: while a job that is not a yielding deferrable job
	// waits for GPUs, running jobs that are not deferrable run at the
	// performance operating point instead of their own. Their slowdown would
	// delay the waiting job too, and on a busy cluster a 5% slower job
	// lengthens everyone's wait by far more (itp_cluster09 on 6 nodes: mean
	// JCT +16%). A binding budget still brings limits down (power.Allocate).
	HurryWhenQueued bool
	// MultiNode lets a job larger than one node run gang-placed on whole
	// free nodes (the simulator uses it for the ITP traces; schedulerd
	// refuses such jobs at submit).
	MultiNode bool
	// MaxScan bounds how many queued jobs that cannot start one pass
	// examines (as Slurm's bf_max_job_test bounds backfill); 0 means no
	// bound. Jobs that start do not count.
	MaxScan int
	// DefaultEstimate is a job's runtime estimate for backfill and energy
	// scoring when it has no walltime and its user and project have no
	// finished job yet.
	DefaultEstimate time.Duration
}

// WeightedScorer is one scorer of the placement pipeline with its weight.
type WeightedScorer struct {
	Name   string
	Weight float64
}

// Scorer names.
const (
	ScoreBinPack  = "binpack"
	ScoreFirstFit = "firstfit"
	ScoreEnergy   = "energy"
)

// DefaultIdleTimeout is how long an empty node stays awake before it is
// suspended under the energy policy.
const DefaultIdleTimeout = 15 * time.Minute

// policies holds every policy by name. Each is a function so callers get a
// fresh value they may adjust.
var policies = map[string]func() Policy{
	// The baseline most clusters run: priority then submission order
	// (every trace job has the same priority, so FIFO), no reservation, the
	// first node by name with room, default power limits, idle nodes stay on.
	"fifo-firstfit": func() Policy {
		return Policy{
			Name:            "fifo-firstfit",
			Scorers:         []WeightedScorer{{ScoreFirstFit, 1}},
			Node:            power.DefaultNodePower,
			MaxScan:         1000,
			DefaultEstimate: time.Hour,
		}
	},
	"energy": energyPolicy,
	// Issue 6's: energy, with every GPU's power limit set under a power
	// budget (the simulator needs --budget-kw). Not in policyOrder: it runs
	// only when asked for.
	"energy+cap": func() Policy {
		p := energyPolicy()
		p.Name, p.PowerCap = "energy+cap", true
		return p
	},
	// Issue 7's: energy+cap with off-peak deferral: deferrable jobs wait for
	// the cheapest tariff window that meets their deadline, then yield to
	// the other jobs until their deadline nears, when they go first and may
	// preempt what is in their way (DeadlineFirst). Like
	// energy+cap, it needs a budget in the simulator.
	"energy+cap+offpeak": func() Policy {
		p := energyPolicy()
		p.Name, p.PowerCap, p.OffPeak = "energy+cap+offpeak", true, true
		// DeferrableEnergyPolicy stays unset: on the ITP replays the
		// efficient point's 1.5x runtime keeps nodes awake longer, and
		// their baseline costs more than the GPUs save (README).
		p.DeferrableYield, p.DeadlineFirst = true, true
		return p
	},
}

// energyPolicy is issue 5's policy: fair share, EASY backfill,
// marginal-energy and best-fit scoring, suspension of idle nodes.
func energyPolicy() Policy {
	return Policy{
		Name:              "energy",
		FairShareWeight:   10,
		FairShareHalfLife: 7 * 24 * time.Hour,
		Backfill:          true,
		PreemptGap:        20,
		Scorers:           []WeightedScorer{{ScoreEnergy, 2}, {ScoreBinPack, 1}, {ScoreFirstFit, 0.01}},
		SuspendIdle:       true,
		IdleTimeout:       DefaultIdleTimeout,
		HurryWhenQueued:   true,
		Node:              power.DefaultNodePower,
		MaxScan:           1000,
		DefaultEstimate:   time.Hour,
	}
}

// DefaultPolicy is what schedulerd runs unless told otherwise.
const DefaultPolicy = "energy"

// policyOrder lists the policies baseline first: the order `schedulerd
// simulate` runs and prints them in, and compares each to the first.
var policyOrder = []string{"fifo-firstfit", "energy"}

// PolicyNames lists the policies run by default, the baseline first.
func PolicyNames() []string { return slices.Clone(policyOrder) }

// budgetPolicies lists the policies that need a power budget (PowerCap), in
// the order the simulator runs them after PolicyNames when given one.
var budgetPolicies = []string{"energy+cap", "energy+cap+offpeak"}

// AllPolicyNames lists every known policy: PolicyNames, then the ones that
// need a power budget.
func AllPolicyNames() []string { return append(PolicyNames(), budgetPolicies...) }

// BudgetPolicyNames lists the policies that need a power budget.
func BudgetPolicyNames() []string { return slices.Clone(budgetPolicies) }

// PolicyByName returns a fresh copy of a named policy.
func PolicyByName(name string) (Policy, error) {
	f, ok := policies[name]
	if !ok {
		return Policy{}, fmt.Errorf("unknown policy %q: use one of %s", name, strings.Join(AllPolicyNames(), ", "))
	}
	return f(), nil
}

// Validate reports whether the policy's options are usable.
func (p Policy) Validate() error {
	if len(p.Scorers) == 0 {
		return fmt.Errorf("policy %q: needs at least one scorer (%s, %s or %s)", p.Name, ScoreBinPack, ScoreFirstFit, ScoreEnergy)
	}
	for _, s := range p.Scorers {
		if scorerFuncs[s.Name] == nil {
			return fmt.Errorf("policy %q: unknown scorer %q; use %s, %s or %s", p.Name, s.Name, ScoreBinPack, ScoreFirstFit, ScoreEnergy)
		}
	}
	if p.FairShareWeight < 0 || (p.FairShareWeight > 0 && p.FairShareHalfLife <= 0) {
		return fmt.Errorf("policy %q: fair share needs a weight >= 0 and a positive half-life", p.Name)
	}
	switch p.DeferrableEnergyPolicy {
	case "", api.PolicyPerformance, api.PolicyBalanced, api.PolicyEfficient:
	default:
		return fmt.Errorf("policy %q: deferrable energy policy %q: use performance, balanced, efficient or none", p.Name, p.DeferrableEnergyPolicy)
	}
	if p.SuspendIdle && p.IdleTimeout <= 0 {
		return fmt.Errorf("policy %q: suspending idle nodes needs an idle timeout > 0", p.Name)
	}
	return p.Node.Validate()
}
