package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power/tariff"
)

// DefaultNodeTimeout is how long a node may stay silent before it is marked
// down and its jobs are requeued.
const DefaultNodeTimeout = 30 * time.Second

// Core holds the scheduler's state. It is not safe for concurrent use: the
// daemon serialises events through it.
type Core struct {
	jobs   map[string]*api.Job
	nodes  map[string]*api.Node
	nextID int
	// stopping holds cancelled jobs whose agent still runs them; their GPUs
	// stay taken until the agent says they stopped.
	stopping map[string]bool
	// NodeTimeout: a node silent for longer is marked down.
	NodeTimeout time.Duration
	// tariff prices energy and drives off-peak planning; planned[id] is the
	// planGen a deferred job's plan was made in.
	tariff  *tariff.Plan
	planned map[string]int
	planGen int
	// CheckpointAtPeak: at a tariff window edge, a running deferrable train
	// job that would finish cheaper later (deadline still met) is
	// checkpointed, requeued and deferred; preempting holds those asked.
	CheckpointAtPeak bool
	preempting       map[string]bool
}

// defaultPlan is the flat default tariff; it always compiles.
var defaultPlan = func() *tariff.Plan {
	p, err := tariff.Compile(tariff.Default())
	if err != nil {
		panic(err)
	}
	return p
}()

// New returns an empty core.
func New() *Core {
	return &Core{
		jobs:        map[string]*api.Job{},
		nodes:       map[string]*api.Node{},
		stopping:    map[string]bool{},
		planned:     map[string]int{},
		preempting:  map[string]bool{},
		tariff:      defaultPlan,
		nextID:      1,
		NodeTimeout: DefaultNodeTimeout,
	}
}

// Restore loads state read back from storage.
func (c *Core) Restore(jobs []api.Job, nodes []api.Node) {
	for i := range jobs {
		j := jobs[i]
		c.jobs[j.ID] = &j
		if n := jobSeq(j.ID); n >= c.nextID {
			c.nextID = n + 1
		}
	}
	for i := range nodes {
		n := nodes[i]
		c.nodes[n.Name] = &n
	}
}

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
	return *j, true
}

// Jobs returns copies of all jobs in submission order.
func (c *Core) Jobs() []api.Job {
	out := make([]api.Job, 0, len(c.jobs))
	for _, j := range c.jobs {
		out = append(out, *j)
	}
	slices.SortFunc(out, func(a, b api.Job) int { return jobSeq(a.ID) - jobSeq(b.ID) })
	return out
}

// Nodes returns copies of all nodes ordered by name.
func (c *Core) Nodes() []api.Node {
	out := make([]api.Node, 0, len(c.nodes))
	for _, name := range c.nodeNames() {
		out = append(out, *c.nodes[name])
	}
	return out
}

func (c *Core) nodeNames() []string {
	names := make([]string, 0, len(c.nodes))
	for n := range c.nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Submit queues a new job. The spec must already be validated. It refuses a
// job that no known node could ever hold.
func (c *Core) Submit(spec api.JobSpec, now time.Time) (api.Job, error) {
	if err := c.feasible(spec); err != nil {
		return api.Job{}, err
	}
	j := &api.Job{
		ID:          fmt.Sprintf("j-%d", c.nextID),
		Spec:        spec,
		State:       api.StateQueued,
		SubmittedAt: now.UTC(),
	}
	c.nextID++
	c.jobs[j.ID] = j
	return *j, nil
}

// feasible refuses a job bigger than every node. With no node known yet it
// accepts: nodes may register after the first submissions.
func (c *Core) feasible(spec api.JobSpec) error {
	if len(c.nodes) == 0 {
		return nil
	}
	largest, name := 0, ""
	for _, n := range c.Nodes() {
		if len(n.GPUs) > largest {
			largest, name = len(n.GPUs), n.Name
		}
	}
	if spec.GPUs > largest {
		return &api.FieldError{Field: "gpus", Msg: fmt.Sprintf(
			"no node has %d GPUs; the largest has %d (%s). A job runs on one node: ask for at most %d",
			spec.GPUs, largest, name, largest)}
	}
	return nil
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
		return *j, fmt.Errorf("job %s already %s; nothing to cancel", id, j.State)
	}
	if j.State == api.StateRunning {
		c.stopping[id] = true
	}
	delete(c.preempting, id)
	t := now.UTC()
	j.State, j.Reason, j.FinishedAt = api.StateCancelled, "cancelled by user", &t
	return *j, nil
}

// Changes lists what an event changed, for the daemon to store before it
// answers.
type Changes struct {
	Jobs  []api.Job
	Nodes []api.Node
	// Usage is the energy, cost and CO2 metered, one row per day and job (or
	// node, for idle energy); storage adds it to its per-day totals.
	Usage []api.Usage
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

// Merge adds another event's changes to ch.
func (ch *Changes) Merge(o Changes) {
	for i := range o.Jobs {
		ch.addJob(&o.Jobs[i])
	}
	for _, n := range o.Nodes {
		replaced := false
		for i := range ch.Nodes {
			if ch.Nodes[i].Name == n.Name {
				ch.Nodes[i], replaced = n, true
			}
		}
		if !replaced {
			ch.Nodes = append(ch.Nodes, n)
		}
	}
	for _, u := range o.Usage {
		ch.addUsage(u)
	}
}

func (ch *Changes) addJob(j *api.Job) {
	for i := range ch.Jobs {
		if ch.Jobs[i].ID == j.ID {
			ch.Jobs[i] = *j
			return
		}
	}
	ch.Jobs = append(ch.Jobs, *j)
}

// busyGPUs maps node -> GPU index -> job id for every GPU a job holds.
func (c *Core) busyGPUs() map[string]map[int]string {
	busy := map[string]map[int]string{}
	for _, j := range c.jobs {
		if j.Node == "" || !(j.State == api.StateRunning || c.stopping[j.ID]) {
			continue
		}
		if busy[j.Node] == nil {
			busy[j.Node] = map[int]string{}
		}
		for _, g := range j.GPUIndices {
			busy[j.Node][g] = j.ID
		}
	}
	return busy
}
