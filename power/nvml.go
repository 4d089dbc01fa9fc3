package power

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/joulehq/joule/api"
)

// ErrNoDriver is returned (wrapped) by OpenNVML where the NVIDIA driver or
// its NVML library is absent.
var ErrNoDriver = errors.New("no NVIDIA driver found (libnvidia-ml.so.1 could not be loaded): on a machine without GPUs run the agent with --sim dgxh100")

// NVMLError is an NVML call that did not return SUCCESS. Op names the call
// and the GPU; Ret is NVML's code, for errors.As and errors.Is(err, Ret).
type NVMLError struct {
	Op  string
	Ret nvml.Return
}

func (e *NVMLError) Error() string {
	return fmt.Sprintf("%s: %s", e.Op, describeReturn(e.Ret))
}

// Is makes errors.Is(err, nvml.ERROR_NO_PERMISSION) and the like work.
func (e *NVMLError) Is(target error) bool {
	r, ok := target.(nvml.Return)
	return ok && r == e.Ret
}

func nvmlErr(ret nvml.Return, format string, args ...any) error {
	return &NVMLError{Op: fmt.Sprintf(format, args...), Ret: ret}
}

// describeReturn explains the NVML codes an operator can act on. It never
// calls into the NVML library (nvml.Return.Error may, and after Shutdown that
// is unsafe).
func describeReturn(r nvml.Return) string {
	switch r {
	case nvml.ERROR_NO_PERMISSION:
		return "insufficient permissions (NVML_ERROR_NO_PERMISSION): setting power limits needs root"
	case nvml.ERROR_NOT_SUPPORTED:
		return "not supported by this GPU or driver (NVML_ERROR_NOT_SUPPORTED)"
	case nvml.ERROR_INVALID_ARGUMENT:
		return "invalid argument (NVML_ERROR_INVALID_ARGUMENT)"
	case nvml.ERROR_UNINITIALIZED:
		return "NVML is not initialised (NVML_ERROR_UNINITIALIZED): open it with OpenNVML first"
	case nvml.ERROR_GPU_IS_LOST:
		return "the GPU has fallen off the bus or is otherwise lost (NVML_ERROR_GPU_IS_LOST): check dmesg and reset or reboot"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "the NVIDIA kernel driver is not loaded (NVML_ERROR_DRIVER_NOT_LOADED): load it (modprobe nvidia) or install it"
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return "the NVML library and the kernel driver versions differ (NVML_ERROR_LIB_RM_VERSION_MISMATCH): reboot or reload the driver"
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "libnvidia-ml.so.1 not found (NVML_ERROR_LIBRARY_NOT_FOUND)"
	case nvml.ERROR_TIMEOUT:
		return "timed out (NVML_ERROR_TIMEOUT)"
	case nvml.ERROR_NOT_FOUND:
		return "not found (NVML_ERROR_NOT_FOUND)"
	case nvml.ERROR_UNKNOWN:
		return "unknown NVML error (NVML_ERROR_UNKNOWN)"
	}
	return fmt.Sprintf("NVML error code %d", int32(r))
}

// OpenNVML loads and initialises the real NVML library. shutdown releases it
// and may be called more than once. Where the library or the driver is
// absent the error wraps ErrNoDriver and says how to run without GPUs; it
// never panics.
func OpenNVML() (lib nvml.Interface, shutdown func(), err error) {
	lib = nvml.New()
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, nil, fmt.Errorf("open NVML: %w", ErrNoDriver)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, nil, fmt.Errorf("open NVML: %w; %s", ErrNoDriver, describeReturn(ret))
	default:
		return nil, nil, fmt.Errorf("open NVML: %w", nvmlErr(ret, "nvmlInit"))
	}
	var once sync.Once
	return lib, func() { once.Do(func() { lib.Shutdown() }) }, nil
}

// device returns GPU index's handle.
func device(lib nvml.Interface, index int) (nvml.Device, error) {
	d, ret := lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		return nil, nvmlErr(ret, "get handle of GPU %d", index)
	}
	return d, nil
}

