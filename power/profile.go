package power

import (
	"fmt"
	"math"
	"time"
)

// ProfileSettings are the profiler's measurement windows, named as Zeus's
// power-limit optimiser names them.
type ProfileSettings struct {
	// StepW is the distance between profiled limits.
	StepW float64
	// MaxSteps is how many limits below the uncapped draw are profiled (the
	// last one is the minimum limit if the steps reach it).
	MaxSteps int
	// Warmup is how long a new limit runs before measuring starts (clocks
	// and the job's pace settle); Measure how long throughput and power are
	// then averaged.
	Warmup, Measure time.Duration
}

// DefaultProfileSettings: 25 W steps, up to 10 limits below the uncapped
// draw (on an H100 job drawing 450 W: 425, 400, ... 200 W), 3 s of warm-up
// and 5 s of measuring at each: about 90 s of a job's start.
func DefaultProfileSettings() ProfileSettings {
	return ProfileSettings{StepW: 25, MaxSteps: 10, Warmup: 3 * time.Second, Measure: 5 * time.Second}
}

// Validate reports settings the profiler cannot work with.
func (s ProfileSettings) Validate() error {
	switch {
	case !(s.StepW > 0) || math.IsInf(s.StepW, 0):
		return fmt.Errorf("profile step %v W must be a positive number of watts", s.StepW)
	case s.MaxSteps < 2:
		return fmt.Errorf("profile steps %d: at least 2 limits below the uncapped draw are needed to fit a curve", s.MaxSteps)
	case s.Warmup < 0 || s.Measure <= 0:
		return fmt.Errorf("profile warm-up %s and measure %s: warm-up must be >= 0 and measure > 0", s.Warmup, s.Measure)
	}
	return nil
}

// ProfileState is where a Profiler is.
type ProfileState int

// The profiler's states: Ready -> (Warmup -> Profiling) per limit -> Done.
const (
	ProfileReady ProfileState = iota
	ProfileWarmup
	ProfileProfiling
	ProfileDone
)

func (s ProfileState) String() string {
	return [...]string{"ready", "warmup", "profiling", "done"}[s]
}

// Profiler steps a job's GPUs through power limits and measures throughput
// and draw at each, as Zeus's power-limit optimiser does: first the ceiling
// (the highest limit the job may have; its draw there is the uncapped draw),
// then StepW steps from the first step below that draw down towards the
// minimum limit. It is a pure state machine: the caller feeds it readings
// with their time and applies the limit it returns. Not safe for concurrent
// use.
type Profiler struct {
	s        ProfileSettings
	loW, hiW float64

	state    ProfileState
	limitW   float64
	since    time.Time
	work0    float64
	powerSum float64
	powerN   int
	below    int
	samples  []LimitSample
}

// NewProfiler profiles limits between loW (the GPUs' minimum) and hiW (the
// ceiling: the limit the job was allocated, at most the maximum).
func NewProfiler(s ProfileSettings, loW, hiW float64) (*Profiler, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if !(loW > 0 && hiW >= loW) {
		return nil, fmt.Errorf("profile limits %v..%v W: need 0 < minimum <= ceiling", loW, hiW)
	}
	return &Profiler{s: s, loW: loW, hiW: hiW}, nil
}

// State is the profiler's state.
func (p *Profiler) State() ProfileState { return p.state }

// Samples are the limits profiled so far, in order.
func (p *Profiler) Samples() []LimitSample { return append([]LimitSample(nil), p.samples...) }

// Observe feeds one reading at now: work is the job's cumulative work done
// (samples, or work units; only differences matter) and powerW the mean draw
// of its GPUs. It returns the limit the GPUs must run at from now on; 0 once
// profiling is done (the GPUs go back to their allocated limit).
func (p *Profiler) Observe(now time.Time, work, powerW float64) (limitW float64) {
	switch p.state {
	case ProfileReady:
		p.enter(p.hiW, now)
	case ProfileWarmup:
		if now.Sub(p.since) >= p.s.Warmup {
			p.state, p.since, p.work0, p.powerSum, p.powerN = ProfileProfiling, now, work, 0, 0
		}
	case ProfileProfiling:
		p.powerSum += powerW
		p.powerN++
		dt := now.Sub(p.since)
		if dt < p.s.Measure {
			break
		}
		s := LimitSample{LimitW: p.limitW, Throughput: (work - p.work0) / dt.Seconds(), PowerW: p.powerSum / float64(p.powerN)}
		p.samples = append(p.samples, s)
		next, ok := p.next()
		if !ok {
			p.state = ProfileDone
			return 0
		}
		p.enter(next, now)
	case ProfileDone:
		return 0
	}
	return p.limitW
}

func (p *Profiler) enter(limitW float64, now time.Time) {
	p.state, p.limitW, p.since = ProfileWarmup, limitW, now
}

// next is the limit after the one just measured.
func (p *Profiler) next() (float64, bool) {
	if p.below >= p.s.MaxSteps || p.limitW <= p.loW {
		return 0, false
	}
	l := p.limitW - p.s.StepW
	if len(p.samples) == 1 {
		// After the ceiling: the first step strictly below its draw, the
		// uncapped draw (limits above it change nothing).
		uncapped := p.samples[0].PowerW
		for l >= uncapped && l > p.loW {
			l -= p.s.StepW
		}
	}
	p.below++
	return math.Max(l, p.loW), true
}
