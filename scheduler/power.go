package scheduler

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// Power capping in the core: every decision gives every GPU a power limit
// (power.Allocate over the up nodes' GPUs and the running jobs' curves and
// policies, under the budget in force), a queued job starts only if the
// budget allows it, and profiled curves are fitted and kept with the jobs.

// trainUtilization is the utilisation assumed for a train job before it is
// profiled (the agent loads simulated GPUs at the same share).
const trainUtilization = 0.9

// DefaultAdmitRel: a queued job starts only if, with it running, every
// running job keeps at least this share of its speed at its operating point.
const DefaultAdmitRel = 0.8

// PowerConfig tunes power capping.
type PowerConfig struct {
	// MaxSlowdown is the balanced policy's allowance (0.10: 10% more time).
	MaxSlowdown float64
	// AdmitRel: see DefaultAdmitRel.
	AdmitRel float64
	// Profile asks agents to profile each job without a curve as it starts.
	Profile bool
}

// DefaultPowerConfig is the configuration New uses.
func DefaultPowerConfig() PowerConfig {
	return PowerConfig{MaxSlowdown: power.DefaultMaxSlowdown, AdmitRel: DefaultAdmitRel, Profile: true}
}

// Validate refuses settings that make no sense.
func (p PowerConfig) Validate() error {
	switch {
	case !(p.MaxSlowdown > 0 && p.MaxSlowdown <= 10):
		return fmt.Errorf("balanced slowdown %v: give a share of extra time in (0, 10], e.g. 0.10 for 10%%", p.MaxSlowdown)
	case !(p.AdmitRel >= 0 && p.AdmitRel <= 1):
		return fmt.Errorf("admission speed %v: give a share of a job's operating speed in [0, 1], e.g. 0.8", p.AdmitRel)
	}
	return nil
}

// powerState is what the core remembers about power between events.
type powerState struct {
	budget *power.BudgetPlan
	// overBudget is the time the measured draw spent above the budget; at
	// is when it was last accounted.
	overBudget time.Duration
	at         time.Time
	// cache is the last allocation and the fingerprint of its input: most
	// heartbeats change nothing the allocation depends on.
	cacheKey uint64
	// hurry says the last pass left a job waiting for GPUs
	// (Policy.HurryWhenQueued): running jobs run at full speed.
	hurry bool
	cache *power.Allocation
	// cacheAt is when the cache was last checked against the state; stale
	// forces the next check (a job started or ended, a node came or went,
	// the budget changed); fresh says the allocation changed since the jobs'
	// limits were last recorded.
	cacheAt time.Time
	stale   bool
	fresh   bool
	// cacheW is the budget in force when the cache was checked: a window
	// edge makes it stale at once.
	cacheW float64
	// wattsAt and watts memoise the budget in force at one instant (cron
	// windows are costly to evaluate, and a pass asks once per job).
	wattsAt time.Time
	watts   float64
	// steps are the budget's spans over budgetLookahead from stepsAt.
	stepsAt time.Time
	steps   []power.BudgetStep
	// perNode says the last limits were allocated node by node (no budget
	// in force), so the jobs' recorded limits may not match the cache.
	perNode bool
	// models memoises power.ModelByName per GPU name.
	models map[string]power.Model
	// curves indexes the latest power curve per name and project (noteCurve).
	curves map[string]curveRef
	// refused remembers, within one Schedule pass, the fewest GPUs a job
	// of each policy (with no curve of its own) was refused power for, and
	// why: within a pass demand only grows, so a job as large or larger with
	// the same model curve is refused too without another allocation.
	refused map[string]refusal
	// gen counts changes to what an allocation reads (markAllocStale).
	gen uint64
	// admit memoises powerAdmits's refusals within one Schedule pass and
	// one gen (admitMemo); admitMemoOff, for tests, builds the allocation's
	// input afresh for every candidate and remembers nothing, as before
	// the memo (TestAdmitMemoChangesNoDecision).
	admit        admitMemo
	admitMemoOff bool
	// admitHits and admitMisses count the candidates the memo answered
	// and those it allocated for (tests, benchmarks).
	admitHits, admitMisses int
}

type refusal struct {
	gpus   int
	reason string
}

// admitMemo remembers powerAdmits's refusals while nothing an allocation
// reads has changed: within one Schedule pass (one instant, no heartbeat)
// and one gen (no job started, no node woken or suspended). A refusal is a
// pure function of the allocation's input, and with the cluster fixed two
// candidates' inputs differ only in the candidate's own part, admitKey. So
// a refusal is reused only where the allocation would be the same, which,
// unlike the refused memo (a job as large or larger of the same policy is
// refused too), holds under per-node caps: the key names the nodes.
//
// base is the cluster's allocation input without the candidate, built once
// per lifetime and copied for each candidate that misses; ids are its
// running jobs' ids, sorted, for admitKey.rank.
type admitMemo struct {
	valid    bool
	gen      uint64
	at       time.Time
	base     power.AllocInput
	ids      []string
	refusals map[admitKey]admitRefusal
}

