// Command load drives a running schedulerd the way a big cluster would:
// many simulated agents (goroutines, each posting real heartbeat JSON for 8
// GPUs over loopback HTTP every interval) while clients submit jobs. It
// prints durable submissions per second (acknowledged = stored and synced),
// heartbeat latency percentiles and schedulerd's CPU and memory (from /proc).
// scripts/load.sh builds and starts schedulerd and runs it.
//
//	go run ./scripts/load --server http://127.0.0.1:7071 --token-file DATA/admin.token --pid PID
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

const help = `load: drive a running schedulerd with simulated agents and submitters.

Each agent is a goroutine with a light stand-in for 8 GPUs (energy counters
that rise with utilisation) that posts real heartbeat JSON over HTTP every
--heartbeat and runs the jobs the replies assign for their duration. Once
every agent has registered, --clients goroutines submit --jobs synthetic
1-GPU jobs as fast as schedulerd acknowledges them. It prints durable
submissions/s, heartbeat p50/p99 during the submissions, and schedulerd's
CPU and peak memory (--pid, from /proc).

Example:
  go run ./scripts/load --server http://127.0.0.1:7071 --token-file /tmp/d/admin.token --pid 1234

Flags:
`

func main() {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	server := fs.String("server", "http://127.0.0.1:7071", "schedulerd's URL")
	tokenFile := fs.String("token-file", "", "an admin token (schedulerd's DATA_DIR/admin.token)")
	agents := fs.Int("agents", 1000, "simulated agents")
	jobs := fs.Int("jobs", 20000, "jobs to submit")
	clients := fs.Int("clients", 256, "concurrent submitters")
	interval := fs.Duration("heartbeat", time.Second, "heartbeat interval of each agent")
	jobDur := fs.Duration("job-duration", 20*time.Second, "run time of each synthetic job")
	pid := fs.Int("pid", 0, "schedulerd's process id, for its CPU and memory")
	limit := fs.Duration("time-limit", 5*time.Minute, "stop submitting after this long and report what was acknowledged")
	oneProcess := fs.Bool("one-process", false, "run the agents in the submitters' process (by default they get their own, as real agents run on their own machines)")
	child := fs.Bool("agents-child", false, "internal: be the agents' process")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's CPU profile here (the agents' process's to this path + .agents)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, help); fs.PrintDefaults() }
	fs.Parse(os.Args[1:])
	if cpuProfilePath = *cpuProfile; cpuProfilePath != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	if *child {
		err = runChild(*server, *tokenFile, *agents, *interval, *jobDur)
	} else {
		err = run(*server, *tokenFile, *agents, *jobs, *clients, *interval, *jobDur, *pid, *limit, *oneProcess)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// cpuProfilePath is --cpuprofile, which the agents' process gets too.
var cpuProfilePath string

func newClient(server, tok string) *client.Client {
	c, _ := client.New(server)
	c.Token = tok
	c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}}
	return c
}

