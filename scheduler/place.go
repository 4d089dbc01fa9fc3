package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/joulehq/joule/api"
)

// Schedule places waiting jobs on up nodes, highest priority first, then in
// submission order. The pipeline, per job:
//  1. a deferrable job asks the off-peak planner (PlanStart) whether to wait
//     for a cheaper window that still meets its deadline; if so it is
//     deferred with the plan as its reason;
//  2. place filters the nodes with enough free GPUs and takes the best fit.
//
// A job that does not fit waits with a reason and does not block smaller
// jobs behind it.
func (c *Core) Schedule(now time.Time) Changes {
	var ch Changes
	free := c.freeGPUs()
	for _, j := range c.queue() {
		if j.Spec.Deferrable && c.deferJob(j, now, &ch) {
			continue
		}
		node, gpus, reason := place(j, free)
		if node == "" {
			if j.Reason != reason {
				j.Reason = reason
				ch.addJob(j)
			}
			continue
		}
		t := now.UTC()
		j.State, j.Reason, j.Node, j.GPUIndices, j.StartedAt, j.DeferredUntil = api.StateRunning, "", node, gpus, &t, nil
		free[node] = slices.DeleteFunc(free[node], func(g int) bool { return slices.Contains(gpus, g) })
		ch.addJob(j)
	}
	return ch
}

// queue returns the waiting jobs in the order they are considered.
func (c *Core) queue() []*api.Job {
	var q []*api.Job
	for _, j := range c.jobs {
		if j.State == api.StateQueued || j.State == api.StateDeferred {
			q = append(q, j)
		}
	}
	slices.SortFunc(q, func(a, b *api.Job) int {
		return cmp.Or(
			cmp.Compare(b.Spec.Priority, a.Spec.Priority),
			a.SubmittedAt.Compare(b.SubmittedAt),
			cmp.Compare(jobSeq(a.ID), jobSeq(b.ID)))
	})
	return q
}

// freeGPUs lists each up node's free GPU indices, ascending.
func (c *Core) freeGPUs() map[string][]int {
	busy := c.busyGPUs()
	free := map[string][]int{}
	for name, n := range c.nodes {
		if n.State != api.NodeUp {
			continue
		}
		free[name] = []int{}
		for _, g := range n.GPUs {
			if _, taken := busy[name][g.Index]; !taken {
				free[name] = append(free[name], g.Index)
			}
		}
		slices.Sort(free[name])
	}
	return free
}

// place picks a node for one job: filter the nodes with enough free GPUs,
// score each by best fit, take the best (ties go to the first name, so the
// result is deterministic). It returns the waiting reason when none fits.
func place(j *api.Job, free map[string][]int) (node string, gpus []int, reason string) {
	if len(free) == 0 {
		return "", nil, "no node is up; waiting for an agent to register"
	}
	need := j.Spec.GPUs
	best, bestScore := "", -1.0
	largest, largestNode := -1, ""
	for _, name := range sortedKeys(free) {
		n := len(free[name])
		if n > largest {
			largest, largestNode = n, name
		}
		if n < need {
			continue
		}
		if s := bestFitScore(n, need); s > bestScore {
			best, bestScore = name, s
		}
	}
	if best == "" {
		return "", nil, fmt.Sprintf("needs %d GPUs on one node; the largest free block is %d (%s)", need, largest, largestNode)
	}
	return best, slices.Clone(free[best][:need]), ""
}

// bestFitScore is higher when fewer GPUs stay free after placing the job, so
// that whole nodes stay free for large jobs. It lies in (0, 1].
func bestFitScore(freeGPUs, need int) float64 {
	return 1 / float64(1+freeGPUs-need)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
