package power

import (
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Simulated thermal and memory behaviour: simple, documented assumptions.
const (
	// simAmbientC and simDegCPerW give a steady-state die temperature of
	// ambient + power x thermal resistance: 72 W -> 32 C, 490 W -> 57 C,
	// 700 W -> 70 C, in line with public readings of air/liquid-cooled SXM
	// parts. There is no thermal lag.
	simAmbientC = 28.0
	simDegCPerW = 0.06
	// simReservedMiB is what the driver holds on an idle GPU; a running job
	// uses up to simMaxMemShare of the rest in proportion to utilisation.
	simReservedMiB = 512
	simMaxMemShare = 0.85
	// simMemUtilShare: memory-controller utilisation as a share of the
	// GPU utilisation.
	simMemUtilShare = 0.6
)

// LimitCall is one SetPowerManagementLimit call made on a SimNode.
type LimitCall struct {
	Index   int
	LimitmW uint32
	// Ret is what the simulated NVML answered (nvml.SUCCESS,
	// nvml.ERROR_INVALID_ARGUMENT, or what RefuseLimits set).
	Ret nvml.Return
}

// SimNode is a simulated DGX node: go-nvml's own mock server (dgxh100.New()
// and friends) whose per-device power, utilisation, energy, limit,
// temperature and memory functions follow a Model, with time taken from an
// injected clock. The agent reaches it through NVML() exactly as it reaches
// real GPUs.
//
// Energy is integrated exactly: whenever utilisation or the limit changes,
// and whenever a reading is taken, each device's total-energy counter first
// advances by DrawW x elapsed time for the state in force during the elapsed
// interval. A clock that goes backwards adds nothing (and the counter keeps
// its value).
//
// A SimNode is safe for concurrent use: one mutex guards all device state,
// and the mock server's own fields are never written after construction.
type SimNode struct {
	model  Model
	now    func() time.Time
	server *server.Server

	mu    sync.Mutex
	gpus  []simGPU
	calls []LimitCall
	// suspended: the node is in a low-power state; its GPUs draw nothing
	// and do no work until it resumes.
	suspended bool
	refuse    nvml.Return // answer to every SetPowerManagementLimit, if not SUCCESS
}

type simGPU struct {
	util     float64
	limitmW  uint32
	energymJ float64 // counter, kept as float so integration does not drift
	last     time.Time
}

// SimOption configures NewSimNode.
type SimOption func(*simOptions)

type simOptions struct {
	nodeName string
}

// WithNodeName derives the GPUs' UUIDs from the node name and GPU index, so
// that a simulated node keeps its GPUs' identities across agent restarts
// and runs are reproducible. Without it the UUIDs are go-nvml's random ones.
func WithNodeName(name string) SimOption {
	return func(o *simOptions) { o.nodeName = name }
}

// simUUID is a stable, UUID-shaped GPU identifier for GPU index of node.
func simUUID(node string, index int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "joule-sim/%s/%d", node, index))
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// NewSimNode builds a simulated 8-GPU node of a kind: "dgxh100", "dgxh200"
// or "dgxa100" (or the GPU kinds "h100", "h200", "a100"). now is the clock;
// nil means time.Now. Every GPU starts idle at its default limit with its
// energy counter at 0.
//
// Only the functions ReadGPUs, SetLimitW and DefaultLimitsW use, plus those
// go-nvml's mock server already provides (count, handles by index, UUID
// and PCI bus id, names, indices, MIG), are implemented; other nvml.Device
// methods panic inside go-nvml's mock, as they do in go-nvml's own tests.
func NewSimNode(kind string, now func() time.Time, opts ...SimOption) (*SimNode, error) {
	var o simOptions
	for _, opt := range opts {
		opt(&o)
	}
	k, err := canonicalKind(kind)
	if err != nil {
		return nil, fmt.Errorf("simulated node: %w", err)
	}
	var srv *server.Server
	switch k {
	case "h100":
		srv = dgxh100.New()
	case "h200":
		srv = dgxh200.New()
	case "a100":
		srv = dgxa100.New()
	}
	m := models[k]
	if now == nil {
		now = time.Now
	}
	s := &SimNode{model: m, now: now, server: srv}
	t0 := now()
	s.gpus = make([]simGPU, len(srv.Devices))
	for i, d := range srv.Devices {
		dev, ok := d.(*server.Device)
		if !ok {
			return nil, fmt.Errorf("simulated node %s: device %d is %T, not a go-nvml mock server device", kind, i, d)
		}
		if dev.Config.Name != m.Name {
			// Keep NVML's answer and the model's name the same thing.
			s.model.Name = dev.Config.Name
		}
		if o.nodeName != "" {
			dev.UUID = simUUID(o.nodeName, i)
		}
		s.gpus[i] = simGPU{limitmW: wTomW(m.DefaultLimitW), last: t0}
		s.wire(i, dev)
	}
	// Fill the gaps in go-nvml's mock server that callers commonly reach.
	srv.InitWithFlagsFunc = func(uint32) nvml.Return { return nvml.SUCCESS }
	srv.ErrorStringFunc = describeReturn
	return s, nil
}

// Model is the power model the node's GPUs follow.
func (s *SimNode) Model() Model { return s.model }

// NVML is the node's NVML: use it exactly like real NVML. Init and Shutdown
// succeed and change nothing.
func (s *SimNode) NVML() nvml.Interface { return s.server }

// GPUCount is the number of simulated GPUs.
func (s *SimNode) GPUCount() int { return len(s.gpus) }

