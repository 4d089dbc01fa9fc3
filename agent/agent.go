package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/web/client"
)

// Config is what an agent needs to run.
type Config struct {
	Name     string
	Client   *client.Client
	NVML     nvml.Interface
	Sim      *power.SimNode // nil on real GPUs
	Interval time.Duration  // between heartbeats
	DataDir  string         // the agent's own files
	// JobsDir holds one directory per job (spec, log, checkpoint, metrics);
	// default DataDir/jobs. Nodes that share it (a shared filesystem, or
	// several agents on one machine) resume a requeued train job from its
	// checkpoint wherever it lands.
	JobsDir string
	// DataRoot is the only tree jobs may read datasets from; default
	// DataDir. A dataset outside it, or a symlink leading out, fails the job.
	DataRoot string
	// Exe is the binary started as `Exe train ...` for train jobs; default: this one.
	Exe string
	Log *slog.Logger
	// SuspendProgram and ResumeProgram, like Slurm's SuspendProgram and
	// ResumeProgram, are run as `PROGRAM NODE-NAME` when schedulerd asks the
	// node to suspend (after its idle timeout; the GPUs already have their
	// minimum limit) or to wake up. Empty means nothing to run (a simulated
	// node still models the state). The agent keeps heartbeating while
	// suspended, so the program must leave the agent's host reachable (e.g.
	// power the GPUs and their fabric down, or park the node through its
	// BMC while the agent runs on a management host).
	SuspendProgram, ResumeProgram string
	// PowerTimeout bounds one run of either program (default 5 min).
	PowerTimeout time.Duration
	// Profile sets the power profiler's steps and windows (zero:
	// power.DefaultProfileSettings); ProfileTick how often it reads
	// throughput and power (zero: 250 ms).
	Profile     power.ProfileSettings
	ProfileTick time.Duration
}

// Agent runs one node.
type Agent struct {
	cfg Config

	mu    sync.Mutex
	tasks map[string]*task // every job the agent holds, running or finished and not yet acknowledged
	// stopping is set at shutdown: the last heartbeat reports, it starts nothing.
	stopping bool
	// power is the node's power state as the agent last made it (api.PowerOn
	// or api.PowerSuspended); switching is true while a program runs.
	power     string
	switching bool
	// Power (power.go): default limits to restore, the limit schedulerd
	// allocated per GPU, the last refusal per GPU, GPUs a profiler holds.
	defaults  map[int]float64
	allocated map[int]float64
	limitErr  map[int]string
	profiling map[int]bool
}

// New checks the configuration and returns an agent.
func New(cfg Config) (*Agent, error) {
	if err := api.ValidateNodeName(cfg.Name); err != nil {
		return nil, fmt.Errorf("agent name: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary for train jobs: %w", err)
		}
		cfg.Exe = exe
	}
	if cfg.Profile == (power.ProfileSettings{}) {
		cfg.Profile = power.DefaultProfileSettings()
	}
	if err := cfg.Profile.Validate(); err != nil {
		return nil, fmt.Errorf("agent power profile: %w", err)
	}
	if cfg.ProfileTick <= 0 {
		cfg.ProfileTick = defaultProfileTick
	}
	// Train children run in their job directory: every path handed to them
	// must be absolute.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("agent data dir: %w", err)
	}
	cfg.DataDir = dataDir
	if cfg.JobsDir == "" {
		cfg.JobsDir = filepath.Join(cfg.DataDir, "jobs")
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = cfg.DataDir
	}
	jobsDir, err := filepath.Abs(cfg.JobsDir)
	if err != nil {
		return nil, fmt.Errorf("agent jobs dir: %w", err)
	}
	cfg.JobsDir = jobsDir // the trainer child runs inside it
	if err := os.MkdirAll(cfg.JobsDir, 0o750); err != nil {
		return nil, fmt.Errorf("agent jobs dir: %w", err)
	}
	root, err := filepath.Abs(cfg.DataRoot)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("--data-root %s: %w; give an existing directory that holds the datasets", cfg.DataRoot, err)
	}
	cfg.DataRoot = root
	if cfg.PowerTimeout <= 0 {
		cfg.PowerTimeout = 5 * time.Minute
	}
	return &Agent{cfg: cfg, tasks: map[string]*task{}, power: api.PowerOn, allocated: map[int]float64{},
		limitErr: map[int]string{}, profiling: map[int]bool{}}, nil
}

// Run registers and heartbeats until ctx ends, then stops its jobs (train
// jobs checkpoint) and sends a last heartbeat that reports them.
func (a *Agent) Run(ctx context.Context) error {
	log := a.cfg.Log.With("node", a.cfg.Name)
	a.recordDefaults(log)
	if err := a.register(ctx, log); err != nil {
		return err
	}
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			a.shutdown(log)
			return nil
		case <-t.C:
		}
		err := a.beat(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil && !failing:
			log.Warn("heartbeat failed; retrying every interval", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("heartbeat back")
			failing = false
		}
	}
}

