package power

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// PowerW reads GPU index's current draw in watts.
func PowerW(lib nvml.Interface, index int) (float64, error) {
	d, err := device(lib, index)
	if err != nil {
		return 0, err
	}
	p, ret := d.GetPowerUsage()
	if ret != nvml.SUCCESS {
		return 0, nvmlErr(ret, "read power usage of GPU %d", index)
	}
	return mWToW(p), nil
}

// LimitConstraintsW reads GPU index's power-limit constraints in watts.
func LimitConstraintsW(lib nvml.Interface, index int) (minW, maxW float64, err error) {
	d, err := device(lib, index)
	if err != nil {
		return 0, 0, err
	}
	lo, hi, ret := d.GetPowerManagementLimitConstraints()
	if ret != nvml.SUCCESS {
		return 0, 0, nvmlErr(ret, "read power limit constraints of GPU %d", index)
	}
	return mWToW(lo), mWToW(hi), nil
}
