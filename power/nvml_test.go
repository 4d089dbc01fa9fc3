package power

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// TestOpenNVMLWithoutDriver runs where no NVIDIA library is installed (CI,
// laptops): OpenNVML must fail cleanly, not panic, and say what to do.
func TestOpenNVMLWithoutDriver(t *testing.T) {
	lib, shutdown, err := OpenNVML()
	if err == nil {
		defer shutdown()
		n, _ := lib.DeviceGetCount()
		t.Skipf("NVML is present here (%d GPUs); the no-driver path cannot be tested", n)
	}
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("OpenNVML error = %v, want ErrNoDriver", err)
	}
	for _, want := range []string{"libnvidia-ml.so.1", "--sim dgxh100"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("OpenNVML error %q does not mention %q", err, want)
		}
	}
	if lib != nil || shutdown != nil {
		t.Error("OpenNVML returned a library or shutdown func with an error")
	}
}

// simDevice returns the go-nvml mock device behind GPU i, to inject faults.
func simDevice(s *SimNode, i int) *server.Device {
	return s.server.Devices[i].(*server.Device)
}

func TestSetLimitWErrors(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(d *server.Device)
		wantErr []string
		wantIs  nvml.Return
	}{
		{
			name: "not root",
			fault: func(d *server.Device) {
				d.SetPowerManagementLimitFunc = func(uint32) nvml.Return { return nvml.ERROR_NO_PERMISSION }
			},
			wantErr: []string{"GPU 1", "insufficient permissions", "needs root"},
			wantIs:  nvml.ERROR_NO_PERMISSION,
		},
		{
			name: "no power management",
			fault: func(d *server.Device) {
				d.GetPowerManagementLimitConstraintsFunc = func() (uint32, uint32, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
			},
			wantErr: []string{"GPU 1", "constraints", "not supported"},
			wantIs:  nvml.ERROR_NOT_SUPPORTED,
		},
		{
			name: "read-back fails",
			fault: func(d *server.Device) {
				d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
			},
			wantErr: []string{"GPU 1", "read back", "lost"},
			wantIs:  nvml.ERROR_GPU_IS_LOST,
		},
	}
	for _, tt := range tests {
		s, _ := newSim(t, "dgxh100")
		tt.fault(simDevice(s, 1))
		_, err := SetLimitW(s.NVML(), 1, 300)
		if err == nil {
			t.Fatalf("%s: SetLimitW succeeded", tt.name)
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, w)
			}
		}
		if !errors.Is(err, tt.wantIs) {
			t.Errorf("%s: errors.Is(%v, %v) is false", tt.name, err, tt.wantIs)
		}
	}
}

func TestReadGPUsErrors(t *testing.T) {
	// A reading the GPU does not support is left at 0.
	s, _ := newSim(t, "dgxh100")
	simDevice(s, 4).GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	gpus, err := ReadGPUs(s.NVML())
	if err != nil {
		t.Fatalf("ReadGPUs with an unsupported counter: %v", err)
	}
	if gpus[4].EnergyJ != 0 || gpus[4].PowerW == 0 {
		t.Errorf("GPU 4 = %+v, want energy 0 and the rest read", gpus[4])
	}
	// Any other failure is an error naming the GPU and the reading.
	simDevice(s, 5).GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	_, err = ReadGPUs(s.NVML())
	if err == nil || !strings.Contains(err.Error(), "power usage of GPU 5") || !errors.Is(err, nvml.ERROR_GPU_IS_LOST) {
		t.Errorf("ReadGPUs with a lost GPU: %v", err)
	}
	var ne *NVMLError
	if !errors.As(err, &ne) || ne.Ret != nvml.ERROR_GPU_IS_LOST {
		t.Errorf("errors.As NVMLError: %v", err)
	}
}

func TestDescribeReturnUnknownCode(t *testing.T) {
	if got := describeReturn(nvml.Return(12345)); !strings.Contains(got, "12345") {
		t.Errorf("describeReturn(12345) = %q", got)
	}
}