func run(server, tokenFile string, nAgents, nJobs, nClients int, interval, jobDur time.Duration, pid int, limit time.Duration, oneProcess bool) error {
	tok, err := client.ReadTokenFile(tokenFile)
	if err != nil {
		return fmt.Errorf("--token-file: %w", err)
	}
	subClient := newClient(server, tok)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var ags agents
	where := "in a process of their own"
	if oneProcess {
		s := startAgents(newClient(server, tok), nAgents, interval, jobDur)
		if err := s.waitRegistered(nAgents); err != nil {
			return err
		}
		ags, where = localAgents{s}, "in the submitters' process"
	} else {
		c, err := spawnAgents(server, tokenFile, nAgents, interval, jobDur)
		if err != nil {
			return err
		}
		ags = c
	}
	fmt.Printf("%d agents registered (%d GPUs), %s; heartbeating every %s\n", nAgents, 8*nAgents, where, interval)
	time.Sleep(2 * interval) // settle into the rhythm

	cpu0, _ := procCPU(pid)
	self0, _ := procCPU(os.Getpid())
	// The baseline scrape comes before the latency window opens, and the end
	// scrape after it closes: a scrape of 8,000 GPUs' series is ~0.35 s of
	// schedulerd's CPU in one burst, the harness's own instrument, not load
	// an agent or a submitter makes.
	m0, _ := scrape(server, tok)
	agentsCPU0, _ := ags.cpu()
	if err := ags.open(); err != nil {
		return err
	}
	var subLat latencies
	var acked, failed atomic.Int64
	var next atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	stopAt := start.Add(limit)
	var subs sync.WaitGroup
	var peakRSS atomic.Int64
	stopSample := make(chan struct{})
	go func() {
		for {
			if rss, err := procRSS(pid); err == nil && rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-stopSample:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	for range nClients {
		subs.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(nJobs) || time.Now().After(stopAt) {
					return
				}
				spec := api.JobSpec{Name: fmt.Sprintf("load-%d", n), User: "load", GPUs: 1, Priority: 50,
					Project: "default", EnergyPolicy: api.PolicyBalanced,
					Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: jobDur}, Utilization: 0.8}}}
				sent := time.Now()
				if _, err := subClient.Submit(ctx, spec); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				subLat.add(0, time.Since(sent))
				acked.Add(1)
			}
		})
	}
	subs.Wait()
	elapsed := time.Since(start)
	w, err := ags.close()
	if err != nil {
		return err
	}
	hb, hbBy := w.All, w.ByKind
	cpu1, _ := procCPU(pid)
	self1, _ := procCPU(os.Getpid())
	m1, _ := scrape(server, tok)
	close(stopSample)
	cancel()

	fmt.Printf("submissions: %d acknowledged (stored, synced), %d failed, in %s\n", acked.Load(), failed.Load(), elapsed.Round(time.Millisecond))
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first failure: %v\n", e)
	}
	fmt.Printf("durable submissions/s: %.0f\n", float64(acked.Load())/elapsed.Seconds())
	sl, _ := subLat.snapshot()
	fmt.Printf("submission latency (sent to acknowledged): p50 %s, p99 %s\n", pct(sl, 0.5), pct(sl, 0.99))
	fmt.Printf("heartbeats during submissions: %d, errors %d, p50 %s, p99 %s, max %s\n",
		len(hb), w.Errors, pct(hb, 0.50), pct(hb, 0.99), pct(hb, 1))
	share := slowShare(hb, hbBy)
	for k, d := range hbBy {
		fmt.Printf("  %-24s %6d heartbeats, p50 %s, p99 %s, max %s; %.0f%% of those above the overall p99\n",
			kindNames[k]+":", len(d), pct(d, 0.50), pct(d, 0.99), pct(d, 1), 100*share[k])
	}
	if d := func(k string) float64 { return m1[k] - m0[k] }; d("joule_commit_batch_count") > 0 {
		// Synced requests only: a heartbeat that changed only telemetry is
		// buffered, and its flush counts as one request.
		fmt.Printf("group commit during submissions: %.0f synced requests in %.0f synced writes, %.1f requests per fsync, %.0f fsyncs/s, %.1f ms per write on average\n",
			d("joule_commit_batch_sum"), d("joule_commit_batch_count"), d("joule_commit_batch_sum")/d("joule_commit_batch_count"),
			d("joule_commit_batch_count")/elapsed.Seconds(),
			1000*d("joule_commit_duration_seconds_sum")/d("joule_commit_duration_seconds_count"))
	}
	if d := func(k string) float64 { return m1[k] - m0[k] }; d(`joule_lock_wait_seconds_count{event="heartbeat"}`) > 0 {
		// Server side: how long heartbeats waited for the core's lock.
		n := d(`joule_lock_wait_seconds_count{event="heartbeat"}`)
		over := func(le string) float64 {
			return 100 * (n - d(`joule_lock_wait_seconds_bucket{event="heartbeat",le="`+le+`"}`)) / n
		}
		fmt.Printf("heartbeats' wait for the server's core lock: %.2f ms on average; %.1f%% over 10 ms, %.1f%% over 50 ms\n",
			1000*d(`joule_lock_wait_seconds_sum{event="heartbeat"}`)/n, over("0.01"), over("0.05"))
	}
	if d := func(k string) float64 { return m1[k] - m0[k] }; d("joule_heartbeat_duration_seconds_count") > 0 {
		// Server side: a heartbeat's time in schedulerd's handler; the rest
		// of what the agents see is the network, HTTP and CPU queueing on
		// both sides.
		n := d("joule_heartbeat_duration_seconds_count")
		over := func(le string) float64 {
			return 100 * (n - d(`joule_heartbeat_duration_seconds_bucket{le="`+le+`"}`)) / n
		}
		fmt.Printf("heartbeats' time in schedulerd's handler: %.2f ms on average; %.1f%% over 10 ms, %.1f%% over 50 ms\n",
			1000*d("joule_heartbeat_duration_seconds_sum")/n, over("0.01"), over("0.05"))
	}
	if pid > 0 {
		fmt.Printf("schedulerd CPU: %.2f cores on average during submissions; peak RSS %d MiB\n",
			(cpu1-cpu0)/elapsed.Seconds(), peakRSS.Load()>>20)
	}
	if oneProcess {
		fmt.Printf("load generator CPU (agents and submitters in one process, same machine): %.2f cores; machine load average %s\n",
			(self1-self0)/elapsed.Seconds(), loadAvg())
	} else {
		fmt.Printf("load generator CPU (same machine): submitters %.2f cores, agents %.2f cores; machine load average %s\n",
			(self1-self0)/elapsed.Seconds(), (w.CPUSeconds-agentsCPU0)/elapsed.Seconds(), loadAvg())
	}
	return nil
}

