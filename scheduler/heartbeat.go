package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
)

// Heartbeat takes a node's telemetry and job reports, attributes the energy
// its GPUs used since the last heartbeat, updates the jobs, places waiting
// work when GPUs were freed or the node came up (otherwise the periodic Tick
// does: with thousands of nodes a pass per heartbeat would cost more than
// it decides) and returns the node's desired state. The changes are marked
// Telemetry when nothing but telemetry changed: no job or node changed state.
func (c *Core) Heartbeat(node string, hb api.Heartbeat, now time.Time) (api.HeartbeatReply, Changes) {
	var ch Changes
	n := c.addNode(node)
	// A node that registers, comes back or changes its GPUs is a transition.
	transition := n.State != api.NodeUp || !sameGPUs(n.GPUs, hb.GPUs)
	if transition {
		c.freed = true
		c.resGen++ // its state or GPUs change what a reservation sees
	}
	c.meterEnergy(n, hb.GPUs, now, &ch)
	c.accountBudget(now)
	c.unindex(n)
	if n.State != api.NodeUp {
		c.markAllocStale()
	}
	n.State, n.LastHeartbeat = api.NodeUp, now.UTC()
	if n.idleSince.IsZero() {
		n.idleSince = now
	}
	c.setGPUs(n, hb.GPUs)

	var stop []string
	reported := map[string]string{} // job id: the state the agent reports
	for _, r := range hb.Jobs {
		reported[r.ID] = r.State
		before := markOf(c.jobs[r.ID])
		if c.applyReport(n, r, now, &ch) {
			stop = append(stop, r.ID)
		}
		transition = transition || markOf(c.jobs[r.ID]) != before
	}
	for id := range n.jobs {
		if j := c.jobs[id]; j != nil && j.Stopping && reported[id] == "" {
			c.release(j, now, &ch) // the agent no longer has it
			c.requeuePreempted(j, &ch)
			transition = true
		}
	}

	if c.freed {
		placed := c.Schedule(now)
		transition = transition || len(placed.Jobs) > 0 || len(placed.Nodes) > 0
		ch.Merge(placed)
	}
	ch.addNode(n)
	limits := c.applyLimits(n, now, &ch)
	reply := c.desired(n, stop, reported)
	if len(limits) > 0 && n.power() != api.PowerSuspended {
		reply.LimitsW = maps.Clone(limits) // allocations may be cached: never share their maps
	}
	ch.Telemetry = !transition
	return reply, ch
}

// jobMark is what of a job a heartbeat may change only by a state
// transition; telemetry (energy, progress, limits) is not in it.
type jobMark struct {
	state, node, preemptedBy, profileError string
	stopping, curve                        bool
}

func markOf(j *jobRec) jobMark {
	if j == nil {
		return jobMark{}
	}
	return jobMark{state: j.State, node: j.Node, preemptedBy: j.preemptedBy, profileError: j.ProfileError,
		stopping: j.Stopping, curve: j.PowerCurve != nil}
}

// sameGPUs says whether a heartbeat reports the GPUs the node had (same
// indices, devices and models, in order).
func sameGPUs(had, now []api.GPU) bool {
	if len(had) != len(now) {
		return false
	}
	for i := range had {
		if had[i].Index != now[i].Index || had[i].UUID != now[i].UUID || had[i].Model != now[i].Model {
			return false
		}
	}
	return true
}