// ReadGPUs reads every GPU's identity and telemetry through lib (real NVML
// or a SimNode's). Identity (count, handle, UUID, name) must be readable.
// A telemetry reading that the GPU does not support (NVML_ERROR_NOT_SUPPORTED,
// e.g. the total-energy counter before Volta) is left at 0; any other
// failure is an error that names the GPU and the reading.
func ReadGPUs(lib nvml.Interface) ([]api.GPU, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr(ret, "count GPUs")
	}
	gpus := make([]api.GPU, 0, n)
	for i := range n {
		g, err := readGPU(lib, i)
		if err != nil {
			return nil, err
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

func readGPU(lib nvml.Interface, i int) (api.GPU, error) {
	g := api.GPU{Index: i}
	d, err := device(lib, i)
	if err != nil {
		return g, err
	}
	var ret nvml.Return
	if g.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return g, nvmlErr(ret, "read UUID of GPU %d", i)
	}
	if g.Model, ret = d.GetName(); ret != nvml.SUCCESS {
		return g, nvmlErr(ret, "read name of GPU %d", i)
	}
	// optional turns NOT_SUPPORTED into "leave it 0".
	optional := func(ret nvml.Return, what string) error {
		if ret == nvml.SUCCESS || ret == nvml.ERROR_NOT_SUPPORTED {
			return nil
		}
		return nvmlErr(ret, "read %s of GPU %d (%s)", what, i, g.UUID)
	}
	u, ret := d.GetUtilizationRates()
	if err := optional(ret, "utilisation"); err != nil {
		return g, err
	}
	if ret == nvml.SUCCESS {
		g.Utilization = float64(u.Gpu) / 100
	}
	p, ret := d.GetPowerUsage()
	if err := optional(ret, "power usage"); err != nil {
		return g, err
	}
	g.PowerW = mWToW(p)
	l, ret := d.GetEnforcedPowerLimit()
	if err := optional(ret, "enforced power limit"); err != nil {
		return g, err
	}
	g.LimitW = mWToW(l)
	lo, hi, ret := d.GetPowerManagementLimitConstraints()
	if err := optional(ret, "power limit constraints"); err != nil {
		return g, err
	}
	g.MinLimitW, g.MaxLimitW = mWToW(lo), mWToW(hi)
	e, ret := d.GetTotalEnergyConsumption()
	if err := optional(ret, "total energy"); err != nil {
		return g, err
	}
	g.EnergyJ = float64(e) / 1000
	t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU)
	if err := optional(ret, "temperature"); err != nil {
		return g, err
	}
	g.TemperatureC = float64(t)
	mem, ret := d.GetMemoryInfo()
	if err := optional(ret, "memory"); err != nil {
		return g, err
	}
	g.MemoryUsedMiB = float64(mem.Used) / (1 << 20)
	g.MemoryTotalMiB = float64(mem.Total) / (1 << 20)
	return g, nil
}

// SetLimitW sets GPU index's power limit to w watts, clamped to the GPU's
// constraints, and returns the limit NVML then enforces (which may differ:
// another limit, e.g. a datacenter-wide one, can be lower). Errors say which
// step failed; without root NVML answers NVML_ERROR_NO_PERMISSION and the
// error says that setting power limits needs root.
func SetLimitW(lib nvml.Interface, index int, w float64) (enforcedW float64, err error) {
	if math.IsNaN(w) || math.IsInf(w, 0) || w <= 0 {
		return 0, fmt.Errorf("set power limit of GPU %d: %v W is not a positive number of watts", index, w)
	}
	d, err := device(lib, index)
	if err != nil {
		return 0, fmt.Errorf("set power limit: %w", err)
	}
	lo, hi, ret := d.GetPowerManagementLimitConstraints()
	if ret != nvml.SUCCESS {
		return 0, nvmlErr(ret, "set power limit of GPU %d: read its limit constraints", index)
	}
	limitmW := wTomW(w)
	limitmW = max(limitmW, lo)
	limitmW = min(limitmW, hi)
	if ret := d.SetPowerManagementLimit(limitmW); ret != nvml.SUCCESS {
		return 0, nvmlErr(ret, "set power limit of GPU %d to %.1f W", index, mWToW(limitmW))
	}
	got, ret := d.GetEnforcedPowerLimit()
	if ret != nvml.SUCCESS {
		return 0, nvmlErr(ret, "set power limit of GPU %d: read back the enforced limit", index)
	}
	return mWToW(got), nil
}

// DefaultLimitsW returns each GPU's default power limit in watts, by index:
// the limit to restore when joule lets go of a GPU.
func DefaultLimitsW(lib nvml.Interface) (map[int]float64, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr(ret, "count GPUs")
	}
	out := make(map[int]float64, n)
	for i := range n {
		d, err := device(lib, i)
		if err != nil {
			return nil, fmt.Errorf("default power limits: %w", err)
		}
		l, ret := d.GetPowerManagementDefaultLimit()
		if ret != nvml.SUCCESS {
			return nil, nvmlErr(ret, "read default power limit of GPU %d", i)
		}
		out[i] = mWToW(l)
	}
	return out, nil
}
