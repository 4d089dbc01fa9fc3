//go:build purego || !amd64

package gemm

func bestKernel() *kernel { return goKernel }

// asmKernels lists the assembly kernels this CPU can run: none in this build.
func asmKernels() []*kernel { return nil }