// standIn is a light stand-in for an 8-GPU node: energy counters that rise
// with utilisation, and the jobs its replies assign, run for their duration.
type standIn struct {
	name    string
	energyJ [8]float64
	jobs    map[string]*standInJob
	last    time.Time
}

type standInJob struct {
	gpus  []int
	until time.Time
	ended bool
}

func (a *standIn) run(ctx context.Context, c *client.Client, interval, jobDur time.Duration, lat *latencies, registered, errs *atomic.Int64) {
	// Spread the agents over the interval, as real ones drift apart.
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(rand.Int64N(int64(interval)))):
	}
	first := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		hb := a.heartbeat(time.Now())
		start := time.Now()
		var reply api.HeartbeatReply
		var err error
		if first {
			reply, err = c.Register(ctx, a.name, hb)
		} else {
			reply, err = c.Heartbeat(ctx, a.name, hb)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			errs.Add(1)
		} else {
			lat.add(a.kindOf(reply, hb), time.Since(start))
			if first {
				registered.Add(1)
				first = false
			}
			a.reconcile(reply, hb, jobDur)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *standIn) heartbeat(now time.Time) api.Heartbeat {
	busy := map[int]bool{}
	hb := api.Heartbeat{Jobs: []api.JobReport{}}
	for id, j := range a.jobs {
		r := api.JobReport{ID: id, State: api.StateRunning}
		if !now.Before(j.until) {
			r.State, j.ended = api.StateSucceeded, true
		} else {
			for _, g := range j.gpus {
				busy[g] = true
			}
		}
		hb.Jobs = append(hb.Jobs, r)
	}
	dt := 0.0
	if !a.last.IsZero() {
		dt = now.Sub(a.last).Seconds()
	}
	a.last = now
	for i := range 8 {
		util, powerW := 0.0, 90.0
		if busy[i] {
			util, powerW = 0.8, 560
		}
		a.energyJ[i] += powerW * dt
		hb.GPUs = append(hb.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", a.name, i), Model: "NVIDIA H100 80GB HBM3",
			Utilization: util, PowerW: powerW, LimitW: 700, MinLimitW: 200, MaxLimitW: 700, EnergyJ: a.energyJ[i],
			TemperatureC: 40 + 30*util, MemoryUsedMiB: 60000 * util, MemoryTotalMiB: 81559})
	}
	return hb
}