// admitKey is everything of a candidate job that powerAdmits's answer
// depends on once the cluster is fixed.
type admitKey struct {
	// nodes are the decision's nodes (their ords); with need they fix the
	// GPUs the job takes, the idle GPUs beside them, the nodes woken for it
	// and those that could be suspended for it.
	nodes string
	need  int
	// job is its power behaviour: policy, profiling, curve.
	job power.AllocJob
	// lowW and lowAt are the lowest budget coming before it is expected
	// to end, and when (they follow its runtime estimate).
	lowW            float64
	lowAtS, lowAtNs int64
	// rank is how many running jobs' ids sort before its id: water-filling
	// breaks ties between equal steps by job id, so the order of ids is
	// part of the input, not only the numbers.
	rank int
}

// admitRefusal is a memoised refusal. When its reason names the candidate
// itself as the job it would slow most (selfRel > 0, the speed it would
// keep), the reason is worded again with the next candidate's id.
type admitRefusal struct {
	reason  string
	selfRel float64
}

// allocRefresh bounds how long an allocation is reused while nothing but
// telemetry changed. Gathering the allocation's input reads every GPU of the
// cluster, too much for every heartbeat of a large one; events that change
// placements mark it stale at once.
const allocRefresh = 250 * time.Millisecond

// budgetW is the budget in force at now (0: none), memoised per instant.
func (c *Core) budgetW(now time.Time) float64 {
	if c.pw.budget == nil {
		return 0
	}
	if !now.Equal(c.pw.wattsAt) {
		c.pw.watts, _ = c.pw.budget.WattsAt(now)
		c.pw.wattsAt = now
	}
	return c.pw.watts
}

// budgetLookahead bounds how far ahead admission looks for a lower budget.
const budgetLookahead = 7 * 24 * time.Hour

// budgetMinW is the least budget in force from now until end (0: none at
// all) and when it starts, looking at most budgetLookahead ahead; the
// budget's spans are computed once per instant.
func (c *Core) budgetMinW(now, end time.Time) (minW float64, at time.Time) {
	if c.pw.budget == nil {
		return 0, time.Time{}
	}
	if !now.Equal(c.pw.stepsAt) || c.pw.steps == nil {
		c.pw.steps, c.pw.stepsAt = c.pw.budget.Steps(now, now.Add(budgetLookahead)), now
	}
	for _, s := range c.pw.steps {
		if !s.From.Before(end) {
			break
		}
		if s.W > 0 && (minW == 0 || s.W < minW) {
			minW, at = s.W, s.From
		}
	}
	return minW, at
}

// setHurry records whether jobs wait for GPUs (Policy.HurryWhenQueued);
// a change re-allocates every limit.
func (c *Core) setHurry(waiting bool) {
	if h := waiting && c.policy.HurryWhenQueued; h != c.pw.hurry {
		c.pw.hurry = h
		c.markAllocStale()
	}
}

// HurryNote is a hurried job's PowerNote.
const HurryNote = "full speed while other jobs wait for GPUs"

// hurries says whether job j runs at the performance point for the jobs
// waiting (Policy.HurryWhenQueued): deferrable jobs keep their own.
func (c *Core) hurries(j *api.Job) bool { return c.pw.hurry && !j.Spec.Deferrable }

// markAllocStale makes the next allocate look at the state again.
func (c *Core) markAllocStale() { c.pw.stale, c.pw.gen = true, c.pw.gen+1 }

// allocate is power.Allocate over the current state, memoised on its input
// and rechecked at most every allocRefresh unless marked stale or the budget
// in force changed.
func (c *Core) allocate(now time.Time) power.Allocation {
	w := c.budgetW(now)
	if c.pw.cache != nil && !c.pw.stale && !now.Before(c.pw.cacheAt) && now.Sub(c.pw.cacheAt) < allocRefresh && w == c.pw.cacheW {
		return *c.pw.cache
	}
	c.pw.cacheW = w
	in := c.allocInput(now)
	key := fingerprint(in)
	if c.pw.cache == nil || c.pw.cacheKey != key {
		a := power.Allocate(in)
		c.pw.cache, c.pw.cacheKey, c.pw.fresh = &a, key, true
	}
	c.pw.cacheAt, c.pw.stale = now, false
	return *c.pw.cache
}

// fingerprint hashes everything power.Allocate reads (FNV-1a over the
// numbers' bits and the strings, in the input's deterministic GPU order).
func fingerprint(in power.AllocInput) uint64 {
	h := uint64(14695981039346656037)
	num := func(f float64) {
		b := math.Float64bits(f)
		for range 8 {
			h = (h ^ (b & 0xff)) * 1099511628211
			b >>= 8
		}
	}
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	num(in.BudgetW)
	num(in.NodeMaxW)
	num(in.MaxSlowdown)
	for _, g := range in.GPUs {
		str(g.Node)
		num(float64(g.Index))
		num(g.MinLimitW)
		num(g.MaxLimitW)
		num(g.IdleW)
		str(g.Job)
		if g.Job != "" {
			j := in.Jobs[g.Job]
			num(j.Curve.UncappedW)
			num(j.Curve.MaxThroughput)
			num(j.Curve.A)
			num(j.Curve.K)
			str(j.Policy)
			if j.Profiling {
				num(1)
			}
		}
	}
	return h
}

