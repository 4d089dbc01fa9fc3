package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
)

// DefaultNodeTimeout is how long a node may stay silent before it is marked
// down and its jobs are requeued.
const DefaultNodeTimeout = 30 * time.Second

// Core holds the scheduler's state. It is not safe for concurrent use: the
// daemon serialises events through it, the simulator drives it from one
// goroutine.
//
// The data structures are built for a scheduling pass that costs in
// proportion to the jobs it places, not to the size of the cluster or queue:
//   - the queue is one sorted slice per (user, project) account, merged
//     lazily by a heap, so a pass reads only the jobs it examines; fair
//     share moves a whole account up or down, so it is recomputed once per
//     pass (at most every shareInterval), never per comparison;
//   - awake nodes are indexed by (GPU model, free GPUs) in bitsets over
//     their ordinal by name, so feasibility is "first set bit at or after
//     the node's position" in the buckets with enough free GPUs;
//   - each node keeps the jobs it holds, so a heartbeat touches one node.
type Core struct {
	jobs map[string]*jobRec
	// jobIndex keeps the jobs in submission order for ListJobs.
	jobIndex jobIndex
	nodes    map[string]*nodeState
	nextID   int
	// NodeTimeout: a node silent for longer is marked down; 0 never.
	NodeTimeout time.Duration

	policy Policy

	// order lists the nodes by name; a node's ord is its position.
	order      []*nodeState
	orderDirty bool
	// models maps a GPU model name to its index in modelList; awake[m][f]
	// holds the ords of up, awake nodes of model m with f free GPUs, asleep[m]
	// the suspended ones.
	models    map[string]int
	modelList []modelInfo
	awake     [][]bitset
	asleep    []bitset
	// avail counts the GPUs a pass could still use: free on indexed awake
	// nodes plus all of the suspended ones.
	avail int

	queue queue
	share fairShare
	// est learns runtime estimates per account from finished jobs.
	est map[string]*estimate
	// reasons caches waiting reasons within one pass.
	reasons map[reasonKey]string
	// lastRes is the last pass's reservation, for tests.
	lastRes *reservation
	// resGen counts changes to what a reservation is computed from (jobs
	// placed or released, stopping marks, node state, power and GPUs);
	// resMemo is the last reservation computed (backfill.go).
	resGen  int
	resMemo resMemo
	// keepAwake holds the nodes reserved for an urgent deferrable job in
	// the last pass (offpeak.go, holdForUrgent): they are not suspended
	// while it waits for them.
	keepAwake map[*nodeState]bool
	// freed says GPUs were freed or a node came up since the last pass.
	freed bool
	// tariff prices energy and drives off-peak planning; planned[id] is the
	// planGen a deferred job's plan was made in.
	tariff  *tariff.Plan
	planned map[string]int
	planGen int
	// waitingDeferrable holds the deferrable jobs enqueued (queued or
	// deferred); entries that left the queue are dropped lazily.
	waitingDeferrable map[string]*jobRec
	// CheckpointAtPeak: at a tariff window edge, a running deferrable train
	// job that would finish cheaper later (deadline still met) is
	// checkpointed, requeued and deferred; preempting holds those asked.
	CheckpointAtPeak bool
	preempting       map[string]bool
	// stoppingOn counts, per node, the jobs being stopped on it.
	stoppingOn map[*nodeState]int
	// runPrio and runDeferrable count placed single-node jobs by priority
	// (0..100), so preemption knows at once whether any victim exists.
	runPrio, runDeferrable [101]int
	// Power tunes power capping (power.go); pw is its state.
	Power PowerConfig
	pw    powerState
}

type modelInfo struct {
	name  string
	model power.Model
	// size is the most GPUs any node of this model has; gpus how many
	// GPUs all its nodes have together.
	size, gpus int
}

// jobRec is a job and the core's bookkeeping for it.
type jobRec struct {
	api.Job
	seq int
	// qgen identifies the job's current queue entry; older entries are
	// stale (the job was placed and later requeued).
	qgen int
	acct *account
	// estEnd is when the job is expected to end, fixed when it starts.
	estEnd time.Time
	// preemptedBy is the job this one is being stopped for; it is requeued
	// once its agent reports it stopped.
	preemptedBy string
	// yieldTo is the job this one was preempted for: once requeued it does
	// not start while that job still waits, or it would take back the GPUs
	// it was stopped to free and be preempted again, over and over.
	yieldTo string
	// requeued says why a waiting job was taken off its node ("requeued:
	// node X down at T ..."); it leads the waiting reason until it starts.
	requeued string
}