// SetUtilization sets GPU index's utilisation (clamped to 0..1) from now on.
// Energy up to now is accounted at the previous utilisation. An index out of
// range is ignored.
func (s *SimNode) SetUtilization(index int, util float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.advance(index)
	if g == nil {
		return
	}
	g.util = clampUtil(util)
}

// RelThroughput is how fast work on GPU index progresses now under its
// current limit, relative to uncapped (1 when the limit does not bind). An
// index out of range gives 0.
func (s *SimNode) RelThroughput(index int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index < 0 || index >= len(s.gpus) || s.suspended {
		return 0
	}
	g := s.gpus[index]
	return s.model.RelThroughput(g.util, mWToW(g.limitmW))
}

// SetSuspended models suspending (true) or resuming (false) the node: while
// suspended its GPUs draw 0 W, their energy counters stand still and work
// makes no progress. Energy up to now is accounted in the previous state.
func (s *SimNode) SetSuspended(suspended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.gpus {
		s.advance(i)
	}
	s.suspended = suspended
}

// Suspended reports whether the node is suspended.
func (s *SimNode) Suspended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.suspended
}

// drawW is GPU g's draw now. s.mu must be held.
func (s *SimNode) drawW(g simGPU) float64 {
	if s.suspended {
		return 0
	}
	return s.model.DrawW(g.util, mWToW(g.limitmW))
}

// RefuseLimits makes every later SetPowerManagementLimit answer ret (e.g.
// nvml.ERROR_NO_PERMISSION, what real NVML answers without root) and change
// nothing; nvml.SUCCESS accepts limits again.
func (s *SimNode) RefuseLimits(ret nvml.Return) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = ret
}

// LimitCalls returns a copy of every SetPowerManagementLimit call so far, in
// order, refused ones included.
func (s *SimNode) LimitCalls() []LimitCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LimitCall(nil), s.calls...)
}

// advance integrates GPU index's energy up to now and returns its state, or
// nil for an index out of range. s.mu must be held.
func (s *SimNode) advance(index int) *simGPU {
	if index < 0 || index >= len(s.gpus) {
		return nil
	}
	g := &s.gpus[index]
	t := s.now()
	if dt := t.Sub(g.last); dt > 0 {
		g.energymJ += s.drawW(*g) * dt.Seconds() * 1000
		g.last = t
	}
	return g
}

// snapshot advances GPU index and returns a copy of its state.
func (s *SimNode) snapshot(index int) simGPU {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.advance(index)
}

// drawNowW is GPU index's draw now.
func (s *SimNode) drawNowW(index int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drawW(*s.advance(index))
}

// wire overrides the mock device's funcs so that they follow the model.
func (s *SimNode) wire(i int, d *server.Device) {
	m := s.model
	minmW, maxmW := wTomW(m.MinLimitW), wTomW(m.MaxLimitW)
	totalMiB := float64(d.Config.MemoryMB)

	d.GetPowerUsageFunc = func() (uint32, nvml.Return) {
		return wTomW(s.drawNowW(i)), nvml.SUCCESS
	}
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
		g := s.snapshot(i)
		return uint64(g.energymJ), nvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		g := s.snapshot(i)
		return nvml.Utilization{
			Gpu:    uint32(math.Round(g.util * 100)),
			Memory: uint32(math.Round(g.util * simMemUtilShare * 100)),
		}, nvml.SUCCESS
	}
	d.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) {
		return s.snapshot(i).limitmW, nvml.SUCCESS
	}
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) {
		return s.snapshot(i).limitmW, nvml.SUCCESS
	}
	d.GetPowerManagementDefaultLimitFunc = func() (uint32, nvml.Return) {
		return wTomW(m.DefaultLimitW), nvml.SUCCESS
	}
	d.GetPowerManagementLimitConstraintsFunc = func() (uint32, uint32, nvml.Return) {
		return minmW, maxmW, nvml.SUCCESS
	}
	d.SetPowerManagementLimitFunc = func(limitmW uint32) nvml.Return {
		s.mu.Lock()
		defer s.mu.Unlock()
		ret := nvml.SUCCESS
		if s.refuse != nvml.SUCCESS {
			ret = s.refuse // e.g. NO_PERMISSION, as real NVML answers without root
		} else if limitmW < minmW || limitmW > maxmW {
			// Real NVML refuses a limit outside the constraints.
			ret = nvml.ERROR_INVALID_ARGUMENT
		} else {
			s.advance(i).limitmW = limitmW
		}
		s.calls = append(s.calls, LimitCall{Index: i, LimitmW: limitmW, Ret: ret})
		return ret
	}
	d.GetTemperatureFunc = func(sensor nvml.TemperatureSensors) (uint32, nvml.Return) {
		if sensor != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		p := s.drawNowW(i)
		return uint32(math.Round(simAmbientC + simDegCPerW*p)), nvml.SUCCESS
	}
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		g := s.snapshot(i)
		usedMiB := math.Min(simReservedMiB+g.util*simMaxMemShare*(totalMiB-simReservedMiB), totalMiB)
		total := d.Config.MemoryMB * 1024 * 1024
		used := uint64(usedMiB * 1024 * 1024)
		return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
	}
}

// wTomW converts watts to NVML milliwatts, rounding to the nearest and
// saturating at the uint32 range.
func wTomW(w float64) uint32 {
	mW := math.Round(w * 1000)
	switch {
	case !(mW > 0):
		return 0
	case mW >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(mW)
}

func mWToW(mW uint32) float64 { return float64(mW) / 1000 }
