package sim

import (
	"container/heap"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
)

// DefaultStart is the time trace time zero maps to: the ITP traces begin
// on 2021-03-04.
var DefaultStart = time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC)

// Config is one simulation run.
type Config struct {
	Cluster []NodeSpec
	// Start is the time trace time zero maps to (default DefaultStart).
	Start time.Time
	// Policy is the scheduler policy; its MultiNode option decides whether
	// jobs larger than one node run (gang-placed on whole nodes) or are
	// skipped.
	Policy scheduler.Policy
	// Tariff prices the cluster's energy (all of it, node baseline
	// included) at the window in force, PUE on top; nil means
	// tariff.Default(), schedulerd's flat default.
	Tariff *tariff.Plan
	// Progress, when set, is called as jobs finish (about every 1%).
	Progress func(done, total int)
	// Record keeps every job's placement in Result.Placements.
	Record bool
	// WalltimeFactor, when > 0, gives every job a walltime of its real
	// duration times the factor (as if users asked for that much); 0
	// leaves walltimes out and the core learns estimates.
	WalltimeFactor float64
	// BudgetW is the GPUs' power budget under a PowerCap policy
	// (energy+cap): every job runs at the limit the core allocates, at the
	// power model's pace under it, with the balanced energy policy.
	BudgetW float64
	// Budget, when set, is a whole budget instead of BudgetW: the default,
	// a per-node cap and cron windows, the JSON that PUT
	// /api/v1/power/budget takes, in force by the windows on the virtual
	// clock (power.BudgetPlan, as the daemon reads it).
	Budget *api.PowerBudget
	// BalancedSlowdown, when > 0, is the balanced jobs' allowed slowdown
	// under a PowerCap policy (schedulerd --balanced-slowdown); 0 keeps
	// the default (power.DefaultMaxSlowdown, 10%).
	BalancedSlowdown float64
	// DeferrableFraction (0..1) picks that share of the trace's jobs,
	// by index and a fixed seed (Deferrable), as deferrable with a deadline
	// of scheduler.DefaultDeadline (24 h) after submission. Only an OffPeak
	// policy submits them as deferrable; every policy reports on the same
	// jobs (Result.OffPeak), so runs compare like for like.
	DeferrableFraction float64
	// PreemptLoss is the work a preempted job loses, added to what it has
	// left: the stop (a heartbeat, the checkpoint write) and the restart
	// (loading the checkpoint, warming up). 0 means DefaultPreemptLoss; a
	// negative value means none (stops are instant and free).
	PreemptLoss time.Duration
}

// DefaultPreemptLoss is the work a preemption costs when Config says
// nothing: an assumption (a 2 s heartbeat, then a checkpoint written and
// read back and the data pipeline warmed up again, for a model of some
// GiB), not a measurement; `schedulerd simulate --preempt-loss` varies it.
const DefaultPreemptLoss = 2 * time.Minute

// deferrableSeed fixes which trace jobs a deferrable fraction picks.
const deferrableSeed = 0x6a6f756c65 // "joule"

// Deferrable says whether the trace job at index i is among the deferrable
// fraction f: a hash of i and a fixed seed, uniform in [0, 1), below f. The
// choice is the same for every policy and run, and a job picked at some f
// is picked at every larger f.
func Deferrable(i int, f float64) bool {
	x := uint64(deferrableSeed) + uint64(i+1)*0x9e3779b97f4a7c15 // splitmix64
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/(1<<53) < f
}

