package gemm

import (
	"fmt"
	"testing"
)

func BenchmarkTune(b *testing.B) {
	for _, kc := range []int{128, 192, 256, 384} {
		for _, mc := range []int{70, 140, 280, 560} {
			kn := newKernel(fmt.Sprintf("kc%d_mc%d", kc, mc), 14, 32, kc, mc, 4096, kernelAVX512)
			b.Run(kn.name, func(b *testing.B) {
				saved := active
				active = kn
				defer func() { active = saved }()
				benchSgemm(b, false, false, 1024, 1024, 1024)
			})
		}
	}
}
