package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/joulehq/joule/api"
)

// ExitPreempted is the status with which `agent train` exits after it wrote a
// checkpoint on SIGTERM: the job can resume later.
const ExitPreempted = 3

// stopGrace is how long a stopped train job may take to checkpoint before it
// is killed.
const stopGrace = 30 * time.Second

// task is one job on this node.
type task struct {
	id   string
	spec api.JobSpec
	gpus []int
	done chan struct{}

	mu       sync.Mutex
	state    string // running until the job ends
	reason   string
	progress *api.Progress
	// progressAt is when progress arrived.
	progressAt time.Time
	metrics    *api.Metrics
	stopAs     string // the state to report when the job ends because it was stopped
	cancel     context.CancelFunc
	// profile is the job's power profile once measured; profileErr why it
	// could not be.
	profile    []api.ProfileSample
	profileErr string
}

func (t *task) report() api.JobReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := api.JobReport{ID: t.id, State: t.state, Reason: t.reason, Metrics: t.metrics,
		Profile: t.profile, ProfileError: t.profileErr}
	if t.progress != nil {
		p := *t.progress
		r.Progress = &p
	}
	return r
}

func (t *task) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *task) setProgress(p api.Progress) {
	t.mu.Lock()
	t.progress, t.progressAt = &p, time.Now()
	t.mu.Unlock()
}

// trainedSamples is a train job's cumulative samples at now: the trainer's
// optimiser steps times the batch size at its last report, carried forward
// at the rate it reported. ok is false before the first report.
func (t *task) trainedSamples(now time.Time) (samples float64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.spec.Workload.Train
	if t.progress == nil || tr == nil {
		return 0, false
	}
	return float64(t.progress.Step*tr.BatchSize) + t.progress.SamplesPerS*now.Sub(t.progressAt).Seconds(), true
}

func (t *task) setProfile(p []api.ProfileSample, errMsg string) {
	t.mu.Lock()
	t.profile, t.profileErr = p, errMsg
	t.mu.Unlock()
}

// stop asks the job to end; it reports stopAs (cancelled when schedulerd asked,
// preempted when the agent shuts down).
func (t *task) stop(stopAs string) {
	t.mu.Lock()
	if t.stopAs == "" {
		t.stopAs = stopAs
	}
	t.mu.Unlock()
	t.cancel()
}

func (t *task) end(state, reason string, m *api.Metrics) {
	t.mu.Lock()
	if t.stopAs != "" && state != api.StateSucceeded {
		state, reason = t.stopAs, "stopped: "+t.stopAs
		if m != nil && state == api.StatePreempted {
			reason = "checkpointed and stopped"
		}
	}
	t.state, t.reason, t.metrics = state, reason, m
	t.mu.Unlock()
	close(t.done)
}

// start launches a job placed on this node. Callers hold a.mu.
func (a *Agent) start(as api.Assignment) *task {
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{id: as.ID, spec: as.Spec, gpus: as.GPUIndices, done: make(chan struct{}),
		state: api.StateRunning, cancel: cancel}
	log := a.cfg.Log.With("node", a.cfg.Name, "job", as.ID)
	log.Info("starting job", "name", as.Spec.Name, "gpus", as.GPUIndices)
	if as.Profile && len(as.GPUIndices) > 0 {
		go a.profile(ctx, t)
	}
	go func() {
		defer cancel()
		var state, reason string
		var m *api.Metrics
		switch {
		case as.Spec.Workload.Synthetic != nil:
			state, reason = a.runSynthetic(ctx, t, *as.Spec.Workload.Synthetic)
		case as.Spec.Workload.Train != nil:
			state, reason, m = a.runTrain(ctx, t, as)
		default:
			state, reason = api.StateFailed, "the job has no workload"
		}
		t.end(state, reason, m)
		log.Info("job ended", "state", t.report().State, "reason", t.report().Reason)
	}()
	return t
}

// load marks the job's simulated GPUs busy while it runs; on real GPUs the
// work itself loads them.
func (a *Agent) load(gpus []int, util float64) {
	if a.cfg.Sim == nil {
		return
	}
	for _, g := range gpus {
		a.cfg.Sim.SetUtilization(g, util)
	}
}

// relThroughput is how fast work progresses on the job's GPUs under their
// current power limits: the slowest GPU sets the pace.
func (a *Agent) relThroughput(gpus []int) float64 {
	rel := 1.0
	if a.cfg.Sim != nil {
		for _, g := range gpus {
			rel = min(rel, a.cfg.Sim.RelThroughput(g))
		}
	}
	return rel
}