// applyReport updates one job from its agent's report and says whether the
// agent should stop it.
func (c *Core) applyReport(n *nodeState, r api.JobReport, now time.Time, ch *Changes) (stop bool) {
	j := c.jobs[r.ID]
	_, here := n.jobs[r.ID]
	switch {
	case j == nil:
		return r.State == api.StateRunning // unknown to us: stop it
	case !here:
		return r.State == api.StateRunning // placed elsewhere (requeued after a node loss)
	case j.Stopping:
		if r.State == api.StateRunning {
			return j.preemptedBy == "" // a preempted one is in the preempt list
		}
		c.release(j, now, ch)
		if r.Progress != nil {
			// Where its checkpoint stands: the planner estimates the rest.
			j.Progress = r.Progress
		}
		if j.preemptedBy != "" && (r.State == api.StateSucceeded || r.State == api.StateFailed) {
			// It ended on its own before the stop reached it.
			t := now.UTC()
			j.State, j.Reason, j.FinishedAt, j.preemptedBy = r.State, r.Reason, &t, ""
			j.Metrics = r.Metrics
			ch.addJob(j)
			return false
		}
		c.requeuePreempted(j, ch)
		return false
	case j.State != api.StateRunning:
		return r.State == api.StateRunning
	}
	if r.State != api.StateRunning {
		delete(c.preempting, r.ID)
	}
	if c.applyProfile(&j.Job, r) {
		c.noteCurve(j)
		ch.addJob(j)
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
		c.learn(j, now)
		c.share.stop(j, now)
		c.release(j, now, ch)
		if r.State == api.StatePreempted {
			// Checkpointed: it goes back to the queue and resumes later.
			j.State, j.FinishedAt, j.Node, j.GPUIndices, j.GangNodes = api.StateQueued, nil, "", nil, nil
			j.Reason = fmt.Sprintf("preempted on %s (%s); requeued to resume from its checkpoint", n.Name, r.Reason)
			c.enqueue(j)
		}
		ch.addJob(j)
		c.touchGang(j, ch)
	}
	return false
}

// touchGang records the other nodes of a multi-node job as changed.
func (c *Core) touchGang(j *jobRec, ch *Changes) {
	for _, name := range j.GangNodes {
		if n := c.nodes[name]; n != nil {
			ch.addNode(n)
		}
	}
}

// desired is the node's desired state: the jobs placed on it that the agent
// does not report running (those it runs already are left out: a reply with
// every job's spec, a thousand times a second, was most of the agents' and a
// good part of the server's JSON work), the jobs to stop, its power state
// and, while it is suspended, the minimum power limit for every GPU
// (restored to the maximum once awake).
func (c *Core) desired(n *nodeState, stop []string, reported map[string]string) api.HeartbeatReply {
	reply := api.HeartbeatReply{Run: []api.Assignment{}, Stop: stop, Power: n.power()}
	if reply.Power == api.PowerResuming {
		reply.Power = api.PowerOn
	}
	ids := make([]string, 0, len(n.jobs))
	for id := range n.jobs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return jobSeq(a) - jobSeq(b) })
	for _, id := range ids {
		j := c.jobs[id]
		if j.Stopping && j.preemptedBy != "" {
			// Preempted for another job: checkpoint, then it is requeued.
			reply.Preempt = append(reply.Preempt, id)
			continue
		}
		if j.Stopping {
			if !slices.Contains(reply.Stop, id) {
				reply.Stop = append(reply.Stop, id)
			}
			continue
		}
		if j.State != api.StateRunning {
			continue
		}
		if c.preempting[id] {
			reply.Preempt = append(reply.Preempt, id)
			continue
		}
		if reported[id] == api.StateRunning {
			continue
		}
		a := api.Assignment{ID: j.ID, Spec: j.Spec, Profile: c.profiling(&j.Job)}
		for _, g := range n.GPUs {
			if n.holder[g.Index] == id {
				a.GPUIndices = append(a.GPUIndices, g.Index)
				a.GPUUUIDs = append(a.GPUUUIDs, g.UUID)
			}
		}
		reply.Run = append(reply.Run, a)
	}
	slices.Sort(reply.Stop)
	switch {
	case n.power() == api.PowerSuspended:
		reply.LimitsW = map[int]float64{}
		for _, g := range n.GPUs {
			if g.MinLimitW > 0 {
				reply.LimitsW[g.Index] = g.MinLimitW
			}
		}
	case n.PowerSince != nil:
		// Woken: undo the suspension's minimum limits.
		for _, g := range n.GPUs {
			if g.MaxLimitW > 0 && g.LimitW < g.MaxLimitW && g.LimitW <= g.MinLimitW {
				if reply.LimitsW == nil {
					reply.LimitsW = map[int]float64{}
				}
				reply.LimitsW[g.Index] = g.MaxLimitW
			}
		}
	}
	return reply
}

