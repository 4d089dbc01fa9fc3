package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Libs holds the bound entry points of the driver, cuBLAS and NVRTC. The
// types follow the C prototypes: handles and device pointers are uintptr,
// int is int32, size_t is uint64, results (CUresult, cublasStatus_t,
// nvrtcResult) are int32.
type Libs struct {
	Paths []string // the files loaded, for the log

	// Driver API.
	cuInit                   func(flags uint32) int32
	cuDriverGetVersion       func(v unsafe.Pointer) int32
	cuDeviceGetCount         func(n unsafe.Pointer) int32
	cuDeviceGet              func(dev unsafe.Pointer, ordinal int32) int32
	cuDeviceGetName          func(name unsafe.Pointer, length int32, dev int32) int32
	cuDeviceGetUuid          func(uuid unsafe.Pointer, dev int32) int32
	cuDeviceGetAttribute     func(v unsafe.Pointer, attrib int32, dev int32) int32
	cuDevicePrimaryCtxRetain func(ctx unsafe.Pointer, dev int32) int32
	cuCtxSetCurrent          func(ctx uintptr) int32
	cuMemAlloc               func(dptr unsafe.Pointer, bytes uint64) int32
	cuMemFree                func(dptr uintptr) int32
	cuMemcpyHtoD             func(dst uintptr, src unsafe.Pointer, bytes uint64) int32
	cuMemcpyDtoH             func(dst unsafe.Pointer, src uintptr, bytes uint64) int32
	cuMemcpyHtoDAsync        func(dst uintptr, src unsafe.Pointer, bytes uint64, stream uintptr) int32
	cuMemcpyDtoHAsync        func(dst uintptr, src uintptr, bytes uint64, stream uintptr) int32
	cuMemsetD32Async         func(dst uintptr, value uint32, n uint64, stream uintptr) int32
	cuMemHostAlloc           func(p unsafe.Pointer, bytes uint64, flags uint32) int32
	cuMemFreeHost            func(p unsafe.Pointer) int32
	cuStreamCreate           func(stream unsafe.Pointer, flags uint32) int32
	cuStreamSynchronize      func(stream uintptr) int32
	cuStreamWaitEvent        func(stream, event uintptr, flags uint32) int32
	cuEventCreate            func(event unsafe.Pointer, flags uint32) int32
	cuEventRecord            func(event, stream uintptr) int32
	cuEventSynchronize       func(event uintptr) int32
	cuEventDestroy           func(event uintptr) int32
	cuModuleLoadData         func(mod unsafe.Pointer, image unsafe.Pointer) int32
	cuModuleGetFunction      func(fn unsafe.Pointer, mod uintptr, name string) int32
	cuLaunchKernel           func(fn uintptr, gx, gy, gz, bx, by, bz, sharedBytes uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuGetErrorString         func(res int32, str unsafe.Pointer) int32

	// cuBLAS.
	cublasCreate    func(handle unsafe.Pointer) int32
	cublasSetStream func(handle, stream uintptr) int32
	cublasSgemm     func(handle uintptr, transA, transB, m, n, k int32, alpha uintptr, a uintptr, lda int32, b uintptr, ldb int32, beta uintptr, c uintptr, ldc int32) int32
	cublasGemmEx    func(handle uintptr, transA, transB, m, n, k int32, alpha uintptr, a uintptr, aType, lda int32, b uintptr, bType, ldb int32, beta uintptr, c uintptr, cType, ldc int32, computeType, algo int32) int32

	// NVRTC.
	nvrtcVersion           func(major, minor unsafe.Pointer) int32
	nvrtcCreateProgram     func(prog unsafe.Pointer, src string, name string, numHeaders int32, headers, includeNames uintptr) int32
	nvrtcCompileProgram    func(prog uintptr, numOptions int32, options unsafe.Pointer) int32
	nvrtcGetProgramLogSize func(prog uintptr, size unsafe.Pointer) int32
	nvrtcGetProgramLog     func(prog uintptr, log unsafe.Pointer) int32
	nvrtcGetCUBINSize      func(prog uintptr, size unsafe.Pointer) int32
	nvrtcGetCUBIN          func(prog uintptr, cubin unsafe.Pointer) int32
	nvrtcDestroyProgram    func(prog unsafe.Pointer) int32
}

// libDirEnv names the directories (colon-separated) searched instead of the
// system's library path.
const libDirEnv = "JOULE_CUDA_LIB_DIR"

// library is one shared library to load: the file names to try in order and
// the symbols to bind from it.
type library struct {
	what  string
	names []string
	syms  []symbol
}

// symbol binds the C function name (or, failing that, its older names) to fn.
type symbol struct {
	names []string
	fn    any
}

func sym(fn any, names ...string) symbol { return symbol{names: names, fn: fn} }

// Load opens the three libraries and binds every symbol the package uses.
// dirs, when not empty, are searched instead of the system's library path
// (dlopen's own search); with no dirs, JOULE_CUDA_LIB_DIR is used if set. A
// missing library or symbol is an error that names it.
func Load(dirs ...string) (*Libs, error) {
	if len(dirs) == 0 {
		if env := os.Getenv(libDirEnv); env != "" {
			dirs = strings.Split(env, ":")
		}
	}
	l := &Libs{}
	libs := []library{
		{"the CUDA driver", []string{"libcuda.so.1"}, []symbol{
			sym(&l.cuInit, "cuInit"),
			sym(&l.cuDriverGetVersion, "cuDriverGetVersion"),
			sym(&l.cuDeviceGetCount, "cuDeviceGetCount"),
			sym(&l.cuDeviceGet, "cuDeviceGet"),
			sym(&l.cuDeviceGetName, "cuDeviceGetName"),
			sym(&l.cuDeviceGetUuid, "cuDeviceGetUuid_v2", "cuDeviceGetUuid"),
			sym(&l.cuDeviceGetAttribute, "cuDeviceGetAttribute"),
			sym(&l.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
			sym(&l.cuCtxSetCurrent, "cuCtxSetCurrent"),
			sym(&l.cuMemAlloc, "cuMemAlloc_v2"),
			sym(&l.cuMemFree, "cuMemFree_v2"),
			sym(&l.cuMemcpyHtoD, "cuMemcpyHtoD_v2"),
			sym(&l.cuMemcpyDtoH, "cuMemcpyDtoH_v2"),
			sym(&l.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
			sym(&l.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
			sym(&l.cuMemsetD32Async, "cuMemsetD32Async"),
			sym(&l.cuMemHostAlloc, "cuMemHostAlloc"),
			sym(&l.cuMemFreeHost, "cuMemFreeHost"),
			sym(&l.cuStreamCreate, "cuStreamCreate"),
			sym(&l.cuStreamSynchronize, "cuStreamSynchronize"),
			sym(&l.cuStreamWaitEvent, "cuStreamWaitEvent"),
			sym(&l.cuEventCreate, "cuEventCreate"),
			sym(&l.cuEventRecord, "cuEventRecord"),
			sym(&l.cuEventSynchronize, "cuEventSynchronize"),
			sym(&l.cuEventDestroy, "cuEventDestroy_v2"),
			sym(&l.cuModuleLoadData, "cuModuleLoadData"),
			sym(&l.cuModuleGetFunction, "cuModuleGetFunction"),
			sym(&l.cuLaunchKernel, "cuLaunchKernel"),
			sym(&l.cuGetErrorString, "cuGetErrorString"),
		}},
		{"cuBLAS", []string{"libcublas.so.13", "libcublas.so.12"}, []symbol{
			sym(&l.cublasCreate, "cublasCreate_v2"),
			sym(&l.cublasSetStream, "cublasSetStream_v2"),
			sym(&l.cublasSgemm, "cublasSgemm_v2"),
			sym(&l.cublasGemmEx, "cublasGemmEx"),
		}},
		{"NVRTC", []string{"libnvrtc.so.13", "libnvrtc.so.12"}, []symbol{
			sym(&l.nvrtcVersion, "nvrtcVersion"),
			sym(&l.nvrtcCreateProgram, "nvrtcCreateProgram"),
			sym(&l.nvrtcCompileProgram, "nvrtcCompileProgram"),
			sym(&l.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize"),
			sym(&l.nvrtcGetProgramLog, "nvrtcGetProgramLog"),
			sym(&l.nvrtcGetCUBINSize, "nvrtcGetCUBINSize"),
			sym(&l.nvrtcGetCUBIN, "nvrtcGetCUBIN"),
			sym(&l.nvrtcDestroyProgram, "nvrtcDestroyProgram"),
		}},
	}
	for _, lib := range libs {
		h, path, err := open(lib, dirs)
		if err != nil {
			return nil, err
		}
		l.Paths = append(l.Paths, path)
		for _, s := range lib.syms {
			if err := bind(h, path, s); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// open dlopens the first of lib's names that loads, in each of dirs (or by
// name alone when dirs is empty).
func open(lib library, dirs []string) (uintptr, string, error) {
	var tried []string
	var lastErr error
	candidates := lib.names
	if len(dirs) > 0 {
		candidates = nil
		for _, d := range dirs {
			for _, n := range lib.names {
				candidates = append(candidates, filepath.Join(d, n))
			}
		}
	}
	for _, path := range candidates {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, path, nil
		}
		tried, lastErr = append(tried, path), err
	}
	where := "the system's library path"
	if len(dirs) > 0 {
		where = libDirEnv + "=" + strings.Join(dirs, ":")
	}
	return 0, "", fmt.Errorf("%s is not installed: could not load %s from %s (%v); install the NVIDIA driver and the CUDA 12 or 13 runtime (cuBLAS, NVRTC), or point %s at their directory",
		lib.what, strings.Join(tried, " or "), where, lastErr, libDirEnv)
}

// bind looks the symbol up before registering it, so that a library without
// it is an error and not a panic inside purego.
func bind(h uintptr, path string, s symbol) error {
	var errs []error
	for _, name := range s.names {
		addr, err := purego.Dlsym(h, name)
		if err == nil && addr != 0 {
			purego.RegisterFunc(s.fn, addr)
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%s has no symbol %s (%v): the library is too old or not the real one; install CUDA 12 or newer",
		path, strings.Join(s.names, " or "), errors.Join(errs...))
}