// nodeState is a node and its placement bookkeeping.
type nodeState struct {
	api.Node
	ord   int
	model int
	// holder maps a busy GPU index to the job holding it.
	holder map[int]string
	// jobs are the jobs placed on this node (running or stopping).
	jobs map[string]struct{}
	// runs are the same jobs with the GPUs each holds here, for the
	// backfill reservation (a slice: it is scanned for every node).
	runs []nodeRun
	// availed is what this node adds to Core.avail while indexed.
	availed   int
	idleSince time.Time
	readyAt   time.Time
}

type nodeRun struct {
	j    *jobRec
	gpus int
}

func (n *nodeState) total() int { return len(n.GPUs) }
func (n *nodeState) free() int  { return len(n.GPUs) - len(n.holder) }
func (n *nodeState) power() string {
	if n.Power == "" {
		return api.PowerOn
	}
	return n.Power
}

// defaultPlan is the flat default tariff; it always compiles.
var defaultPlan = func() *tariff.Plan {
	p, err := tariff.Compile(tariff.Default())
	if err != nil {
		panic(err)
	}
	return p
}()

// New returns an empty core running the default policy.
func New() *Core {
	p, _ := PolicyByName(DefaultPolicy)
	c, _ := NewWithPolicy(p)
	return c
}

// NewWithPolicy returns an empty core running policy p.
func NewWithPolicy(p Policy) (*Core, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Core{
		jobs:              map[string]*jobRec{},
		nodes:             map[string]*nodeState{},
		nextID:            1,
		NodeTimeout:       DefaultNodeTimeout,
		policy:            p,
		models:            map[string]int{},
		queue:             newQueue(),
		share:             fairShare{users: map[string]*usage{}, projects: map[string]*usage{}, halfLife: p.FairShareHalfLife},
		est:               map[string]*estimate{},
		tariff:            defaultPlan,
		planned:           map[string]int{},
		waitingDeferrable: map[string]*jobRec{},
		keepAwake:         map[*nodeState]bool{},
		preempting:        map[string]bool{},
		Power:             DefaultPowerConfig(),
	}, nil
}

// Policy returns the policy the core runs.
func (c *Core) Policy() Policy { return c.policy }

// Restore loads state read back from storage.
func (c *Core) Restore(jobs []api.Job, nodes []api.Node) {
	for i := range nodes {
		n := c.addNode(nodes[i].Name)
		gpus := n.GPUs
		n.Node = nodes[i]
		if n.GPUs == nil {
			n.GPUs = gpus
		}
		if n.ReadyAt != nil {
			n.readyAt = *n.ReadyAt
		}
		c.setGPUs(n, n.GPUs)
	}
	for i := range jobs {
		j := &jobRec{Job: jobs[i], seq: jobSeq(jobs[i].ID)}
		j.acct = c.queue.account(j.Spec.User, j.Spec.Project)
		c.jobs[j.ID] = j
		c.jobIndex.add(j)
		c.noteCurve(j)
		if j.seq >= c.nextID {
			c.nextID = j.seq + 1
		}
		switch {
		case j.State == api.StateQueued || j.State == api.StateDeferred:
			if strings.HasPrefix(j.Reason, requeuedPrefix) {
				j.requeued, _, _ = strings.Cut(j.Reason, "; ")
			}
			c.enqueue(j)
		case j.State == api.StateRunning && j.Node != "":
			// A preemption in flight is decided again after a restart.
			j.Stopping = false
			c.hold(j, j.StartedAtOr(time.Time{}))
		case j.Stopping && j.Node != "":
			// Cancelled while its agent still ran it: hold its GPUs until
			// the agent says it stopped, or the node is declared down.
			j.Stopping = false
			at := j.StartedAtOr(time.Time{})
			c.hold(j, at)
			c.share.stop(j, at) // its share ended when it was cancelled
			c.markStopping(j)
		}
	}
	c.jobIndex.sort()
	c.orderDirty = true
}

// requeuedPrefix starts the reason of a job requeued after its node went down.
const requeuedPrefix = "requeued: "

