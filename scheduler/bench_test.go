package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// benchCluster builds the bench-scheduler.sh setup: nodes x 8 H100 GPUs and
// queued jobs of mixed sizes (1, 2, 4 and 8 GPUs in the ITP traces'
// proportions: 75%, 5%, 8%, 12%) from 50 users in 5 projects.
func benchCluster(b *testing.B, nodes, queued int, policy string) *Core {
	b.Helper()
	p, err := PolicyByName(policy)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewWithPolicy(p)
	if err != nil {
		b.Fatal(err)
	}
	c.NodeTimeout = 0
	for i := range nodes {
		name := fmt.Sprintf("node-%05d", i)
		c.Heartbeat(name, api.Heartbeat{GPUs: gpus(name, 8, 0)}, t0)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range queued {
		s := spec(fmt.Sprintf("b%d", i), benchSize(rng), 40+rng.IntN(21))
		s.User, s.Project = fmt.Sprintf("u%d", rng.IntN(50)), fmt.Sprintf("p%d", rng.IntN(5))
		if _, err := c.Submit(s, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func benchSize(rng *rand.Rand) int {
	switch x := rng.IntN(100); {
	case x < 75:
		return 1
	case x < 80:
		return 2
	case x < 88:
		return 4
	default:
		return 8
	}
}

// cpuTime is the CPU time this process has used (user + system, all
// threads). With -cpu 1 the process runs on one core, so CPU time measures
// the work of one core even when other processes share the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSchedulePass is one scheduling pass over 100,000 queued jobs on
// an empty cluster of 10,000 nodes x 8 GPUs: it places jobs until every GPU
// is taken. It reports placements/s (on one core: run with -cpu 1).
func BenchmarkSchedulePass(b *testing.B) {
	for _, policy := range []string{"energy", "fifo-firstfit"} {
		b.Run(policy, func(b *testing.B) {
			placed, elapsed, cpu := 0, time.Duration(0), time.Duration(0)
			for b.Loop() {
				b.StopTimer()
				c := benchCluster(b, 10000, 100000, policy)
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				ch := c.Schedule(t0.Add(time.Hour))
				elapsed += time.Since(start)
				cpu += cpuTime() - cpu0
				for _, j := range ch.Jobs {
					if j.State == api.StateRunning {
						placed++
					}
				}
			}
			b.ReportMetric(float64(placed)/elapsed.Seconds(), "placements/s")
			b.ReportMetric(float64(placed)/cpu.Seconds(), "placements/cpu-s")
			b.ReportMetric(float64(placed)/float64(b.N), "placed/pass")
		})
	}
}

// BenchmarkDecision is the latency of one scheduling decision in steady
// state: on the full cluster with the rest of the 100,000 jobs queued, one
// running job finishes (its node's heartbeat reports it) and the core
// places what now fits. It reports the p50 and p99 over the iterations.
func BenchmarkDecision(b *testing.B) {
	for _, policy := range []string{"energy", "fifo-firstfit"} {
		b.Run(policy, func(b *testing.B) {
			c := benchCluster(b, 10000, 100000, policy)
			now := t0.Add(time.Hour)
			c.Schedule(now)
			var running []*jobRec
			for _, j := range c.jobs {
				if j.State == api.StateRunning {
					running = append(running, j)
				}
			}
			slices.SortFunc(running, func(a, b *jobRec) int { return a.seq - b.seq })
			rng := rand.New(rand.NewPCG(3, 4))
			var lat []time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				now = now.Add(time.Second)
				i := rng.IntN(len(running))
				j := running[i]
				n := c.nodes[j.Node]
				hb := api.Heartbeat{GPUs: n.GPUs, Jobs: []api.JobReport{{ID: j.ID, State: api.StateSucceeded}}}
				start := time.Now()
				_, ch := c.Heartbeat(j.Node, hb, now)
				lat = append(lat, time.Since(start))
				running[i] = running[len(running)-1]
				running = running[:len(running)-1]
				for _, cj := range ch.Jobs {
					if cj.State == api.StateRunning && cj.ID != j.ID {
						running = append(running, c.jobs[cj.ID])
					}
				}
				if len(running) == 0 {
					b.Fatal("ran out of running jobs")
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(lat)), "mean-cpu-µs")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkFullClusterPass is the pass that follows every written batch
// under scripts/load.sh: 1,000 nodes x 8 GPUs all busy, 12,000 1-GPU jobs
// queued and 20 more submitted before each pass, 5 ms apart. Nothing can
// start, so the pass is the head job's waiting reason and reservation.
// "fresh" forgets the reserved head job before each pass (every pass scans
// every node's running jobs, as before the memo); "reused" is the core as it
// is. Compare their ns/op: go test ./scheduler -run '^$' -bench
// FullClusterPass -cpu 1 -count 5.
func BenchmarkFullClusterPass(b *testing.B) {
	for _, mode := range []string{"fresh", "reused"} {
		b.Run(mode, func(b *testing.B) {
			c := benchCluster(b, 1000, 0, DefaultPolicy)
			now := t0.Add(time.Hour)
			n := 0
			submit := func(k int) {
				for range k {
					if _, err := c.Submit(spec(fmt.Sprintf("q%d", n), 1, 50), now); err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			submit(8000 + 12000)
			c.Schedule(now)
			if c.avail != 0 {
				b.Fatalf("%d GPUs still free after the first pass; the cluster should be full", c.avail)
			}
			for b.Loop() {
				now = now.Add(5 * time.Millisecond)
				submit(20)
				if mode == "fresh" {
					c.resMemo = resMemo{}
				}
				c.Schedule(now)
			}
			if c.lastRes == nil {
				b.Fatal("no reservation was made; the benchmark measures nothing")
			}
		})
	}
}

// BenchmarkScheduleUnderNodeCap is one scheduling pass under energy+cap on
// 200 nodes x 8 H100 GPUs with a cluster budget that holds the running jobs
// near the admission bar (300 kW, about 60% of every GPU at its balanced
// point) and 4,000 jobs queued, mixed sizes and energy policies: the pass
// asks powerAdmits about every job it reaches (up to MaxScan) and starts
// none. "node-cap" adds a per-node cap that binds (2,600 W, below 8 GPUs at
// the balanced point); "cluster-only" is the same budget without it.
// Compare their ns/op: go test ./scheduler -run '^$' -bench
// ScheduleUnderNodeCap -count 5.
func BenchmarkScheduleUnderNodeCap(b *testing.B) {
	for _, mode := range []struct {
		name     string
		nodeMaxW float64
	}{{"node-cap", 2600}, {"cluster-only", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			c := benchCapCluster(b, 200, 4000, mode.nodeMaxW)
			now := t0.Add(time.Hour)
			running := c.running()
			hits, misses := c.pw.admitHits, c.pw.admitMisses
			for b.Loop() {
				now = now.Add(time.Second)
				c.Schedule(now)
			}
			// Without a node cap the memo by policy and size answers first
			// (uncounted): the share is admitMemo's, under the node cap.
			if asked := c.pw.admitHits - hits + c.pw.admitMisses - misses; asked > 0 && mode.nodeMaxW > 0 {
				b.ReportMetric(float64(c.pw.admitHits-hits)/float64(asked), "memo-hits/admission")
			}
			if got := c.running(); got != running {
				b.Fatalf("%d jobs running after the passes, %d before: the passes must start none, or they measure different work", got, running)
			}
			b.ReportMetric(float64(running), "running")
		})
	}
}

// benchCapCluster is BenchmarkScheduleUnderNodeCap's setup: nodes x 8 H100
// GPUs under energy+cap without profiling, a 300 kW budget with the given
// per-node cap, and queued jobs (benchSize's sizes, every energy policy)
// placed until the budget holds the rest.
func benchCapCluster(b *testing.B, nodes, queued int, nodeMaxW float64) *Core {
	b.Helper()
	p, err := PolicyByName("energy+cap")
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewWithPolicy(p)
	if err != nil {
		b.Fatal(err)
	}
	c.NodeTimeout, c.Power.Profile = 0, false
	for i := range nodes {
		name := fmt.Sprintf("node-%05d", i)
		c.Heartbeat(name, api.Heartbeat{GPUs: h100s(name, 8, 72)}, t0)
	}
	if _, err := c.SetBudget(api.PowerBudget{DefaultW: 300000, NodeMaxW: nodeMaxW}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	policies := []string{api.PolicyBalanced, api.PolicyBalanced, api.PolicyEfficient, api.PolicyPerformance}
	for i := range queued {
		s := powerSpec(fmt.Sprintf("b%d", i), policies[rng.IntN(len(policies))], benchSize(rng))
		s.User, s.Project = fmt.Sprintf("u%d", rng.IntN(50)), fmt.Sprintf("p%d", rng.IntN(5))
		s.Workload.Synthetic.Duration.Duration = time.Duration(1+rng.IntN(10)) * time.Hour
		if _, err := c.Submit(s, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	// Settle: the first passes start what the budget allows.
	now := t0.Add(time.Hour)
	for range 3 {
		c.Schedule(now)
	}
	return c
}

// running counts the running jobs.
func (c *Core) running() int {
	n := 0
	for _, j := range c.jobs {
		if j.State == api.StateRunning {
			n++
		}
	}
	return n
}