func (a *Agent) register(ctx context.Context, log *slog.Logger) error {
	for attempt := 0; ; attempt++ {
		hb, err := a.snapshot()
		if err != nil {
			return err
		}
		reply, err := a.cfg.Client.Register(ctx, a.cfg.Name, hb)
		if err == nil {
			log.Info("registered", "gpus", len(hb.GPUs))
			a.reconcile(reply, hb)
			return nil
		}
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status/100 == 4 {
			return fmt.Errorf("register %s: %w", a.cfg.Name, err)
		}
		if attempt == 0 {
			log.Warn("waiting for schedulerd", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 5*time.Second)):
		}
	}
}

// beat sends one heartbeat and reconciles toward the reply.
func (a *Agent) beat(ctx context.Context) error {
	hb, err := a.snapshot()
	if err != nil {
		return err
	}
	reply, err := a.cfg.Client.Heartbeat(ctx, a.cfg.Name, hb)
	if err != nil {
		return err
	}
	a.reconcile(reply, hb)
	return nil
}

// snapshot reads the GPUs and the state of every job held.
func (a *Agent) snapshot() (api.Heartbeat, error) {
	gpus, err := power.ReadGPUs(a.cfg.NVML)
	if err != nil {
		return api.Heartbeat{}, fmt.Errorf("read GPUs: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range gpus {
		gpus[i].LimitError = a.limitErr[gpus[i].Index]
	}
	hb := api.Heartbeat{GPUs: gpus, Jobs: []api.JobReport{}}
	for _, id := range slices.Sorted(maps.Keys(a.tasks)) {
		hb.Jobs = append(hb.Jobs, a.tasks[id].report())
	}
	return hb, nil
}

// reconcile moves the node toward the reply's desired state. sent is the
// heartbeat the reply answers: finished jobs reported in it are now stored by
// schedulerd and can be forgotten.
func (a *Agent) reconcile(reply api.HeartbeatReply, sent api.Heartbeat) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range sent.Jobs {
		if t := a.tasks[r.ID]; t != nil && r.State != api.StateRunning && t.finished() {
			delete(a.tasks, r.ID)
		}
	}
	for _, id := range reply.Stop {
		if t := a.tasks[id]; t != nil {
			t.stop(api.StateCancelled)
		}
	}
	for _, id := range reply.Preempt {
		if t := a.tasks[id]; t != nil {
			t.stop(api.StatePreempted)
		}
	}
	for idx, w := range reply.LimitsW {
		a.allocated[idx] = w // known before a new job's profiler reads its ceiling
	}
	a.applyLimits(reply.LimitsW, sent)
	if want := reply.Power; want != "" && want != a.power && !a.switching {
		a.switching = true
		go a.switchPower(want)
	}
	if a.power != api.PowerOn || a.switching || a.stopping {
		return // jobs start once the node is awake; the next reply repeats them
	}
	for _, as := range reply.Run {
		if _, held := a.tasks[as.ID]; held {
			continue
		}
		t := a.start(as)
		a.tasks[as.ID] = t
	}
}

// switchPower runs the suspend or resume program (and models the state on a
// simulated node), then records the new state. A failure leaves the state
// as it was, so the next heartbeat's reply tries again.
func (a *Agent) switchPower(want string) {
	prog := a.cfg.ResumeProgram
	if want == api.PowerSuspended {
		prog = a.cfg.SuspendProgram
	}
	log := a.cfg.Log.With("node", a.cfg.Name, "power", want)
	err := runPowerProgram(prog, a.cfg.Name, a.cfg.PowerTimeout)
	if err == nil && a.cfg.Sim != nil {
		a.cfg.Sim.SetSuspended(want == api.PowerSuspended)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.switching = false
	if err != nil {
		log.Error("power state change failed; will retry", "program", prog, "err", err)
		return
	}
	a.power = want
	log.Info("node power state changed")
}

// PowerState is the node's power state as the agent last made it.
func (a *Agent) PowerState() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.power
}

// shutdown stops every job and reports them once more.
func (a *Agent) shutdown(log *slog.Logger) {
	a.mu.Lock()
	a.stopping = true
	var running []*task
	for _, t := range a.tasks {
		if !t.finished() {
			t.stop(api.StatePreempted)
			running = append(running, t)
		}
	}
	a.mu.Unlock()
	for _, t := range running {
		<-t.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.beat(ctx); err != nil {
		log.Warn("last heartbeat failed", "err", err)
	}
	a.restoreDefaults(log)
	log.Info("agent stopped", "jobs_stopped", len(running))
}