func jobSeq(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "j-"))
	if err != nil {
		return 0
	}
	return n
}

// Job returns a copy of one job.
func (c *Core) Job(id string) (api.Job, bool) {
	j, ok := c.jobs[id]
	if !ok {
		return api.Job{}, false
	}
	return j.Job, true
}

// Jobs returns copies of all jobs in submission order, for callers that
// need every job (tests, the simulator). A request handler should take a
// page with ListJobs instead: copying every job holds the daemon's lock in
// proportion to the whole history.
func (c *Core) Jobs() []api.Job {
	recs := make([]*jobRec, 0, len(c.jobs))
	for _, j := range c.jobs {
		recs = append(recs, j)
	}
	slices.SortFunc(recs, func(a, b *jobRec) int { return a.seq - b.seq })
	out := make([]api.Job, len(recs))
	for i, j := range recs {
		out[i] = j.Job
	}
	return out
}

// JobStats is the jobs counted by state, with their energy added up by user
// and by project.
type JobStats struct {
	ByState          map[string]int
	EnergyJByUser    map[string]float64
	EnergyJByProject map[string]float64
}

// JobStats adds up every job without copying any: /metrics reads it under
// the core's lock on each scrape, where Jobs (a sorted copy of each job) held
// the lock 13 ms with 20,000 jobs.
func (c *Core) JobStats() JobStats {
	st := JobStats{ByState: map[string]int{}, EnergyJByUser: map[string]float64{}, EnergyJByProject: map[string]float64{}}
	for _, j := range c.jobs {
		st.ByState[j.State]++
		st.EnergyJByUser[j.Spec.User] += j.EnergyJ
		st.EnergyJByProject[j.Spec.Project] += j.EnergyJ
	}
	return st
}

// Nodes returns copies of all nodes ordered by name.
func (c *Core) Nodes() []api.Node {
	c.reorder()
	out := make([]api.Node, 0, len(c.order))
	for _, n := range c.order {
		out = append(out, n.Node)
	}
	return out
}

// NodeLoad is a node's load and power state, for the simulator's energy
// accounting: cheaper than Nodes, which copies every GPU.
type NodeLoad struct {
	Name        string
	Model       string
	Total, Busy int
	Power       string
	Up          bool
}

// Loads returns every node's load, ordered by name.
func (c *Core) Loads() []NodeLoad {
	c.reorder()
	out := make([]NodeLoad, len(c.order))
	for i, n := range c.order {
		out[i] = NodeLoad{Name: n.Name, Model: c.modelList[n.model].name, Total: n.total(),
			Busy: len(n.holder), Power: n.power(), Up: n.State == api.NodeUp}
	}
	return out
}

// Submit queues a new job. The spec must already be validated. It refuses a
// job that no known node could ever hold.
func (c *Core) Submit(spec api.JobSpec, now time.Time) (api.Job, error) {
	if err := c.feasible(spec); err != nil {
		return api.Job{}, err
	}
	j := &jobRec{Job: api.Job{
		ID:          "j-" + strconv.Itoa(c.nextID),
		Spec:        spec,
		State:       api.StateQueued,
		Reason:      "waiting for the next scheduling pass",
		SubmittedAt: now.UTC(),
	}, seq: c.nextID}
	j.acct = c.queue.account(spec.User, spec.Project)
	c.nextID++
	c.inheritCurve(j)
	c.jobs[j.ID] = j
	c.jobIndex.add(j)
	c.noteCurve(j)
	c.enqueue(j)
	return j.Job, nil
}

// feasible refuses a job bigger than every node (unless the policy places
// multi-node jobs on whole nodes). With no node known yet it accepts: nodes
// may register after the first submissions.
func (c *Core) feasible(spec api.JobSpec) error {
	if len(c.nodes) == 0 {
		return nil
	}
	largest, totalGPUs := 0, 0
	for _, m := range c.modelList {
		largest = max(largest, m.size)
		totalGPUs += m.gpus
	}
	if spec.GPUs <= largest {
		return nil
	}
	if c.policy.MultiNode && spec.GPUs <= totalGPUs {
		return nil
	}
	name := ""
	for _, n := range c.nodes {
		if n.total() == largest && (name == "" || n.Name < name) {
			name = n.Name
		}
	}
	return &api.FieldError{Field: "gpus", Msg: fmt.Sprintf(
		"no node has %d GPUs; the largest has %d (%s). A job runs on one node: ask for at most %d",
		spec.GPUs, largest, name, largest)}
}

