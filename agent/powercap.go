package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

// The agent's part of power capping: it applies the limits schedulerd sends
// (only those that differ from what the GPU enforces), reports a refused
// limit on the GPU, records each GPU's default limit on start and restores it
// on a clean exit, and profiles a new job's power limits when asked. The
// decisions (which limits, the fitted curve) are schedulerd's.

// defaultProfileTick is how often a profiler reads throughput and power.
const defaultProfileTick = 250 * time.Millisecond

// recordDefaults remembers every GPU's default limit, to restore on exit.
func (a *Agent) recordDefaults(log *slog.Logger) {
	d, err := power.DefaultLimitsW(a.cfg.NVML)
	if err != nil {
		log.Warn("cannot read the GPUs' default power limits; they will not be restored on exit", "err", err)
		return
	}
	a.mu.Lock()
	a.defaults = d
	a.mu.Unlock()
}

// restoreDefaults sets every GPU back to its default limit.
func (a *Agent) restoreDefaults(log *slog.Logger) {
	a.mu.Lock()
	d := a.defaults
	a.mu.Unlock()
	for idx, w := range d {
		if _, err := power.SetLimitW(a.cfg.NVML, idx, w); err != nil {
			log.Warn("restore default power limit", "gpu", idx, "watts", w, "err", err)
		}
	}
	if len(d) > 0 {
		log.Info("restored default power limits", "gpus", len(d))
	}
}

// applyLimits sets the limits of the reply on the GPUs that are not being
// profiled and whose enforced limit (as last read, in sent) differs. A
// refusal is logged once and reported with the GPU until a set succeeds.
// Callers hold a.mu.
func (a *Agent) applyLimits(limitsW map[int]float64, sent api.Heartbeat) {
	enforced := map[int]float64{}
	for _, g := range sent.GPUs {
		enforced[g.Index] = g.LimitW
	}
	for idx, w := range limitsW {
		a.allocated[idx] = w
		if a.profiling[idx] {
			continue
		}
		if cur, ok := enforced[idx]; ok && math.Abs(cur-w) < 0.5 && a.limitErr[idx] == "" {
			continue
		}
		if _, err := power.SetLimitW(a.cfg.NVML, idx, w); err != nil {
			msg := err.Error()
			if a.limitErr[idx] != msg {
				a.cfg.Log.Error("schedulerd's power limit refused by the GPU; the node is not held to the budget", "node", a.cfg.Name, "gpu", idx, "watts", w, "err", err)
			}
			a.limitErr[idx] = msg
			continue
		}
		delete(a.limitErr, idx)
	}
}

// ceilingW is the lowest limit allocated to any of gpus (their maximum if
// none is known yet).
func (a *Agent) ceilingW(gpus []int) float64 {
	c := math.Inf(1)
	for _, g := range gpus {
		if w, ok := a.allocated[g]; ok {
			c = math.Min(c, w)
		}
	}
	return c
}

// profile steps the job's GPUs through power limits (power.Profiler) from
// the limit schedulerd allocated down, measuring the job's throughput (the
// trainer's samples/s on real GPUs, the power model's pace on simulated
// ones) and its GPUs' draw, and hands the samples to the task's reports. It
// gives up, with a reason, if a limit is refused or schedulerd lowers the
// job's limit below the one being profiled (a budget change wins).
func (a *Agent) profile(ctx context.Context, t *task) {
	log := a.cfg.Log.With("node", a.cfg.Name, "job", t.id)
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		log.Warn("power profile failed", "reason", msg)
		t.setProfile(nil, msg)
	}
	lo, hi, err := power.LimitConstraintsW(a.cfg.NVML, t.gpus[0])
	if err != nil {
		fail("%v", err)
		return
	}
	a.mu.Lock()
	ceiling := math.Min(hi, a.ceilingW(t.gpus))
	for _, g := range t.gpus {
		a.profiling[g] = true
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		for _, g := range t.gpus {
			delete(a.profiling, g)
		}
		a.mu.Unlock()
	}()
	p, err := power.NewProfiler(a.cfg.Profile, lo, math.Max(ceiling, lo))
	if err != nil {
		fail("%v", err)
		return
	}
	log.Info("profiling power limits", "from_w", ceiling, "step_w", a.cfg.Profile.StepW)
	tick := time.NewTicker(a.cfg.ProfileTick)
	defer tick.Stop()
	var integrated, setW float64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return // the job ended first: no profile
		case now := <-tick.C:
			work := a.workDone(t, now, last, &integrated)
			last = now
			var sum float64
			for _, g := range t.gpus {
				w, err := power.PowerW(a.cfg.NVML, g)
				if err != nil {
					fail("%v", err)
					return
				}
				sum += w
			}
			l := p.Observe(now, work, sum/float64(len(t.gpus)))
			if p.State() == power.ProfileDone {
				s := p.Samples()
				out := make([]api.ProfileSample, len(s))
				for i, x := range s {
					out[i] = api.ProfileSample{LimitW: x.LimitW, Throughput: x.Throughput, PowerW: x.PowerW}
				}
				log.Info("power profile done", "limits", len(out))
				t.setProfile(out, "")
				return
			}
			a.mu.Lock()
			allocated := a.ceilingW(t.gpus)
			a.mu.Unlock()
			if l > allocated+0.5 {
				fail("schedulerd lowered the job's limit to %.0f W while %.0f W was being profiled (the power budget changed); it keeps the model's curve", allocated, l)
				return
			}
			if l == setW {
				continue
			}
			for _, g := range t.gpus {
				if _, err := power.SetLimitW(a.cfg.NVML, g, l); err != nil {
					fail("%v", err)
					return
				}
			}
			setW = l
		}
	}
}

// workDone advances and returns the job's cumulative work at now: on
// simulated GPUs the power model's pace under the current limits integrated
// since the last reading (work units); on real GPUs a train job's samples
// (trainer steps x batch size, carried forward at its reported rate).
func (a *Agent) workDone(t *task, now, last time.Time, integrated *float64) float64 {
	if a.cfg.Sim == nil {
		if s, ok := t.trainedSamples(now); ok {
			return s
		}
	}
	*integrated += a.relThroughput(t.gpus) * now.Sub(last).Seconds()
	return *integrated
}