// OffPeakResult reports on the deferrable fraction's jobs, the same trace
// jobs under every policy (whether or not the policy deferred them).
type OffPeakResult struct {
	// DeferrableJobs counts the jobs picked deferrable that ran and whose
	// deadline can be met: their trace duration is at most 24 h.
	DeferrableJobs int `json:"deferrable_jobs"`
	// DeadlinesMissed counts those that finished after their deadline (24
	// h after submission); MissedJobs lists their trace ids, in trace
	// order, so runs can be compared job by job ("none missed that
	// fifo-firstfit meets").
	DeadlinesMissed int      `json:"deadlines_missed"`
	MissedJobs      []string `json:"missed_jobs,omitempty"`
	// DeadlinesUnmeetable counts the jobs picked whose trace duration alone
	// is over 24 h: their deadline is missed under every policy, so they
	// are submitted as not deferrable (a facility would not defer work
	// that cannot make its deadline) and count with the other jobs.
	DeadlinesUnmeetable int `json:"deadlines_unmeetable"`
	// MeanJCTNonDeferrableS and MeanJCTDeferrableS are the mean job
	// completion times of the other jobs (unmeetable ones included) and of
	// the deferrable ones.
	MeanJCTNonDeferrableS float64 `json:"mean_jct_nondeferrable_s"`
	MeanJCTDeferrableS    float64 `json:"mean_jct_deferrable_s"`
	// Deferred counts the jobs the planner made wait at least once.
	Deferred int `json:"deferred"`
	// Preempted counts the times a running deferrable job was stopped for
	// another (scheduler's preempt) and requeued with the work it had
	// done.
	Preempted int `json:"preempted"`
}

// Result is one policy's outcome. The JSON field names are the ones
// `schedulerd simulate -o json` promises.
type Result struct {
	Policy           string  `json:"policy"`
	Jobs             int     `json:"jobs"`
	EnergyKWh        float64 `json:"energy_kwh"`
	GPUEnergyKWh     float64 `json:"gpu_energy_kwh"`
	Cost             float64 `json:"cost"`
	CO2Kg            float64 `json:"co2_kg"`
	MeanJCTS         float64 `json:"mean_jct_s"`
	P95JCTS          float64 `json:"p95_jct_s"`
	MeanWaitS        float64 `json:"mean_wait_s"`
	MakespanS        float64 `json:"makespan_s"`
	GPUUtilization   float64 `json:"gpu_utilization"`
	BudgetViolationS float64 `json:"budget_violation_s"`
	// Unrunnable counts the jobs that never ran because even alone, at
	// their GPUs' minimum limits, they draw more than the budget; they stay
	// queued with that reason, as in the daemon. UnrunnableReason is the
	// first one's (in trace order).
	Unrunnable       int    `json:"unrunnable_jobs"`
	UnrunnableReason string `json:"unrunnable_reason,omitempty"`
	// OffPeak is present when Config.DeferrableFraction > 0.
	OffPeak *OffPeakResult `json:"offpeak,omitempty"`

	// Skipped counts trace rows not run: CPU-only rows (0 GPUs) and jobs
	// larger than the cluster (or than one node without MultiNode).
	Skipped int `json:"-"`
	// Suspends counts node suspensions; Wakes node wake-ups.
	Suspends, Wakes int `json:"-"`
	// Placements maps a trace job id to where and when it ran (Record).
	Placements map[string]Placement `json:"-"`
}

// Placement is where and when one trace job ran.
type Placement struct {
	Node    string
	GPUs    []int
	Start   time.Time
	Explain *api.Placement
}

// node is a virtual node's fixed facts.
type node struct {
	spec  NodeSpec
	model power.Model
	gpus  []api.GPU
}

// NodeGPUs is the GPU list a virtual node reports in its heartbeats: the
// kind's power.Model name and limits, every GPU at its default limit.
func NodeGPUs(s NodeSpec) ([]api.GPU, error) {
	m, err := power.ModelFor(s.Kind)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", s.Name, err)
	}
	gpus := make([]api.GPU, s.GPUs)
	for i := range gpus {
		gpus[i] = api.GPU{Index: i, UUID: fmt.Sprintf("SIM-%s-%d", s.Name, i), Model: m.Name,
			LimitW: m.DefaultLimitW, MinLimitW: m.MinLimitW, MaxLimitW: m.MaxLimitW, PowerW: m.IdleW}
	}
	return gpus, nil
}

type completion struct {
	at   time.Time
	seq  int
	id   string
	node string
	gen  int // under a power cap: the job's pacing generation it was computed in
}

type completions []completion