// SetBudget validates and installs a power budget. It refuses one below the
// known GPUs' minimum possible draw (budgetFloorW); on error nothing changes.
// A budget with default_w 0 and no windows removes it.
func (c *Core) SetBudget(b api.PowerBudget) (api.PowerBudget, error) {
	p, err := power.CompileBudget(b)
	if err != nil {
		return api.PowerBudget{}, err
	}
	floor, what := c.budgetFloorW()
	_, nodeMin, nodeName := c.minDrawW()
	if err := power.CheckBudgetFloor(p, floor, what, nodeMin, nodeName); err != nil {
		return api.PowerBudget{}, err
	}
	c.pw.budget, c.pw.wattsAt, c.pw.steps = p, time.Time{}, nil
	c.markAllocStale()
	if b.DefaultW == 0 && len(b.Windows) == 0 && b.NodeMaxW == 0 {
		c.pw.budget = nil
		c.markAllocStale()
	}
	return p.Budget(), nil
}

// RestoreBudget installs a budget read back from storage without the floor
// check (the nodes it was checked against may not have registered yet).
func (c *Core) RestoreBudget(b api.PowerBudget) error {
	p, err := power.CompileBudget(b)
	if err != nil {
		return fmt.Errorf("stored power budget: %w", err)
	}
	c.pw.budget, c.pw.wattsAt, c.pw.steps = p, time.Time{}, nil
	c.markAllocStale()
	return nil
}

// budgetFloorW is the least the GPUs can be held to, the floor below which
// SetBudget refuses a budget, and what it is made of. Under a policy that
// suspends idle nodes, a suspended node's GPUs draw nothing and shedIdle
// suspends idle nodes when the budget needs it, so the floor is the largest
// node's GPUs at their minimum limits (any one node can run); otherwise every
// GPU at its minimum limit.
func (c *Core) budgetFloorW() (floorW float64, what string) {
	cluster, node, name := c.minDrawW()
	if c.policy.SuspendIdle {
		return node, fmt.Sprintf("node %s's GPUs at their minimum power limits, the other nodes suspended", name)
	}
	return cluster, "every GPU at its minimum power limit"
}

// minDrawW sums the minimum limits of every known GPU, and finds the node
// with the largest such sum.
func (c *Core) minDrawW() (clusterW, nodeW float64, node string) {
	for _, name := range c.sortedNodeNames() {
		var sum float64
		for _, g := range c.nodes[name].GPUs {
			sum += g.MinLimitW
		}
		clusterW += sum
		if sum > nodeW {
			nodeW, node = sum, name
		}
	}
	return clusterW, nodeW, node
}

// BudgetStatus is the budget with what is in force and measured now.
func (c *Core) BudgetStatus(now time.Time) api.PowerBudgetStatus {
	w, win := c.pw.budget.WattsAt(now)
	min, _ := c.budgetFloorW()
	a := c.allocate(now)
	return api.PowerBudgetStatus{
		Budget: c.pw.budget.Budget(), WattsNow: w, Window: win,
		MeasuredW: c.measuredW(), AllocatedW: a.DrawW + c.uncappedW(), MinDrawW: min,
		OverBudgetS: c.pw.overBudget.Seconds(),
	}
}

// measuredW is the sum of the up nodes' GPU draw at their last heartbeat.
func (c *Core) measuredW() float64 {
	var sum float64
	for _, n := range c.nodes {
		if n.State != api.NodeUp {
			continue
		}
		for _, g := range n.GPUs {
			sum += g.PowerW
		}
	}
	return sum
}

// uncappedW is the measured draw of up GPUs that report no limit
// constraints: they cannot be capped, so their draw is taken off the budget.
func (c *Core) uncappedW() float64 {
	var sum float64
	for _, n := range c.nodes {
		if n.State != api.NodeUp {
			continue
		}
		for _, g := range n.GPUs {
			if !cappable(g) {
				sum += g.PowerW
			}
		}
	}
	return sum
}

func cappable(g api.GPU) bool {
	return g.MaxLimitW > 0 && g.MinLimitW > 0 && g.MinLimitW <= g.MaxLimitW
}

// accountBudget adds the time since the last account to the over-budget
// time if the measured draw (as of the last heartbeats) was above the budget
// then in force.
func (c *Core) accountBudget(now time.Time) {
	if !c.pw.at.IsZero() && now.After(c.pw.at) {
		if w, _ := c.pw.budget.WattsAt(c.pw.at); w > 0 && c.measuredW() > w {
			c.pw.overBudget += now.Sub(c.pw.at)
		}
	}
	if now.After(c.pw.at) {
		c.pw.at = now
	}
}

