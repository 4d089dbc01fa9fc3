//go:build purego || !amd64

package gemm

func bestKernel() *kernel { return goKernel }

// asmKernels lists the assembly kernels this CPU can run: none in this build.
func asmKernels() []*kernel { return nil }

func transposeStrip(dst []float32, ldd int, rows *[8][]float32, kc8, lanes int) {
	panic("gemm: no assembly in this build")
}

var useAsmVec = false

func adamAVX(params, grads, m1, m2 *float32, n int, c *adamConsts) {
	panic("gemm: no assembly in this build")
}

func saxpyAVX(alpha float32, x, y *float32, n int) { panic("gemm: no assembly in this build") }
func addAVX(dst, src *float32, n int)              { panic("gemm: no assembly in this build") }
func reluAVX(y, x *float32, n int)                 { panic("gemm: no assembly in this build") }
func reluGradAVX(dx, dy, y *float32, n int)        { panic("gemm: no assembly in this build") }

func copyRows(dst []float32, ldd int, src []float32, lds, n, w int) {
	panic("gemm: no assembly in this build")
}