func (h completions) Len() int { return len(h) }
func (h completions) Less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h completions) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *completions) Push(x any)   { *h = append(*h, x.(completion)) }
func (h *completions) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Run replays jobs on cfg.Cluster under cfg.Policy.
func Run(jobs []Job, cfg Config) (Result, error) {
	if len(cfg.Cluster) == 0 {
		return Result{}, fmt.Errorf("simulate: the cluster has no nodes; use --nodes N or --cluster FILE")
	}
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Tariff == nil {
		p, err := tariff.Compile(tariff.Default())
		if err != nil {
			return Result{}, fmt.Errorf("simulate: default tariff: %w", err)
		}
		cfg.Tariff = p
	}
	if !(cfg.DeferrableFraction >= 0 && cfg.DeferrableFraction <= 1) {
		return Result{}, fmt.Errorf("simulate: deferrable fraction %v: give a number from 0 to 1, e.g. 0.3", cfg.DeferrableFraction)
	}
	// Trace jobs share one priority, so only deferrable jobs can be
	// preempted, and only urgent deferrable jobs preempt (scheduler's
	// preempt under DeferrableYield): a virtual agent stops a victim at
	// once and reports it preempted with the share of its work done, as a
	// train job's checkpoint at SIGTERM keeps it; it resumes with the rest
	// (stopPreempted). Without DeferrableYield (--offpeak-levers none or
	// efficient) any equal-priority job may preempt deferrable work, and
	// with stops this instant a requeued victim ahead in the queue takes its
	// GPUs back and is preempted again without end: preemption is off there.
	if !cfg.Policy.DeferrableYield {
		cfg.Policy.PreemptGap = 0
	}
	preemptLoss := cfg.PreemptLoss
	switch {
	case preemptLoss == 0:
		preemptLoss = DefaultPreemptLoss
	case preemptLoss < 0:
		preemptLoss = 0
	}
	core, err := scheduler.NewWithPolicy(cfg.Policy)
	if err != nil {
		return Result{}, fmt.Errorf("simulate: %w", err)
	}
	core.NodeTimeout = 0       // virtual nodes speak only when something happens
	core.UseTariff(cfg.Tariff) // the off-peak planner's prices
	capped := cfg.Policy.PowerCap
	if capped {
		if cfg.Budget == nil && !(cfg.BudgetW > 0) {
			return Result{}, fmt.Errorf("simulate: policy %s needs a power budget: give --budget-kw or --budget FILE", cfg.Policy.Name)
		}
		// Virtual agents do not profile: jobs follow the power model's curve.
		core.Power.Profile = false
		if cfg.BalancedSlowdown != 0 {
			core.Power.MaxSlowdown = cfg.BalancedSlowdown
			if err := core.Power.Validate(); err != nil {
				return Result{}, fmt.Errorf("simulate: %w", err)
			}
		}
	}
	nodes := map[string]*node{}
	byModel := map[string]power.Model{}
	var initial scheduler.Changes // the budget's first pass
	// budget is the budget plan under a PowerCap policy: the watts in force
	// at a virtual instant, and its window edges (where the core reallocates).
	var budget *power.BudgetPlan
	var budgetW float64 // in force now: it changes only at budgetAt
	totalGPUs, largest := 0, 0
	for _, s := range cfg.Cluster {
		gpus, err := NodeGPUs(s)
		if err != nil {
			return Result{}, fmt.Errorf("simulate: %w", err)
		}
		m, _ := power.ModelFor(s.Kind)
		nodes[s.Name] = &node{spec: s, model: m, gpus: gpus}
		byModel[m.Name] = m
		totalGPUs += s.GPUs
		largest = max(largest, s.GPUs)
		core.Heartbeat(s.Name, api.Heartbeat{GPUs: gpus}, cfg.Start)
	}
	if capped {
		// The daemon's rule: SetBudget refuses a budget below the GPUs'
		// minimum possible draw (scheduler's budgetFloorW). Set once the
		// nodes are known; the first pass suspends the idle nodes it cannot
		// hold.
		b := api.PowerBudget{DefaultW: cfg.BudgetW}
		if cfg.Budget != nil {
			b = *cfg.Budget
		}
		if _, err := core.SetBudget(b); err != nil {
			return Result{}, fmt.Errorf("simulate: %w", err)
		}
		if budget, err = power.CompileBudget(b); err != nil {
			return Result{}, fmt.Errorf("simulate: %w", err)
		}
		initial = core.Schedule(cfg.Start)
	}

	res := Result{Policy: cfg.Policy.Name}
	if cfg.Record {
		res.Placements = map[string]Placement{}
	}
	type run struct {
		trace    int
		submit   time.Time
		duration time.Duration
		started  bool
		nodeName string
		// Under a power cap: the work left (seconds at full speed) as of
		// since, the pace (relative throughput) and limit since then, the
		// GPUs held per node, and the pacing generation.
		left   float64
		since  time.Time
		rate   float64
		limitW float64
		on     map[string]int
		model  power.Model
		gen    int
		// deferrable: picked by DeferrableFraction.
		deferrable bool
		// total is the trace duration; duration is what is left of it
		// after preemptions.
		total time.Duration
	}
	runs := map[string]*run{}
	total := 0
	for _, j := range jobs {
		if j.GPUs > 0 && j.GPUs <= totalGPUs && (cfg.Policy.MultiNode || j.GPUs <= largest) {
			total++
		}
	}
	var pending completions
	seq := 0
	now := cfg.Start
	var energyJ, gpuEnergyJ, busyGPUS, cost, co2G float64
	var jcts, waits, jctsDef, jctsNon []float64
	var op OffPeakResult
	var missed []int
	// Under an OffPeak policy, deferred maps a deferred job to the start
	// its plan waits for; wakes holds those instants (stale entries are
	// skipped), and edgeAt is the next tariff window edge, where the core
	// re-plans (Core.Replan) as the daemon does on its cron schedule.
	deferred := map[string]time.Time{}
	everDeferred := map[string]bool{}
	var wakes completions
	nextEdge := func(from time.Time) time.Time {
		const horizon = 35 * 24 * time.Hour
		if e := cfg.Tariff.Edges(from, from.Add(horizon)); len(e) > 0 {
			return e[0]
		}
		return from.Add(horizon) // no edge in sight: re-plan anyway then
	}
	edgeAt := nextEdge(cfg.Start)
	lastDone := cfg.Start
	var lastPower map[string]string

	// capW is, under a power cap, each node's busy GPUs' draw at their
	// limits; running lists the started, unfinished jobs.
	capW := map[string]float64{}
	running := map[string]*run{}
	// pace gives every running job the limit the core allocates now and
	// reschedules its completion where its pace changed.
	pace := func() {
		if !capped {
			return
		}
		limits := core.PowerLimits(now)
		clear(capW)
		// In id order: the float sums and the sequence numbers of
		// completions due at one instant must not follow map order, or two
		// runs of one replay differ in the last digit.
		for _, id := range slices.Sorted(maps.Keys(running)) {
			r := running[id]
			l := limits[id]
			if l == 0 {
				l = r.model.DefaultLimitW
			}
			rate := r.model.RelThroughput(1, l)
			if rate != r.rate {
				r.left -= now.Sub(r.since).Seconds() * r.rate
				r.since, r.rate, r.limitW = now, rate, l
				r.gen++
				seq++
				heap.Push(&pending, completion{at: now.Add(time.Duration(math.Max(r.left, 0) / rate * float64(time.Second))), seq: seq, id: id, node: "", gen: r.gen})
			}
			for node, n := range r.on {
				capW[node] += float64(n) * r.model.DrawW(1, r.limitW)
			}
		}
	}
	// account integrates the cluster's draw over [now, t).
	account := func(t time.Time) {
		dt := t.Sub(now).Seconds()
		if dt <= 0 {
			return
		}
		intervalJ, clusterGW := 0.0, 0.0
		defer func() {
			for _, piece := range cfg.Tariff.Split(intervalJ, now, t) {
				cost += piece.Cost
				co2G += piece.CO2G
			}
		}()
		for _, l := range core.Loads() {
			n := nodes[l.Name]
			m, p := n.model, cfg.Policy.Node
			var w, gw float64
			switch l.Power {
			case api.PowerSuspended:
				w = p.SuspendedW
			case api.PowerResuming:
				gw = float64(l.Total) * m.IdleW
				w = p.IdleW + gw
			default:
				if capped {
					gw = capW[l.Name] + float64(l.Total-l.Busy)*m.IdleW
				} else {
					gw = float64(l.Busy)*m.DrawW(1, m.DefaultLimitW) + float64(l.Total-l.Busy)*m.IdleW
				}
				w = p.BaselineW(l.Busy, l.Total) + gw
				busyGPUS += float64(l.Busy) * dt
			}
			energyJ += w * dt
			intervalJ += w * dt
			gpuEnergyJ += gw * dt
			clusterGW += gw
		}
		if capped && budgetW > 0 && clusterGW > budgetW+1e-6 {
			res.BudgetViolationS += dt
		}
	}
	// observe starts the completions of newly started jobs and counts
	// power transitions.
	var observe func(ch scheduler.Changes)
	// stopPreempted is the virtual agent stopping a job the core preempts:
	// the work done so far is kept (its progress), the rest, plus
	// preemptLoss, runs when the job starts again.
	stopPreempted := func(node string, js []api.Job) scheduler.Changes {
		var reports []api.JobReport
		for _, j := range js {
			r := runs[j.ID]
			d := r.duration
			if s := nodes[j.Node].model.RelSpeed; s > 0 && s != 1 {
				d = time.Duration(float64(d) / s)
			}
			left := d.Seconds() - math.Max(0, now.Sub(*j.StartedAt).Seconds())
			if capped {
				left = r.left - math.Max(0, now.Sub(r.since).Seconds())*r.rate
				delete(running, j.ID)
			}
			done := 0.0
			if d > 0 {
				done = math.Min(1, math.Max(0, 1-left/d.Seconds()))
			}
			r.duration = time.Duration(float64(r.duration)*(1-done)) + preemptLoss
			r.started = false
			r.gen++ // its pending completion no longer stands
			op.Preempted++
			reports = append(reports, api.JobReport{ID: j.ID, State: api.StatePreempted, Reason: "preempted",
				Progress: &api.Progress{Fraction: max(0, 1-float64(r.duration)/float64(r.total))}})
		}
		// One heartbeat for all of a node's victims: the agent reports
		// every job it holds, and one left out counts as gone.
		_, ch := core.Heartbeat(node, api.Heartbeat{GPUs: nodes[node].gpus, Jobs: reports}, now)
		return ch
	}
	observe = func(ch scheduler.Changes) {
		var stops []api.Job
		defer func() {
			byNode := map[string][]api.Job{}
			var order []string
			for _, j := range stops {
				if byNode[j.Node] == nil {
					order = append(order, j.Node)
				}
				byNode[j.Node] = append(byNode[j.Node], j)
			}
			for _, n := range order {
				observe(stopPreempted(n, byNode[n]))
			}
		}()
		for _, j := range ch.Jobs {
			if r := runs[j.ID]; r != nil && r.started && j.State == api.StateRunning && j.Stopping {
				stops = append(stops, j)
				continue
			}
			if j.State == api.StateDeferred && j.DeferredUntil != nil {
				if at, ok := deferred[j.ID]; !ok || !at.Equal(*j.DeferredUntil) {
					deferred[j.ID] = *j.DeferredUntil
					everDeferred[j.ID] = true
					seq++
					heap.Push(&wakes, completion{at: *j.DeferredUntil, seq: seq, id: j.ID})
				}
			} else {
				delete(deferred, j.ID)
			}
			r := runs[j.ID]
			if r == nil || r.started || j.State != api.StateRunning || j.StartedAt == nil {
				continue
			}
			r.started = true
			seq++
			// Trace durations count as H100 runtimes: a slower GPU model
			// takes duration / RelSpeed (power.Model).
			d := r.duration
			if s := nodes[j.Node].model.RelSpeed; s > 0 && s != 1 {
				d = time.Duration(float64(d) / s)
			}
			if capped {
				r.left, r.since, r.rate, r.model = d.Seconds(), *j.StartedAt, 0, nodes[j.Node].model
				r.on = map[string]int{j.Node: len(j.GPUIndices)}
				for _, g := range j.GangNodes {
					r.on[g] = nodes[g].spec.GPUs
				}
				r.nodeName = j.Node
				running[j.ID] = r
			} else {
				heap.Push(&pending, completion{at: j.StartedAt.Add(d), seq: seq, id: j.ID, node: j.Node, gen: r.gen})
			}
			if cfg.Record {
				res.Placements[jobs[r.trace].ID] = Placement{Node: j.Node, GPUs: j.GPUIndices, Start: *j.StartedAt, Explain: j.Placement}
			}
		}
		for _, n := range ch.Nodes {
			if lastPower == nil {
				lastPower = map[string]string{}
			}
			if old := lastPower[n.Name]; old != n.Power {
				switch n.Power {
				case api.PowerSuspended:
					res.Suspends++
				case api.PowerResuming:
					res.Wakes++
				}
				lastPower[n.Name] = n.Power
			}
		}
	}

	observe(initial)
	// budgetAt is the budget's next window edge (zero: none in sight).
	const budgetHorizon = 35 * 24 * time.Hour
	var budgetAt time.Time
	if capped {
		budgetAt = budget.NextChange(cfg.Start, budgetHorizon)
		budgetW, _ = budget.WattsAt(cfg.Start)
	}
	ai, done, firstUnrunnable := 0, 0, 0
	var tickedAt time.Time
	for {
		next := time.Time{}
		consider := func(t time.Time) {
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		if ai < len(jobs) {
			consider(cfg.Start.Add(time.Duration(jobs[ai].SubmitS) * time.Second))
		}
		if len(pending) > 0 {
			consider(pending[0].at)
		}
		if len(wakes) > 0 {
			consider(wakes[0].at)
			consider(edgeAt)
		}
		if !budgetAt.IsZero() && (len(pending) > 0 || ai < len(jobs)) {
			consider(budgetAt)
		}
		timer, hasTimer := core.NextTimer()
		if hasTimer {
			if timer.Before(now) {
				timer = now
			}
			if timer.Equal(tickedAt) {
				hasTimer = false // already ticked at this instant
			} else {
				consider(timer)
			}
		}
		if next.IsZero() {
			break
		}
		if len(pending) == 0 && ai >= len(jobs) && len(wakes) == 0 {
			break // only power timers are left: the work is done
		}
		account(next)
		now = next
		for len(pending) > 0 && !pending[0].at.After(now) {
			c := heap.Pop(&pending).(completion)
			r := runs[c.id]
			if capped {
				if running[c.id] == nil || c.gen != r.gen {
					continue // paced again since: a later entry stands
				}
				delete(running, c.id)
				c.node = r.nodeName
			} else if !r.started || c.gen != r.gen {
				continue // preempted since: it completes after its restart
			}
			_, ch := core.Heartbeat(c.node, api.Heartbeat{GPUs: nodes[c.node].gpus,
				Jobs: []api.JobReport{{ID: c.id, State: api.StateSucceeded}}}, now)
			j, _ := core.Job(c.id)
			jct := now.Sub(r.submit).Seconds()
			jcts = append(jcts, jct)
			if r.deferrable {
				jctsDef = append(jctsDef, jct)
				op.DeferrableJobs++
				if now.After(r.submit.Add(scheduler.DefaultDeadline)) {
					op.DeadlinesMissed++
					missed = append(missed, r.trace)
				}
			} else {
				jctsNon = append(jctsNon, jct)
			}
			waits = append(waits, j.StartedAt.Sub(r.submit).Seconds())
			lastDone = now
			done++
			if cfg.Progress != nil && (done%max(1, total/100) == 0 || done == total) {
				cfg.Progress(done, total)
			}
			observe(ch)
		}
		arrived := false
		for ai < len(jobs) && !cfg.Start.Add(time.Duration(jobs[ai].SubmitS)*time.Second).After(now) {
			tj := jobs[ai]
			ai++
			if tj.GPUs <= 0 || tj.GPUs > totalGPUs || (!cfg.Policy.MultiNode && tj.GPUs > largest) {
				res.Skipped++
				continue
			}
			user := tj.User
			if user == "" {
				user = "trace"
			}
			spec := api.JobSpec{Name: fmt.Sprintf("t-%d", ai), User: user, Project: "default", GPUs: tj.GPUs,
				Priority: 50, EnergyPolicy: api.PolicyBalanced, Workload: api.Workload{Synthetic: &api.SyntheticSpec{
					Duration: api.Duration{Duration: time.Duration(tj.DurationS) * time.Second}, Utilization: 1}}}
			if cfg.WalltimeFactor > 0 {
				spec.Walltime = &api.Duration{Duration: time.Duration(float64(tj.DurationS)*cfg.WalltimeFactor) * time.Second}
			}
			// The planner's runtime estimate (scheduler.Estimate) is the
			// walltime if any, else the synthetic duration: the trace's.
			def := cfg.DeferrableFraction > 0 && Deferrable(ai-1, cfg.DeferrableFraction)
			if def && time.Duration(tj.DurationS)*time.Second > scheduler.DefaultDeadline {
				def = false // unmeetable: not deferred (OffPeakResult)
				op.DeadlinesUnmeetable++
			}
			spec.Deferrable = def && cfg.Policy.OffPeak
			j, err := core.Submit(spec, now)
			if err != nil {
				res.Skipped++
				continue
			}
			dur := time.Duration(tj.DurationS) * time.Second
			runs[j.ID] = &run{trace: ai - 1, submit: now, duration: dur, total: dur, deferrable: def}
			arrived = true
		}
		// A deferred job whose planned start has come is planned again
		// (and started) by the next pass.
		wake := false
		for len(wakes) > 0 && !wakes[0].at.After(now) {
			w := heap.Pop(&wakes).(completion)
			if at, ok := deferred[w.id]; ok && at.Equal(w.at) {
				wake = true
			}
		}
		if !edgeAt.After(now) {
			if len(deferred) > 0 {
				observe(core.Replan(now))
				arrived, wake = false, false
			}
			edgeAt = nextEdge(now)
		}
		// At a budget window edge the core reallocates (and a pass starts
		// what a larger budget allows, or suspends idle nodes a smaller one
		// cannot hold).
		edge := false
		if !budgetAt.IsZero() && !budgetAt.After(now) {
			edge = true
			budgetAt = budget.NextChange(now, budgetHorizon)
			budgetW, _ = budget.WattsAt(now)
		}
		if hasTimer && !timer.After(now) {
			observe(core.Tick(now))
			tickedAt = now
		} else if arrived || wake || edge {
			observe(core.Schedule(now))
		}
		pace()
	}
	if done < total {
		// Jobs the budget can never hold (scheduler.UnrunnablePrefix) are
		// reported, as a facility would see them: waiting with that reason.
		for id, r := range runs {
			if r.started {
				continue
			}
			if j, ok := core.Job(id); ok && strings.HasPrefix(j.Reason, scheduler.UnrunnablePrefix) {
				res.Unrunnable++
				if res.UnrunnableReason == "" || r.trace < firstUnrunnable {
					res.UnrunnableReason, firstUnrunnable = fmt.Sprintf("trace job %s: %s", jobs[r.trace].ID, j.Reason), r.trace
				}
			}
		}
		if done+res.Unrunnable < total {
			return res, fmt.Errorf("simulate: %d of %d jobs never ran (the cluster cannot hold them)", total-done-res.Unrunnable, total)
		}
	}
	res.Jobs = done
	res.EnergyKWh = energyJ / 3.6e6
	res.GPUEnergyKWh = gpuEnergyJ / 3.6e6
	res.Cost = cost
	res.CO2Kg = co2G / 1000
	res.MeanJCTS = mean(jcts)
	res.P95JCTS = percentile(jcts, 0.95)
	res.MeanWaitS = mean(waits)
	if cfg.DeferrableFraction > 0 {
		op.MeanJCTDeferrableS, op.MeanJCTNonDeferrableS = mean(jctsDef), mean(jctsNon)
		op.Deferred = len(everDeferred)
		slices.Sort(missed)
		for _, i := range missed {
			op.MissedJobs = append(op.MissedJobs, jobs[i].ID)
		}
		res.OffPeak = &op
	}
	res.MakespanS = lastDone.Sub(cfg.Start).Seconds()
	if res.MakespanS > 0 {
		res.GPUUtilization = busyGPUS / (float64(totalGPUs) * res.MakespanS)
	}
	return res, nil
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// percentile uses linear interpolation, as the traces' README does.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := p * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}
