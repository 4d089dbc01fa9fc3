package scheduler

import (
	"slices"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// addNode returns the node of that name, creating it (down, no GPUs) when it
// is new. A new node changes every ord, so the index is rebuilt lazily.
func (c *Core) addNode(name string) *nodeState {
	if n := c.nodes[name]; n != nil {
		return n
	}
	n := &nodeState{Node: api.Node{Name: name, State: api.NodeDown}, holder: map[int]string{},
		jobs: map[string]struct{}{}, model: -1}
	c.nodes[name] = n
	c.order = append(c.order, n)
	c.orderDirty = true
	c.resGen++
	return n
}

// modelOf returns the index of a GPU model name, registering it. A name the
// power package does not know gets the H100 model's figures: the energy
// scorer then ranks such nodes like H100s.
func (c *Core) modelOf(name string) int {
	if i, ok := c.models[name]; ok {
		return i
	}
	m, err := power.ModelByName(name)
	if err != nil {
		m, _ = power.ModelFor("h100")
		m.Name = name
	}
	c.models[name] = len(c.modelList)
	c.modelList = append(c.modelList, modelInfo{name: name, model: m})
	c.awake = append(c.awake, nil)
	c.asleep = append(c.asleep, nil)
	return len(c.modelList) - 1
}

// setGPUs records a node's GPUs (from a heartbeat) and its model.
func (c *Core) setGPUs(n *nodeState, gpus []api.GPU) {
	c.unindex(n)
	if n.model >= 0 {
		c.modelList[n.model].gpus -= len(n.GPUs)
	}
	n.GPUs = slices.Clone(gpus)
	name := ""
	if len(gpus) > 0 {
		name = gpus[0].Model
	}
	n.model = c.modelOf(name)
	c.modelList[n.model].size = max(c.modelList[n.model].size, len(gpus))
	c.modelList[n.model].gpus += len(gpus)
	c.index(n)
}

// reorder sorts the nodes by name and rebuilds the index when a node was
// added since the last call.
func (c *Core) reorder() {
	if !c.orderDirty {
		return
	}
	c.orderDirty = false
	slices.SortFunc(c.order, func(a, b *nodeState) int { return strings.Compare(a.Name, b.Name) })
	for m := range c.awake {
		c.awake[m] = nil
		c.asleep[m] = nil
	}
	c.avail = 0
	for _, n := range c.order {
		n.availed = 0
	}
	for i, n := range c.order {
		n.ord = i
		if n.model < 0 {
			n.model = c.modelOf("")
		}
		c.index(n)
	}
}

// indexed says whether a node belongs in the placement index, and where.
func (c *Core) index(n *nodeState) {
	if c.orderDirty || n.model < 0 || n.State != api.NodeUp {
		return
	}
	if n.power() == api.PowerSuspended {
		c.asleep[n.model].set(n.ord)
		n.availed = n.total()
		c.avail += n.availed
		return
	}
	n.availed = n.free()
	c.avail += n.availed
	b := c.awake[n.model]
	for len(b) <= n.total() {
		b = append(b, nil)
	}
	b[n.free()].set(n.ord)
	c.awake[n.model] = b
}

func (c *Core) unindex(n *nodeState) {
	if c.orderDirty || n.model < 0 {
		return
	}
	c.asleep[n.model].clear(n.ord)
	for _, b := range c.awake[n.model] {
		b.clear(n.ord)
	}
	c.avail -= n.availed
	n.availed = 0
}

// hold marks the GPUs of a placed job as taken on its node(s).
func (c *Core) hold(j *jobRec, now time.Time) {
	j.estEnd = j.StartedAtOr(now).Add(c.estimateOf(j))
	c.countRun(j, +1)
	c.resGen++
	for i, name := range j.nodeNames() {
		n := c.nodes[name]
		if n == nil {
			n = c.addNode(name)
		}
		c.unindex(n)
		held := 0
		if i == 0 && len(j.GangNodes) == 0 {
			for _, g := range j.GPUIndices {
				n.holder[g] = j.ID
				held++
			}
		} else {
			for _, g := range n.GPUs {
				n.holder[g.Index] = j.ID
				held++
			}
		}
		n.jobs[j.ID] = struct{}{}
		n.runs = append(n.runs, nodeRun{j, held})
		c.index(n)
	}
	c.share.start(j, now)
}

// release frees a job's GPUs on its node(s). A job that was stopping is
// recorded in ch, since its stored stopping mark must be cleared too.
func (c *Core) release(j *jobRec, now time.Time, ch *Changes) {
	c.markAllocStale()
	c.resGen++
	for _, name := range j.nodeNames() {
		n := c.nodes[name]
		if n == nil {
			continue
		}
		c.unindex(n)
		for g, id := range n.holder {
			if id == j.ID {
				delete(n.holder, g)
			}
		}
		delete(n.jobs, j.ID)
		c.freed = true
		n.runs = slices.DeleteFunc(n.runs, func(r nodeRun) bool { return r.j == j })
		if len(n.holder) == 0 {
			n.idleSince = now
		}
		c.index(n)
	}
	c.countRun(j, -1)
	if j.Stopping {
		for _, name := range j.nodeNames() {
			if n := c.nodes[name]; n != nil {
				if c.stoppingOn[n]--; c.stoppingOn[n] <= 0 {
					delete(c.stoppingOn, n)
				}
			}
		}
		j.Stopping = false
		ch.addJob(j)
	}
}

// countRun adds sign to the per-priority counts of placed jobs.
func (c *Core) countRun(j *jobRec, sign int) {
	p := min(max(j.Spec.Priority, 0), 100)
	if len(j.GangNodes) > 0 || j.Node == "" {
		return
	}
	c.runPrio[p] += sign
	if j.Spec.Deferrable {
		c.runDeferrable[p] += sign
	}
}

// markStopping marks a placed job to be stopped; its nodes are remembered
// so that preemption can see at once what is already being freed.
func (c *Core) markStopping(j *jobRec) {
	if j.Stopping {
		return
	}
	j.Stopping = true
	c.resGen++
	if c.stoppingOn == nil {
		c.stoppingOn = map[*nodeState]int{}
	}
	for _, name := range j.nodeNames() {
		if n := c.nodes[name]; n != nil {
			c.stoppingOn[n]++
		}
	}
}

// nodeNames lists the nodes a placed job holds.
func (j *jobRec) nodeNames() []string {
	if len(j.GangNodes) > 0 {
		return j.GangNodes
	}
	if j.Node == "" {
		return nil
	}
	return []string{j.Node}
}

// setPower moves a node to a power state.
func (c *Core) setPower(n *nodeState, state string, now time.Time) {
	c.unindex(n)
	c.resGen++
	t := now.UTC()
	n.Power, n.PowerSince = state, &t
	n.ReadyAt = nil
	if state == api.PowerResuming {
		r := now.Add(c.policy.Node.WakeDelay).UTC()
		n.readyAt, n.ReadyAt = r, &r
	}
	c.index(n)
}