// Heartbeat kinds, for the latency split: the reply carried a new placement
// (the server synced it before answering), the heartbeat reported a job that
// ended (a transition, synced before the reply), or neither (telemetry only,
// buffered; it waits at most for the last synced change of its node).
const (
	kindPlacement = iota
	kindEnded
	kindTelemetry
	nKinds
)

var kindNames = [nKinds]string{"new placement in reply", "reported a job end", "telemetry only"}

func (a *standIn) kindOf(reply api.HeartbeatReply, sent api.Heartbeat) int {
	for _, as := range reply.Run {
		if _, held := a.jobs[as.ID]; !held {
			return kindPlacement
		}
	}
	for _, r := range sent.Jobs {
		if r.State != api.StateRunning {
			return kindEnded
		}
	}
	return kindTelemetry
}

func (a *standIn) reconcile(reply api.HeartbeatReply, sent api.Heartbeat, jobDur time.Duration) {
	for _, r := range sent.Jobs {
		if j := a.jobs[r.ID]; j != nil && j.ended && r.State != api.StateRunning {
			delete(a.jobs, r.ID)
		}
	}
	for _, id := range reply.Stop {
		if j := a.jobs[id]; j != nil {
			j.until = time.Now()
		}
	}
	for _, as := range reply.Run {
		if _, held := a.jobs[as.ID]; !held {
			d := jobDur
			if s := as.Spec.Workload.Synthetic; s != nil {
				d = s.Duration.Duration
			}
			a.jobs[as.ID] = &standInJob{gpus: as.GPUIndices, until: time.Now().Add(d)}
		}
	}
}

// latencies records heartbeat latencies, all together and by kind.
type latencies struct {
	mu     sync.Mutex
	d      []time.Duration
	byKind [nKinds][]time.Duration
}

func (l *latencies) add(kind int, d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.byKind[kind] = append(l.byKind[kind], d)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d, l.byKind = nil, [nKinds][]time.Duration{}
	l.mu.Unlock()
}

// snapshot is every latency and those of each kind, each sorted.
func (l *latencies) snapshot() ([]time.Duration, [nKinds][]time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.d)
	slices.Sort(s)
	var by [nKinds][]time.Duration
	for k := range by {
		by[k] = slices.Clone(l.byKind[k])
		slices.Sort(by[k])
	}
	return s, by
}

// slowShare is, per kind, the share of all heartbeats slower than the
// overall p99 that are of that kind: which heartbeats make the p99.
func slowShare(all []time.Duration, by [nKinds][]time.Duration) [nKinds]float64 {
	var out [nKinds]float64
	if len(all) == 0 {
		return out
	}
	p99 := all[int(0.99*float64(len(all)-1)+0.5)]
	total := 0
	var n [nKinds]int
	for k, d := range by {
		i, _ := slices.BinarySearch(d, p99+1)
		n[k] = len(d) - i
		total += n[k]
	}
	for k := range out {
		if total > 0 {
			out[k] = float64(n[k]) / float64(total)
		}
	}
	return out
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)-1) + 0.5)
	return sorted[i].Round(100 * time.Microsecond)
}

// scrape reads schedulerd's /metrics into a map by series, labels included
// as Prometheus writes them.
func scrape(server, token string) (map[string]float64, error) {
	req, _ := http.NewRequest("GET", server+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		m[name], _ = strconv.ParseFloat(v, 64)
	}
	return m, nil
}

// procCPU is the process's user+system CPU time in seconds.
func procCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// loadAvg is the machine's 1-minute load average, as /proc says it.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(data))[0]
}

// procRSS is the process's resident memory in bytes.
func procRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS")
}
