//go:build !purego

package gemm

import "golang.org/x/sys/cpu"

var (
	avx2Kernel   = newKernel("avx2-6x16", 6, 16, 256, 144, 4096, kernelAVX2)
	avx512Kernel = newKernel("avx512-14x32", 14, 32, 256, 280, 4096, kernelAVX512)
)

// kernelAVX512 wraps sgemmKernel14x32AVX512 after checking the slices' lengths.
func kernelAVX512(kc int, a, b, c []float32, ldc int, beta float32) {
	_ = a[14*kc-1]
	_ = b[32*kc-1]
	_ = c[13*ldc+31]
	sgemmKernel14x32AVX512(kc, &a[0], &b[0], &c[0], ldc, beta, betaMode(beta))
}

// kernelAVX2 wraps sgemmKernel6x16AVX2 after checking the slices' lengths.
func kernelAVX2(kc int, a, b, c []float32, ldc int, beta float32) {
	_ = a[6*kc-1]
	_ = b[16*kc-1]
	_ = c[5*ldc+15]
	sgemmKernel6x16AVX2(kc, &a[0], &b[0], &c[0], ldc, beta, betaMode(beta))
}

// betaMode tells the assembly how to store: 0 overwrites, 1 adds, 2 scales.
func betaMode(beta float32) int {
	switch beta {
	case 0:
		return 0
	case 1:
		return 1
	}
	return 2
}

//go:noescape
func sgemmKernel14x32AVX512(kc int, a, b, c *float32, ldc int, beta float32, mode int)

//go:noescape
func sgemmKernel6x16AVX2(kc int, a, b, c *float32, ldc int, beta float32, mode int)

func bestKernel() *kernel {
	if ks := asmKernels(); len(ks) > 0 {
		return ks[0]
	}
	return goKernel
}

// asmKernels lists the assembly kernels this CPU can run, best first.
func asmKernels() []*kernel {
	var ks []*kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return ks
}