// ErrNotFound is returned for an unknown job id.
type ErrNotFound struct{ ID string }

func (e ErrNotFound) Error() string { return fmt.Sprintf("job %s not found", e.ID) }

// Cancel cancels a job. A running job is stopped on its node at the next
// heartbeat; its GPUs stay taken until the agent reports it stopped.
func (c *Core) Cancel(id string, now time.Time) (api.Job, error) {
	j, ok := c.jobs[id]
	if !ok {
		return api.Job{}, ErrNotFound{id}
	}
	if api.Terminal(j.State) {
		return j.Job, fmt.Errorf("job %s already %s; nothing to cancel", id, j.State)
	}
	if j.State == api.StateRunning && !j.Stopping {
		c.share.stop(j, now)
	}
	if j.State == api.StateRunning {
		c.markStopping(j)
		j.preemptedBy = ""
	}
	if j.State == api.StateQueued || j.State == api.StateDeferred {
		j.dequeued()
	}
	delete(c.preempting, id)
	t := now.UTC()
	j.State, j.Reason, j.FinishedAt = api.StateCancelled, "cancelled by user", &t
	return j.Job, nil
}

// Changes lists what an event changed, for the daemon to store before it
// answers.
type Changes struct {
	Jobs  []api.Job
	Nodes []api.Node
	// Usage is the energy, cost and CO2 metered, one row per day and job (or
	// node, for idle energy); storage adds it to its per-day totals.
	Usage []api.Usage
	// Telemetry says the event changed only telemetry: energy, cost and CO2
	// metered from the GPUs' cumulative counters, the counters themselves,
	// progress, last-heartbeat times and derived power limits. No job or node
	// changed state. The daemon may store such changes later, in one flush
	// with the node's counters: a crash loses an interval that the next
	// heartbeat's counter delta attributes again. False (the zero value)
	// means the changes must be stored before the event is answered.
	Telemetry bool
	// index finds a job in Jobs.
	index map[string]int
}

func (ch *Changes) addJob(j *jobRec) {
	if i, ok := ch.index[j.ID]; ok {
		ch.Jobs[i] = j.Job
		return
	}
	if ch.index == nil {
		ch.index = map[string]int{}
	}
	ch.index[j.ID] = len(ch.Jobs)
	ch.Jobs = append(ch.Jobs, j.Job)
}

func (ch *Changes) addNode(n *nodeState) {
	for i := range ch.Nodes {
		if ch.Nodes[i].Name == n.Name {
			ch.Nodes[i] = n.Node
			return
		}
	}
	ch.Nodes = append(ch.Nodes, n.Node)
}

// Merge adds another event's changes to ch; the result is telemetry only
// if both were.
func (ch *Changes) Merge(o Changes) {
	ch.Telemetry = ch.Telemetry && o.Telemetry
	for i := range o.Jobs {
		j := o.Jobs[i]
		if k, ok := ch.index[j.ID]; ok {
			ch.Jobs[k] = j
			continue
		}
		if ch.index == nil {
			ch.index = map[string]int{}
		}
		ch.index[j.ID] = len(ch.Jobs)
		ch.Jobs = append(ch.Jobs, j)
	}
	for i := range o.Nodes {
		found := false
		for k := range ch.Nodes {
			if ch.Nodes[k].Name == o.Nodes[i].Name {
				ch.Nodes[k], found = o.Nodes[i], true
			}
		}
		if !found {
			ch.Nodes = append(ch.Nodes, o.Nodes[i])
		}
	}
	for _, u := range o.Usage {
		ch.addUsage(u)
	}
}

func (ch *Changes) addUsage(u api.Usage) {
	for i := range ch.Usage {
		if ch.Usage[i].Key() == u.Key() {
			ch.Usage[i].Add(u)
			return
		}
	}
	ch.Usage = append(ch.Usage, u)
}

// StartedAtOr returns the start time, or def when the job has none.
func (j *jobRec) StartedAtOr(def time.Time) time.Time {
	if j.StartedAt == nil {
		return def
	}
	return *j.StartedAt
}
