package scheduler

import (
	"fmt"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
)

// Heartbeat takes a node's telemetry and job reports, attributes the energy
// its GPUs used since the last heartbeat, updates the jobs, places waiting
// work and returns the node's desired state.
func (c *Core) Heartbeat(node string, hb api.Heartbeat, now time.Time) (api.HeartbeatReply, Changes) {
	var ch Changes
	n := c.nodes[node]
	if n == nil {
		n = &api.Node{Name: node}
		c.nodes[node] = n
	}
	c.meterEnergy(n, hb.GPUs, now, &ch)
	n.GPUs = slices.Clone(hb.GPUs)
	n.State, n.LastHeartbeat = api.NodeUp, now.UTC()

	var stop []string
	reported := map[string]bool{}
	for _, r := range hb.Jobs {
		reported[r.ID] = true
		if c.applyReport(node, r, now, &ch) {
			stop = append(stop, r.ID)
		}
	}
	for id := range c.stopping {
		if j := c.jobs[id]; j != nil && j.Node == node && !reported[id] {
			delete(c.stopping, id) // the agent no longer has it
		}
	}

	sched := c.Schedule(now)
	for _, j := range sched.Jobs {
		ch.addJob(&j)
	}
	ch.Nodes = append(ch.Nodes, *n)
	return c.desired(node, stop), ch
}

// applyReport updates one job from its agent's report and says whether the
// agent should stop it.
func (c *Core) applyReport(node string, r api.JobReport, now time.Time, ch *Changes) (stop bool) {
	j := c.jobs[r.ID]
	switch {
	case j == nil:
		return r.State == api.StateRunning // unknown to us: stop it
	case j.Node != node:
		return r.State == api.StateRunning // placed elsewhere (requeued after a node loss)
	case c.stopping[r.ID]:
		if r.State != api.StateRunning {
			delete(c.stopping, r.ID)
			return false
		}
		return true
	case j.State != api.StateRunning:
		return r.State == api.StateRunning
	}
	if r.State != api.StateRunning {
		delete(c.preempting, r.ID)
	}
	switch r.State {
	case api.StateRunning:
		if r.Progress != nil {
			j.Progress = r.Progress
			ch.addJob(j)
		}
	case api.StateSucceeded, api.StateFailed, api.StatePreempted, api.StateCancelled:
		t := now.UTC()
		j.State, j.Reason, j.FinishedAt = r.State, r.Reason, &t
		if r.Progress != nil {
			j.Progress = r.Progress
		}
		if r.Metrics != nil {
			j.Metrics = r.Metrics
		}
		if r.State == api.StatePreempted {
			// Checkpointed: it goes back to the queue and resumes later.
			j.State, j.FinishedAt, j.Node, j.GPUIndices = api.StateQueued, nil, "", nil
			j.Reason = fmt.Sprintf("preempted on %s (%s); requeued to resume from its checkpoint", node, r.Reason)
		}
		ch.addJob(j)
	}
	return false
}

// desired is the node's desired state: every job placed on it and still
// running, and the jobs to stop.
func (c *Core) desired(node string, stop []string) api.HeartbeatReply {
	reply := api.HeartbeatReply{Run: []api.Assignment{}, Stop: stop}
	n := c.nodes[node]
	for _, j := range c.Jobs() {
		if j.Node != node || j.State != api.StateRunning {
			continue
		}
		if c.preempting[j.ID] {
			reply.Preempt = append(reply.Preempt, j.ID)
			continue
		}
		a := api.Assignment{ID: j.ID, Spec: j.Spec, GPUIndices: j.GPUIndices}
		for _, idx := range j.GPUIndices {
			for _, g := range n.GPUs {
				if g.Index == idx {
					a.GPUUUIDs = append(a.GPUUUIDs, g.UUID)
				}
			}
		}
		reply.Run = append(reply.Run, a)
	}
	for id := range c.stopping {
		if j := c.jobs[id]; j != nil && j.Node == node && !slices.Contains(reply.Stop, id) {
			reply.Stop = append(reply.Stop, id)
		}
	}
	slices.Sort(reply.Stop)
	return reply
}

// Tick marks silent nodes down, requeues their jobs and places waiting work.
func (c *Core) Tick(now time.Time) Changes {
	var ch Changes
	for _, name := range c.nodeNames() {
		n := c.nodes[name]
		if n.State != api.NodeUp || now.Sub(n.LastHeartbeat) <= c.NodeTimeout {
			continue
		}
		n.State = api.NodeDown
		ch.Nodes = append(ch.Nodes, *n)
		for _, j := range c.jobs {
			if j.Node != name {
				continue
			}
			delete(c.stopping, j.ID)
			delete(c.preempting, j.ID)
			if j.State == api.StateRunning {
				j.State, j.Node, j.GPUIndices, j.StartedAt = api.StateQueued, "", nil, nil
				j.Reason = fmt.Sprintf("node %s stopped heartbeating at %s; requeued",
					name, n.LastHeartbeat.Format(time.RFC3339))
				ch.addJob(j)
			}
		}
	}
	sched := c.Schedule(now)
	for _, j := range sched.Jobs {
		ch.addJob(&j)
	}
	return ch
}
