// Package standin builds stand-in libcuda, libcublas and libnvrtc shared
// libraries with gcc, for tests of trainer/internal/cuda and the trainer's
// CUDA backend on machines without a GPU. The stand-ins (standin.c.in) keep
// "device" memory on the host, check every argument as the real libraries
// would, run cuBLAS GEMMs as loops and the trainer's kernels as the same
// CUDA C compiled as C, and log their calls to the file named by
// $JOULE_STANDIN_LOG.
//
// It is test support: only tests import it.
package standin

import (
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

//go:embed standin.c.in
var source string

// Options choose what Build makes.
type Options struct {
	// Version is the cuBLAS and NVRTC soname suffix: "12" (default) or "13".
	Version string
	// Omit lists symbols to leave out of the libraries.
	Omit []string
	// Skip lists libraries not to build: "cuda", "cublas", "nvrtc".
	Skip []string
	// Devices is the number of GPUs the driver reports (default 1).
	Devices int
}

// ErrNoCompiler means gcc is not installed; tests skip on it.
var ErrNoCompiler = errors.New("gcc is not installed: the CUDA stand-in libraries cannot be built (apt-get install gcc)")

// Build writes the stand-in libraries into dir, the kernels taken from
// kernelSource (the CUDA C the real backend compiles with NVRTC).
func Build(dir, kernelSource string, opt Options) error {
	if _, err := exec.LookPath("gcc"); err != nil {
		return ErrNoCompiler
	}
	if opt.Version == "" {
		opt.Version = "12"
	}
	tramp, err := trampolines(kernelSource)
	if err != nil {
		return err
	}
	files := map[string]string{"standin.c": source, "kernels.inc": kernelSource, "kernels_tramp.inc": tramp}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	libs := []struct{ key, def, file string }{
		{"cuda", "LIB_CUDA", "libcuda.so.1"},
		{"cublas", "LIB_CUBLAS", "libcublas.so." + opt.Version},
		{"nvrtc", "LIB_NVRTC", "libnvrtc.so." + opt.Version},
	}
	for _, l := range libs {
		if contains(opt.Skip, l.key) {
			continue
		}
		args := []string{"-shared", "-fPIC", "-O1", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wno-unused-function",
			"-D" + l.def, fmt.Sprintf("-DSTANDIN_DEVICES=%d", max(opt.Devices, 1))}
		for _, s := range opt.Omit {
			args = append(args, "-DOMIT_"+s)
		}
		args = append(args, "-o", filepath.Join(dir, l.file), filepath.Join(dir, "standin.c"), "-lm", "-lpthread")
		cmd := exec.Command("gcc", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %v\n%s", l.file, err, out)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var (
	cacheMu sync.Mutex
	cache   = map[string]string{}
	root    string
)

// Cached is Build into a directory shared by every call with the same
// kernels and options in this process, so a test binary compiles each
// variant once. Cleanup removes the directories.
func Cached(kernelSource string, opt Options) (string, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	key := fmt.Sprintf("%x %+v", sha256.Sum256([]byte(kernelSource)), opt)
	if dir, ok := cache[key]; ok {
		return dir, nil
	}
	if root == "" {
		r, err := os.MkdirTemp("", "joule-cuda-standin-")
		if err != nil {
			return "", err
		}
		root = r
	}
	dir := filepath.Join(root, strconv.Itoa(len(cache)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := Build(dir, kernelSource, opt); err != nil {
		return "", err
	}
	cache[key] = dir
	return dir, nil
}

// Cleanup removes what Cached built; call it from TestMain.
func Cleanup() {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if root != "" {
		os.RemoveAll(root)
	}
	root, cache = "", map[string]string{}
}

var kernelDecl = regexp.MustCompile(`KERNEL void (\w+)\(([^)]*)\)`)

// trampolines generates, for every kernel in src, a C function that takes
// cuLaunchKernel's void** parameter array, checks the pointer parameters
// point into device memory and calls the kernel; and the table
// `struct kernel kernels[]` that cuModuleGetFunction searches.
func trampolines(src string) (string, error) {
	var b, table strings.Builder
	b.WriteString("struct kernel { const char* name; int (*run)(void**); int nparams; };\n")
	decls := kernelDecl.FindAllStringSubmatch(src, -1)
	if len(decls) == 0 {
		return "", errors.New("standin: no `KERNEL void name(...)` declarations in the kernel source")
	}
	for _, d := range decls {
		name, params := d[1], strings.Split(d[2], ",")
		var checks, args []string
		for i, p := range params {
			p = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(p), "const "))
			switch {
			case strings.HasPrefix(p, "float*"), strings.HasPrefix(p, "double*"):
				typ := strings.SplitN(p, "*", 2)[0]
				checks = append(checks, fmt.Sprintf("!ptr_ok(*(CUdeviceptr*)p[%d])", i))
				args = append(args, fmt.Sprintf("(%s*)(uintptr_t)*(CUdeviceptr*)p[%d]", typ, i))
			case strings.HasPrefix(p, "int "):
				args = append(args, fmt.Sprintf("*(int*)p[%d]", i))
			case strings.HasPrefix(p, "float "):
				args = append(args, fmt.Sprintf("*(float*)p[%d]", i))
			case strings.HasPrefix(p, "double "):
				args = append(args, fmt.Sprintf("*(double*)p[%d]", i))
			default:
				return "", fmt.Errorf("standin: kernel %s: parameter type of %q not handled", name, p)
			}
		}
		cond := "0"
		if len(checks) > 0 {
			cond = strings.Join(checks, " || ")
		}
		fmt.Fprintf(&b, "static int run_%s(void** p) {\n\tif (%s) return 1;\n\t%s(%s);\n\treturn 0;\n}\n", name, cond, name, strings.Join(args, ", "))
		fmt.Fprintf(&table, "\t{\"%s\", run_%s, %d},\n", name, name, len(params))
	}
	b.WriteString("static struct kernel kernels[] = {\n" + table.String() + "\t{0, 0, 0},\n};\n")
	return b.String(), nil
}
