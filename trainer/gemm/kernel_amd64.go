//go:build !purego

//go:generate go run ./internal/gen512 -o kernel512_amd64.s

package gemm

import "golang.org/x/sys/cpu"

var (
	avx2Kernel   = newKernel("avx2-6x16", 6, 16, 256, 144, 4096, kernelAVX2, true)
	avx512Kernel = newKernel("avx512-14x32", 14, 32, 256, 280, 4096, kernelAVX512, true)
)

// kernelAVX512 wraps sgemmKernel14x32AVX512 after checking the slices' lengths.
func kernelAVX512(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[14*kc-1]
	_ = b[32*kc-1]
	_ = c[13*ldc+31]
	sgemmKernel14x32AVX512(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, betaMode(beta))
}

// kernelAVX512Rows4 is kernelAVX512 for the first 4 rows of the tile only.
func kernelAVX512Rows4(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[14*kc-1]
	_ = b[32*kc-1]
	_ = c[3*ldc+31]
	sgemmKernel4x32AVX512(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, betaMode(beta))
}

func init() {
	avx512Kernel.edgeRows, avx512Kernel.edgeFn = 4, kernelAVX512Rows4
}

// kernelAVX2 wraps sgemmKernel6x16AVX2 after checking the slices' lengths.
func kernelAVX2(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[6*kc-1]
	_ = b[16*kc-1]
	_ = c[5*ldc+15]
	sgemmKernel6x16AVX2(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, betaMode(beta))
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
func sgemmKernel4x32AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

//go:noescape
func sgemmKernel14x32AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

//go:noescape
func sgemmKernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

// transpose8 sets dst[q*ldd+i] = rows[i][q] for q < 8n, i < lanes (see
// pack_amd64.s); rows[i] must hold 8n floats.
//
//go:noescape
func transpose8(dst *float32, ldd int, rows *[8]*float32, n int, lanes int)

// transposeStrip sets dst[q*ldd+i] = rows[i][q] for q < kc8 (a multiple of
// 8) and i < lanes, lanes <= 8, checking every bound first.
func transposeStrip(dst []float32, ldd int, rows *[8][]float32, kc8, lanes int) {
	if kc8 == 0 {
		return
	}
	_ = dst[(kc8-1)*ldd+lanes-1]
	var p [8]*float32
	for i := range rows {
		p[i] = &rows[i][:kc8][0]
	}
	transpose8(&dst[0], ldd, &p, kc8/8, lanes)
}

// useAsmVec selects the AVX vector kernels (Adam); tests turn it off to check
// the plain loops.
var useAsmVec = cpu.X86.HasAVX2

//go:noescape
func saxpyAVX(alpha float32, x, y *float32, n int)

//go:noescape
func addAVX(dst, src *float32, n int)

//go:noescape
func reluAVX(y, x *float32, n int)

//go:noescape
func reluGradAVX(dx, dy, y *float32, n int)

//go:noescape
func adamAVX(params, grads, m1, m2 *float32, n int, c *adamConsts)

//go:noescape
func copyStrip(dst *float32, ldd int, src *float32, lds int, n int, w int)

// copyRows sets dst[r*ldd+j] = src[r*lds+j] for r < n, j < w, checking every
// bound first.
func copyRows(dst []float32, ldd int, src []float32, lds, n, w int) {
	if n == 0 || w == 0 {
		return
	}
	_ = dst[(n-1)*ldd+w-1]
	_ = src[(n-1)*lds+w-1]
	copyStrip(&dst[0], ldd, &src[0], lds, n, w)
}

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