// runSynthetic loads the GPUs at the spec's utilisation until the work is
// done; under a power cap the work progresses more slowly.
func (a *Agent) runSynthetic(ctx context.Context, t *task, s api.SyntheticSpec) (string, string) {
	a.load(t.gpus, s.Utilization)
	defer a.load(t.gpus, 0)
	total := s.Duration.Seconds()
	done := 0.0
	last := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for done < total {
		select {
		case <-ctx.Done():
			return api.StateCancelled, "stopped"
		case now := <-tick.C:
			done += now.Sub(last).Seconds() * a.relThroughput(t.gpus)
			last = now
			t.setProgress(api.Progress{Fraction: min(done/total, 1)})
		}
	}
	return api.StateSucceeded, ""
}

// runTrain runs `Exe train` as a child process in the job's directory. The
// child writes progress as JSON lines on stdout and its log to train.log.
func (a *Agent) runTrain(ctx context.Context, t *task, as api.Assignment) (string, string, *api.Metrics) {
	if err := a.checkDatasets(as.Spec.Workload.Train.Dataset); err != nil {
		return api.StateFailed, err.Error(), nil
	}
	dir := filepath.Join(a.cfg.JobsDir, as.ID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return api.StateFailed, "job dir: " + err.Error(), nil
	}
	specPath := filepath.Join(dir, "spec.json")
	data, _ := json.MarshalIndent(as.Spec, "", "  ")
	if err := os.WriteFile(specPath, data, 0o640); err != nil {
		return api.StateFailed, "write spec: " + err.Error(), nil
	}
	logf, err := os.OpenFile(filepath.Join(dir, "train.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return api.StateFailed, "open train.log: " + err.Error(), nil
	}
	defer logf.Close()
	tail := &tailWriter{}

	cmd := exec.Command(a.cfg.Exe, "train", "--spec", specPath, "--out", dir, "--resume")
	cmd.Dir = dir
	cmd.Stderr = io.MultiWriter(logf, tail)
	cmd.Env = append(os.Environ(), "JOULE_JOB_ID="+as.ID,
		"JOULE_GPU_UUIDS="+strings.Join(as.GPUUUIDs, ","))
	if a.cfg.Sim == nil && len(as.GPUUUIDs) > 0 {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+strings.Join(as.GPUUUIDs, ","))
	}
	// A trainer must not outlive its agent: it gets SIGTERM (and checkpoints)
	// when the agent dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return api.StateFailed, err.Error(), nil
	}
	if err := cmd.Start(); err != nil {
		return api.StateFailed, "start trainer: " + err.Error(), nil
	}
	a.load(t.gpus, 0.9)
	defer a.load(t.gpus, 0)

	go func() {
		<-ctx.Done()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-t.done:
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
		}
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var line trainLine
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Progress != nil {
			t.setProgress(*line.Progress)
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		m, rerr := readMetrics(filepath.Join(dir, "metrics.json"))
		if rerr != nil {
			return api.StateFailed, rerr.Error(), nil
		}
		return api.StateSucceeded, a.uploadModel(as.ID, filepath.Join(dir, "model")), m
	case errors.As(err, &exit) && exit.ExitCode() == ExitPreempted:
		return api.StatePreempted, "checkpointed", nil
	default:
		reason := tail.last()
		if reason == "" {
			reason = err.Error()
		}
		return api.StateFailed, reason, nil
	}
}

// trainLine is one line of a trainer child's stdout.
type trainLine struct {
	Progress *api.Progress `json:"progress,omitempty"`
}

func readMetrics(path string) (*api.Metrics, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainer exited 0 but wrote no metrics: %w", err)
	}
	var m api.Metrics
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &m, nil
}

// tailWriter keeps the last non-empty line written, for a failure reason.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > 8192 {
		w.buf = w.buf[len(w.buf)-8192:]
	}
	return len(p), nil
}

func (w *tailWriter) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(w.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// uploadModel sends the trained model to schedulerd, which serves predictions
// from it. A failure does not fail the job: the model stays on this node and
// the reason says so.
func (a *Agent) uploadModel(id, dir string) (reason string) {
	var err error
	for attempt := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = a.cfg.Client.UploadModel(ctx, id, dir)
		cancel()
		if err == nil {
			return ""
		}
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
	a.cfg.Log.Warn("model upload failed", "job", id, "err", err)
	return fmt.Sprintf("model upload failed (%v); the model is in %s on %s", err, dir, a.cfg.Name)
}