// Tick marks silent nodes down and requeues their jobs, moves woken nodes
// to on, suspends nodes idle past the policy's timeout, and places waiting
// work.
func (c *Core) Tick(now time.Time) Changes {
	var ch Changes
	c.reorder()
	for _, n := range c.order {
		if n.State != api.NodeUp {
			continue
		}
		timeout := c.NodeTimeout
		if n.power() == api.PowerResuming {
			timeout += c.policy.Node.WakeDelay
		}
		if c.NodeTimeout > 0 && n.power() != api.PowerSuspended && now.Sub(n.LastHeartbeat) > timeout {
			c.nodeDown(n, now, &ch)
			continue
		}
		c.managePower(n, now, &ch)
	}
	ch.Merge(c.Schedule(now))
	return ch
}

// nodeDown marks a silent node down and requeues its jobs.
func (c *Core) nodeDown(n *nodeState, now time.Time, ch *Changes) {
	c.unindex(n)
	c.resGen++
	n.State = api.NodeDown
	c.markAllocStale()
	ch.addNode(n)
	ids := make([]string, 0, len(n.jobs))
	for id := range n.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		j := c.jobs[id]
		delete(c.preempting, id)
		if j.State == api.StateRunning {
			c.share.stop(j, now)
		}
		c.release(j, now, ch)
		if j.State == api.StateRunning {
			j.State, j.Node, j.GPUIndices, j.GangNodes, j.StartedAt = api.StateQueued, "", nil, nil, nil
			// Kept ahead of every waiting reason until it starts again.
			j.requeued = fmt.Sprintf("requeued: node %s down at %s (no heartbeat since)",
				n.Name, n.LastHeartbeat.UTC().Format(time.RFC3339))
			j.Reason = j.requeued
			c.enqueue(j)
			ch.addJob(j)
		}
	}
}

// managePower moves a woken node to on, and suspends a node that has held
// no job for the idle timeout when the policy says so.
func (c *Core) managePower(n *nodeState, now time.Time, ch *Changes) {
	switch n.power() {
	case api.PowerResuming:
		if !now.Before(n.readyAt) {
			c.setPower(n, api.PowerOn, now)
			if len(n.jobs) == 0 {
				n.idleSince = now
			}
			ch.addNode(n)
		}
	case api.PowerOn:
		if c.policy.SuspendIdle && len(n.jobs) == 0 && !n.idleSince.IsZero() && !c.keepAwake[n] &&
			now.Sub(n.idleSince) >= c.policy.IdleTimeout {
			c.setPower(n, api.PowerSuspended, now)
			ch.addNode(n)
		}
	}
}

// NextTimer is the earliest time after which Tick has power work to do (a
// node to wake or to suspend); false when there is none. The simulator
// uses it to jump its clock; the daemon ticks every second anyway.
func (c *Core) NextTimer() (time.Time, bool) {
	var next time.Time
	for _, n := range c.nodes {
		if n.State != api.NodeUp {
			continue
		}
		var t time.Time
		switch {
		case n.power() == api.PowerResuming:
			t = n.readyAt
		case n.power() == api.PowerOn && c.policy.SuspendIdle && len(n.jobs) == 0 && !n.idleSince.IsZero() && !c.keepAwake[n]:
			t = n.idleSince.Add(c.policy.IdleTimeout)
		default:
			continue
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}

// requeuePreempted puts a job stopped for another one back in the queue: a
// train job resumes from the checkpoint it wrote when stopped.
func (c *Core) requeuePreempted(j *jobRec, ch *Changes) {
	if j.preemptedBy == "" {
		return
	}
	j.State, j.Node, j.GPUIndices, j.GangNodes, j.StartedAt = api.StateQueued, "", nil, nil, nil
	j.Reason = fmt.Sprintf("preempted for job %s; requeued to resume from its checkpoint", j.preemptedBy)
	j.yieldTo = j.preemptedBy
	if j.preemptedBy == forPower {
		j.Reason, j.yieldTo = "preempted to bring the GPUs under a lowered power budget; requeued to resume from its checkpoint", ""
	}
	j.preemptedBy = ""
	c.enqueue(j)
	ch.addJob(j)
}