// sortedNodeNames lists every known node's name, sorted.
func (c *Core) sortedNodeNames() []string {
	names := make([]string, 0, len(c.nodes))
	for name := range c.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// gpuModel is the power model for a GPU: the calibrated one for its name, or
// one built from its reported constraints.
func (c *Core) gpuModel(g api.GPU) power.Model {
	if m, ok := c.pw.models[g.Model]; ok {
		return m
	}
	if m, err := power.ModelByName(g.Model); err == nil {
		if c.pw.models == nil {
			c.pw.models = map[string]power.Model{}
		}
		c.pw.models[g.Model] = m
		return m
	}
	return power.Model{Name: g.Model, IdleW: 0.1 * g.MaxLimitW, PeakW: 0.7 * g.MaxLimitW,
		MinLimitW: g.MinLimitW, MaxLimitW: g.MaxLimitW, DefaultLimitW: g.MaxLimitW,
		A: power.DefaultCurveA, K: power.DefaultCurveK}
}

func jobUtilization(s api.JobSpec) float64 {
	if s.Workload.Synthetic != nil {
		return s.Workload.Synthetic.Utilization
	}
	return trainUtilization
}

// profiling says whether a running job's agent is still profiling it.
func (c *Core) profiling(j *api.Job) bool {
	return c.Power.Profile && j.PowerCurve == nil && j.ProfileError == ""
}

// allocInput gathers the up nodes' cappable GPUs and the jobs holding them.
func (c *Core) allocInput(now time.Time) power.AllocInput {
	w := c.budgetW(now)
	in := power.AllocInput{Jobs: map[string]power.AllocJob{}, NodeMaxW: c.pw.budget.NodeMaxW(), MaxSlowdown: c.Power.MaxSlowdown}
	if w > 0 {
		in.BudgetW = math.Max(w-c.uncappedW(), 0)
	}
	for _, name := range c.sortedNodeNames() {
		c.addAllocGPUs(&in, c.nodes[name], "")
	}
	return in
}

// nodeAllocInput is allocInput for node n alone, without a budget: its
// GPUs, and the GPUs that each multi-node job on it holds elsewhere (a job
// is held inside the constraints of all its GPUs), nodes in name order as
// in allocInput.
func (c *Core) nodeAllocInput(n *nodeState) power.AllocInput {
	in := power.AllocInput{Jobs: map[string]power.AllocJob{}, MaxSlowdown: c.Power.MaxSlowdown}
	type part struct{ name, job string }
	parts := []part{{n.Name, ""}}
	for id := range n.jobs {
		if j := c.jobs[id]; j != nil {
			for _, other := range j.GangNodes {
				if other != n.Name {
					parts = append(parts, part{other, id})
				}
			}
		}
	}
	slices.SortFunc(parts, func(a, b part) int {
		if a.name != b.name {
			return strings.Compare(a.name, b.name)
		}
		return strings.Compare(a.job, b.job)
	})
	for _, p := range parts {
		if o := c.nodes[p.name]; o != nil {
			c.addAllocGPUs(&in, o, p.job)
		}
	}
	return in
}

// addAllocGPUs adds node n's cappable GPUs to in (only those job holds,
// when job is not empty), with the jobs holding them. A node that is not up,
// or suspended (its GPUs draw nothing), adds none.
func (c *Core) addAllocGPUs(in *power.AllocInput, n *nodeState, job string) {
	if n.State != api.NodeUp || n.power() == api.PowerSuspended {
		return
	}
	for _, g := range n.GPUs {
		id, held := n.holder[g.Index]
		if !cappable(g) || (job != "" && id != job) {
			continue
		}
		m := c.gpuModel(g)
		ag := power.AllocGPU{Node: n.Name, Index: g.Index, MinLimitW: g.MinLimitW, MaxLimitW: g.MaxLimitW, IdleW: m.IdleW}
		if held && c.jobs[id] != nil {
			ag.Job = id
			if _, seen := in.Jobs[id]; !seen {
				in.Jobs[id] = c.allocJob(&c.jobs[id].Job, m)
			}
		}
		in.GPUs = append(in.GPUs, ag)
	}
}

func (c *Core) allocJob(j *api.Job, m power.Model) power.AllocJob {
	aj := power.AllocJob{Policy: j.Spec.EnergyPolicy, Profiling: c.profiling(j)}
	if c.hurries(j) {
		aj.Policy = api.PolicyPerformance
	}
	if pc := j.PowerCurve; pc != nil {
		aj.Curve = power.JobCurve{UncappedW: pc.UncappedW, MaxThroughput: pc.MaxThroughput, A: pc.A, K: pc.K}
	} else {
		aj.Curve = power.ModelCurve(m, jobUtilization(j.Spec))
	}
	return aj
}

// dropPrefix starts the waiting reason of a job refused for a lower budget
// coming before it is expected to end.
const dropPrefix = "waiting for power: the budget drops"

// UnrunnablePrefix starts the waiting reason of a job that cannot run
// under any budget the plan puts in force, however empty the cluster.
const UnrunnablePrefix = "cannot run under the power budget"

// powerAdmits says why a queued job may not start where the placement
// pipeline put it (decision d) under the budget in force ("" if it may):
// with it running, the allocation must fit and leave every running job at
// least AdmitRel of its operating speed, and the job itself AdmitRel, or
// what it would get with the cluster otherwise empty if that is less (a job
// too large for AdmitRel under the budget still runs, alone enough).
//
// Under a policy that suspends idle nodes, awake nodes that hold no job and
// are not in d count as suspended if that is what admits the job: shed
// lists them, and the caller suspends them as it starts the job.
//
// It must also fit, at the GPUs' minimum limits, the lowest budget coming
// before it is expected to end (its runtime estimate, slowed as far as
// admission allows): a window that lowers the budget must not find the
// running jobs unable to get under it.
//
// A job whose GPUs at their minimum limits, with the idle GPUs of its nodes,
// exceed the largest budget the plan ever puts in force can never start: its
// reason starts with UnrunnablePrefix.
//
// Refusals are memoised within a pass twice over. Where no per-node cap is
// in force, by policy and size (refused): a job as large or larger of the
// same policy is taken to be refused too. That is a close approximation,
// not exact (another job's nodes may fit where the first's did not): on
// itp_cluster05 at 12 nodes it moves mean JCT by 0.3 s in 58,145 s, and
// without it a pass over 4,000 queued jobs costs 100 times as much
// (BenchmarkScheduleUnderNodeCap/cluster-only). Then, and under per-node
// caps, by the candidate's whole part of the allocation's input
// (admitMemo), which is exact: it skips only allocations whose answer is
// known (TestAdmitMemoChangesNoDecision).
func (c *Core) powerAdmits(j *jobRec, d *decision, now time.Time) (reason string, shed []*nodeState) {
	w := c.budgetW(now)
	if w <= 0 && c.pw.budget.NodeMaxW() <= 0 {
		return "", nil
	}
	// Admission protects each running job's own operating point, not the
	// full speed it hurries at while jobs wait (Policy.HurryWhenQueued).
	if c.pw.hurry {
		c.pw.hurry = false
		defer func() { c.pw.hurry = true }()
	}
	// Per-node caps make refusals node-specific: no memo by size then.
	bySize := j.PowerCurve == nil && c.pw.budget.NodeMaxW() <= 0
	if r, ok := c.pw.refused[j.Spec.EnergyPolicy]; bySize && ok && j.Spec.GPUs >= r.gpus {
		return r.reason, nil
	}
	// The GPUs it would take: the decision's first free ones.
	m := power.Model{}
	need := j.Spec.GPUs
	taken := map[string]map[int]bool{}
	inD := map[string]bool{}
	for _, n := range d.nodes {
		inD[n.Name] = true
		taken[n.Name] = map[int]bool{}
		for _, g := range n.GPUs {
			if _, busy := n.holder[g.Index]; !busy && need > 0 && cappable(g) {
				taken[n.Name][g.Index] = true
				m = c.gpuModel(g)
				need--
			}
		}
	}
	job := c.allocJob(&j.Job, m)
	// The lowest budget it would run under: its expected runtime, slowed
	// as far as admission lets the budget slow it.
	run := float64(Estimate(j.Spec, j.Progress)) * (1 + c.Power.MaxSlowdown) / math.Max(c.Power.AdmitRel, power.MinRelThroughput)
	lowW, lowAt := c.budgetMinW(now, now.Add(time.Duration(math.Min(run, float64(budgetLookahead)))))

	// A candidate of the same shape was refused in this pass already?
	am := c.admitMemoAt(now)
	key, keyed := am.key(j, d, job, lowW, lowAt)
	if r, ok := am.refusals[key]; keyed && ok {
		c.pw.admitHits++
		if r.selfRel > 0 {
			r.reason = c.slowReason(w, j.ID, r.selfRel)
		}
		return c.refuse(j, bySize, r.reason)
	}
	c.pw.admitMisses++
	refuse := func(reason string, selfRel float64) (string, []*nodeState) {
		if keyed {
			am.refusals[key] = admitRefusal{reason: reason, selfRel: selfRel}
		}
		return c.refuse(j, bySize, reason)
	}

	// The allocation as if the job ran there: the cluster's input, its
	// nodes woken if suspended (their GPUs count again), the job on the
	// GPUs it takes.
	in := am.input()
	for _, n := range d.nodes {
		if n.power() == api.PowerSuspended {
			for _, g := range n.GPUs {
				if cappable(g) {
					in.GPUs = append(in.GPUs, power.AllocGPU{Node: n.Name, Index: g.Index,
						MinLimitW: g.MinLimitW, MaxLimitW: g.MaxLimitW, IdleW: c.gpuModel(g).IdleW})
				}
			}
		}
	}
	// Its own floor: its GPUs at their minimum limits, the rest of its
	// nodes idle.
	var floorW float64
	for i := range in.GPUs {
		g := &in.GPUs[i]
		if taken[g.Node][g.Index] {
			g.Job = j.ID
			floorW += g.MinLimitW
		} else if inD[g.Node] && g.Job == "" {
			floorW += math.Min(g.IdleW, g.MinLimitW)
		}
	}
	if maxW := c.pw.budget.MaxW(); maxW > 0 && floorW > maxW {
		return refuse(fmt.Sprintf("%s: its %d GPUs at their minimum power limits, with the idle GPUs of its nodes, draw %.0f W, above the largest budget of %.0f W; raise the budget or ask for fewer GPUs",
			UnrunnablePrefix, j.Spec.GPUs, floorW, maxW), 0)
	}
	in.Jobs[j.ID] = job
	why, selfRel := c.admits(j, in, w, lowW, lowAt)
	if why == "" {
		return "", nil
	}
	// Under a policy that suspends idle nodes: would it start with the idle
	// nodes outside d suspended?
	if !c.policy.SuspendIdle || w <= 0 {
		return refuse(why, selfRel)
	}
	idle := map[string]bool{}
	for _, n := range c.order {
		if !inD[n.Name] && n.State == api.NodeUp && n.power() == api.PowerOn && len(n.jobs) == 0 {
			idle[n.Name] = true
			shed = append(shed, n)
		}
	}
	if len(shed) == 0 {
		return refuse(why, selfRel)
	}
	in.GPUs = slices.DeleteFunc(in.GPUs, func(g power.AllocGPU) bool { return idle[g.Node] })
	if why, selfRel := c.admits(j, in, w, lowW, lowAt); why != "" {
		return refuse(why, selfRel)
	}
	return "", shed
}

// refuse records a refusal of job j in the memo by policy and size (when
// bySize says it applies) and returns it. A refusal for a coming budget
// drop depends on the job's runtime, not only its size: not recorded there.
func (c *Core) refuse(j *jobRec, bySize bool, reason string) (string, []*nodeState) {
	if bySize && !strings.HasPrefix(reason, dropPrefix) {
		if c.pw.refused == nil {
			c.pw.refused = map[string]refusal{}
		}
		if r, ok := c.pw.refused[j.Spec.EnergyPolicy]; !ok || j.Spec.GPUs < r.gpus {
			c.pw.refused[j.Spec.EnergyPolicy] = refusal{j.Spec.GPUs, reason}
		}
	}
	return reason, nil
}

// forgetRefusals starts a pass: power refusals hold within one pass.
func (c *Core) forgetRefusals() {
	c.pw.refused = nil
	c.pw.admit.valid = false
}

// admitMemoAt is the admission memo for the cluster as it is at now,
// started afresh when anything an allocation reads changed since it was
// built (markAllocStale), at another instant, or in another pass; with
// admitMemoOff, for every candidate (as before the memo).
func (c *Core) admitMemoAt(now time.Time) *admitMemo {
	a := &c.pw.admit
	if !a.valid || a.gen != c.pw.gen || !a.at.Equal(now) || c.pw.admitMemoOff {
		base := c.allocInput(now)
		*a = admitMemo{valid: true, gen: c.pw.gen, at: now, base: base,
			ids: slices.Sorted(maps.Keys(base.Jobs)), refusals: map[admitKey]admitRefusal{}}
	}
	return a
}

// key is candidate j's key, for decision d with power behaviour job and
// the lowest coming budget lowW at lowAt; false if it has none (it holds
// GPUs already, so the cluster's input is not without it).
func (a *admitMemo) key(j *jobRec, d *decision, job power.AllocJob, lowW float64, lowAt time.Time) (admitKey, bool) {
	rank, found := slices.BinarySearch(a.ids, j.ID)
	if found {
		return admitKey{}, false
	}
	nodes := make([]byte, 0, 8*len(d.nodes))
	for _, n := range d.nodes {
		nodes = strconv.AppendInt(append(nodes, ','), int64(n.ord), 10)
	}
	return admitKey{nodes: string(nodes), need: j.Spec.GPUs, job: job, lowW: lowW,
		lowAtS: lowAt.Unix(), lowAtNs: int64(lowAt.Nanosecond()), rank: rank}, true
}

// input is a copy of the cluster's allocation input, for one candidate to
// change.
func (a *admitMemo) input() power.AllocInput {
	in := a.base
	in.GPUs = slices.Clone(a.base.GPUs)
	in.Jobs = maps.Clone(a.base.Jobs)
	return in
}

// admits says why the allocation in, which includes job j, refuses it ("" if
// it does not): see powerAdmits. selfRel > 0 says the reason names j itself
// as the job slowed most, to that share of its operating speed.
//
// lowW, when below w, is a lower budget coming at lowAt before the job is
// expected to end: with it running, the GPUs must fit that one too (at
// their minimum limits), or the cluster would be over it at lowAt.
func (c *Core) admits(j *jobRec, in power.AllocInput, w, lowW float64, lowAt time.Time) (why string, selfRel float64) {
	a := power.Allocate(in)
	if !a.Fits {
		return fmt.Sprintf("waiting for power: with it running the GPUs' minimum draw exceeds the %.0f W budget in force", w), 0
	}
	if lowW > 0 && lowW < w {
		low := in
		low.BudgetW = math.Max(lowW-c.uncappedW(), 0)
		if !power.Allocate(low).Fits {
			return fmt.Sprintf("%s to %.0f W at %s, before it is expected to end, and with it running the GPUs' minimum draw would exceed that",
				dropPrefix, lowW, clockAt(lowAt)), 0
		}
	}
	worst, who := 1.0, ""
	for id, rel := range a.JobRel {
		need := c.Power.AdmitRel
		if id == j.ID && rel < need {
			// What it would get with no other job running: its own GPUs
			// and the idle GPUs of its nodes only.
			var alone power.AllocInput = in
			alone.GPUs = nil
			nodes := map[string]bool{}
			for _, g := range in.GPUs {
				if g.Job == j.ID {
					nodes[g.Node] = true
				}
			}
			for _, g := range in.GPUs {
				if nodes[g.Node] {
					if g.Job != j.ID {
						g.Job = ""
					}
					alone.GPUs = append(alone.GPUs, g)
				}
			}
			if r, ok := power.Allocate(alone).JobRel[j.ID]; ok {
				need = math.Min(need, r-1e-9)
			}
		}
		if rel < need && (rel < worst || (rel == worst && id < who)) {
			worst, who = rel, id
		}
	}
	if who == "" {
		return "", 0
	}
	if who == j.ID {
		selfRel = worst
	}
	return c.slowReason(w, who, worst), selfRel
}

// slowReason is the reason a job waits when starting it would slow job
// who to rel of its operating speed under the budget w.
func (c *Core) slowReason(w float64, who string, rel float64) string {
	return fmt.Sprintf("waiting for power: under the %.0f W budget in force, starting it would slow %s to %.0f%% of its operating speed (a job starts only if every job keeps %.0f%%)",
		w, who, 100*rel, 100*c.Power.AdmitRel)
}

// shedIdle suspends awake nodes that hold no job when the budget in force
// needs their watts: when the allocation does not fit, or holds running jobs
// below their operating points, as many nodes (idle longest first, then by
// name) as give back the watts those jobs miss. Only under a policy that
// suspends idle nodes: the budget overrides their idle timeout. Changed nodes
// go into ch.
func (c *Core) shedIdle(now time.Time, ch *Changes) {
	if !c.policy.SuspendIdle {
		return
	}
	if c.budgetW(now) <= 0 {
		return
	}
	a := c.allocate(now)
	missW := 0.0
	if !a.Fits {
		missW = math.Inf(1)
	}
	for id, l := range a.JobLimitW {
		if t := a.JobTargetW[id]; l < t {
			if j := c.jobs[id]; j != nil {
				missW += (t - l) * float64(j.Spec.GPUs)
			}
		}
	}
	if !(missW > 1e-6) {
		return
	}
	var idle []*nodeState
	for _, n := range c.order {
		if n.State == api.NodeUp && n.power() == api.PowerOn && len(n.jobs) == 0 && !c.keepAwake[n] {
			idle = append(idle, n)
		}
	}
	slices.SortStableFunc(idle, func(x, y *nodeState) int { return x.idleSince.Compare(y.idleSince) })
	for _, n := range idle {
		if !(missW > 1e-6) {
			break
		}
		for _, g := range n.GPUs {
			if cappable(g) {
				missW -= math.Min(c.gpuModel(g).IdleW, g.MinLimitW)
			}
		}
		c.suspend(n, now, ch)
	}
}

// forPower is the preemptedBy of a job stopped by shedJobs: for no other job,
// for the power budget.
const forPower = "(power budget)"

// shedJobs stops running jobs when the budget in force cannot hold even
// their GPUs at their minimum limits once idle nodes are shed: a budget
// lowered below that (SetBudget's floor under a policy that suspends idle
// nodes is one node's minimum, not the running jobs'), or a window that came
// while jobs ran past the estimate that admitted them. Without it the
// cluster would stay over the budget until jobs ended. Victims go lowest
// priority first, then the most recently started (the least work lost),
// until the allocation without them fits; jobs already stopping count as
// gone, and multi-node jobs are never victims (as in preempt). Each is preempted (a train job checkpoints) and requeued, and waits
// for power like any job. Changed jobs go into ch.
func (c *Core) shedJobs(now time.Time, ch *Changes) {
	w := c.budgetW(now)
	if w <= 0 || c.allocate(now).Fits {
		return
	}
	in := c.allocInput(now)
	gone := func(id string) {
		for i := range in.GPUs {
			if in.GPUs[i].Job == id {
				in.GPUs[i].Job = ""
			}
		}
		delete(in.Jobs, id)
	}
	var running []*jobRec
	for id := range in.Jobs {
		switch j := c.jobs[id]; {
		case j == nil || j.Stopping:
			gone(id)
		case len(j.GangNodes) == 0: // multi-node jobs are never victims, as in preempt
			running = append(running, j)
		}
	}
	slices.SortFunc(running, func(a, b *jobRec) int {
		if a.Spec.Priority != b.Spec.Priority {
			return a.Spec.Priority - b.Spec.Priority
		}
		if a.StartedAt != nil && b.StartedAt != nil && !a.StartedAt.Equal(*b.StartedAt) {
			return b.StartedAt.Compare(*a.StartedAt)
		}
		return b.seq - a.seq
	})
	for _, v := range running {
		if power.Allocate(in).Fits {
			return
		}
		gone(v.ID)
		c.markStopping(v)
		v.preemptedBy = forPower
		v.Reason = fmt.Sprintf("being preempted: the %.0f W power budget in force cannot hold the running jobs' GPUs even at their minimum limits", w)
		c.share.stop(v, now)
		c.markAllocStale()
		ch.addJob(v)
	}
}

// suspend suspends an awake node that holds no job.
func (c *Core) suspend(n *nodeState, now time.Time, ch *Changes) {
	c.setPower(n, api.PowerSuspended, now)
	c.markAllocStale()
	ch.addNode(n)
}

// PowerLimits is each running job's power limit under the budget in force
// at now (the simulator paces jobs with it).
func (c *Core) PowerLimits(now time.Time) map[string]float64 {
	return maps.Clone(c.allocate(now).JobLimitW)
}

// applyLimits gives node n's GPUs their limits and records the running
// jobs' limits (changed jobs go into ch). Which allocation is dispatched here:
//   - no budget and no node cap in force: every GPU's limit is its job's
//     operating point (or its minimum when idle), independent of every other
//     GPU, so only n's GPUs are allocated (plus the other GPUs of a
//     multi-node job on n, whose constraints it shares): O(n's GPUs);
//   - a budget or a node cap in force: limits depend on the whole cluster,
//     so the global allocation (memoised, see allocate) decides.
//
// Both give the same limits where the budget does not bind
// (TestPerNodeAllocationEqualsGlobal).
func (c *Core) applyLimits(n *nodeState, now time.Time, ch *Changes) map[int]float64 {
	if c.budgetW(now) <= 0 && c.pw.budget.NodeMaxW() <= 0 {
		c.pw.perNode = true
		a := power.Allocate(c.nodeAllocInput(n))
		for id := range n.jobs {
			c.recordLimit(c.jobs[id], a, ch)
		}
		return a.LimitsW[n.Name]
	}
	a := c.allocate(now)
	if c.pw.perNode {
		// Jobs' limits were recorded node by node: record them all again.
		c.pw.perNode, c.pw.fresh = false, true
	}
	if c.pw.fresh {
		c.pw.fresh = false
		for _, j := range c.jobs {
			c.recordLimit(j, a, ch)
		}
	}
	return a.LimitsW[n.Name]
}

// recordLimit sets a job's recorded limit from an allocation (0 when it
// holds no allocated GPU) and notes the job in ch if it changed.
func (c *Core) recordLimit(j *jobRec, a power.Allocation, ch *Changes) {
	if j == nil || (j.State != api.StateRunning && j.PowerLimitW == 0) {
		return
	}
	l := a.JobLimitW[j.ID]
	note := ""
	if l > 0 && c.hurries(&j.Job) && j.Spec.EnergyPolicy != api.PolicyPerformance {
		note = HurryNote
	}
	if l != j.PowerLimitW || note != j.PowerNote {
		j.PowerLimitW, j.PowerNote = l, note
		ch.addJob(j)
	}
}

// applyProfile fits a job's profiled limits into its curve (once).
func (c *Core) applyProfile(j *api.Job, r api.JobReport) bool {
	if j.PowerCurve != nil || j.ProfileError != "" {
		return false
	}
	if r.ProfileError != "" {
		j.ProfileError = r.ProfileError
		c.markAllocStale()
		return true
	}
	if len(r.Profile) == 0 {
		return false
	}
	c.markAllocStale() // profiling ends: the job moves to its operating point
	s := make([]power.LimitSample, len(r.Profile))
	for i, p := range r.Profile {
		s[i] = power.LimitSample{LimitW: p.LimitW, Throughput: p.Throughput, PowerW: p.PowerW}
	}
	curve, err := power.FitLimitCurve(s, 0)
	if err != nil {
		j.ProfileError = err.Error()
		return true
	}
	j.PowerCurve = &api.PowerCurve{UncappedW: curve.UncappedW, MaxThroughput: curve.MaxThroughput,
		A: curve.A, K: curve.K, Samples: len(s), From: j.ID}
	return true
}

// inheritCurve gives a new job the curve of the latest earlier job with the
// same name and project that has one.
func (c *Core) inheritCurve(j *jobRec) {
	if r, ok := c.pw.curves[curveKey(j.Spec)]; ok {
		pc := r.curve
		j.PowerCurve = &pc
	}
}

// curveRef is the latest job (by id number) of a name and project with a
// power curve, and that curve: an index, so a submission does not scan every
// job.
type curveRef struct {
	seq   int
	curve api.PowerCurve
}

func curveKey(s api.JobSpec) string { return s.Project + "\x00" + s.Name }

// noteCurve records a job's curve in the index if it is the latest of its
// name and project.
func (c *Core) noteCurve(j *jobRec) {
	if j.PowerCurve == nil {
		return
	}
	k := curveKey(j.Spec)
	if r, ok := c.pw.curves[k]; ok && r.seq >= j.seq {
		return
	}
	if c.pw.curves == nil {
		c.pw.curves = map[string]curveRef{}
	}
	c.pw.curves[k] = curveRef{seq: j.seq, curve: *j.PowerCurve}
}
