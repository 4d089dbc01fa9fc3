package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/joulehq/joule/trainer/internal/cuda/standin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	standin.Cleanup()
	os.Exit(code)
}

// standinDir builds the stand-in libraries (once per options) and points
// their call log at a fresh calls.log. It skips only where gcc is absent.
func standinDir(t *testing.T, opt standin.Options) (dir, logPath string) {
	t.Helper()
	dir, err := standin.Cached(KernelSource(), opt)
	if err != nil {
		if errors.Is(err, standin.ErrNoCompiler) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	logPath = filepath.Join(t.TempDir(), "calls.log")
	t.Setenv("JOULE_STANDIN_LOG", logPath)
	return dir, logPath
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openStandin(t *testing.T, opt standin.Options, cfg Config) (*Device, string) {
	t.Helper()
	dir, logPath := standinDir(t, opt)
	cfg.Dirs = []string{dir}
	d, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open on the stand-ins: %v", err)
	}
	return d, logPath
}

func TestStandinOpenNamesDeviceAndCompilesForItsArch(t *testing.T) {
	d, logPath := openStandin(t, standin.Options{}, Config{})
	if got, want := d.Name(), "cuda:0 (Standin GPU 0)"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
	if got, want := d.UUID(), "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"; got != want {
		t.Errorf("UUID = %q, want %q", got, want)
	}
	if d.Arch() != "sm_90" {
		t.Errorf("Arch = %q, want sm_90 (the stand-in reports compute capability 9.0)", d.Arch())
	}
	if !strings.HasSuffix(d.Libraries()[1], "libcublas.so.12") || !strings.HasSuffix(d.Libraries()[2], "libnvrtc.so.12") {
		t.Errorf("Libraries = %v, want the .12 stand-ins", d.Libraries())
	}
	log := readLog(t, logPath)
	for _, want := range []string{
		"cuInit flags=0",
		"cuDevicePrimaryCtxRetain dev=0",
		"nvrtcCreateProgram name=joule_kernels.cu",
		"nvrtcCompileProgram --gpu-architecture=sm_90 --fmad=false",
		"cuModuleLoadData STANDIN-CUBIN sm_90",
		"cublasSetStream_v2 set=1",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("call log lacks %q:\n%s", want, log)
		}
	}
}

func TestStandinVersion13IsPreferred(t *testing.T) {
	d, _ := openStandin(t, standin.Options{Version: "13"}, Config{})
	if !strings.HasSuffix(d.Libraries()[1], "libcublas.so.13") || !strings.HasSuffix(d.Libraries()[2], "libnvrtc.so.13") {
		t.Errorf("Libraries = %v, want the .13 stand-ins", d.Libraries())
	}
}

func TestStandinMissingLibraryIsAClearError(t *testing.T) {
	dir, _ := standinDir(t, standin.Options{Skip: []string{"cublas"}})
	_, err := Open(Config{Dirs: []string{dir}})
	if err == nil {
		t.Fatal("Open without libcublas succeeded")
	}
	for _, want := range []string{"cuBLAS is not installed", "libcublas.so.13", "libcublas.so.12", libDirEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStandinMissingSymbolIsAnErrorNamingIt(t *testing.T) {
	for _, sym := range []string{"cuLaunchKernel", "cublasGemmEx", "nvrtcGetCUBIN", "cuMemAlloc_v2"} {
		t.Run(sym, func(t *testing.T) {
			dir, _ := standinDir(t, standin.Options{Omit: []string{sym}})
			_, err := Open(Config{Dirs: []string{dir}})
			if err == nil || !strings.Contains(err.Error(), "no symbol "+sym) {
				t.Fatalf("Open without %s: error %v, want one naming the symbol", sym, err)
			}
		})
	}
}

func TestStandinUUIDPicksTheJobsGPU(t *testing.T) {
	d, logPath := openStandin(t, standin.Options{Devices: 2}, Config{UUIDs: []string{"GPU-10111213-1415-1617-1819-1a1b1c1d1e1f"}})
	if got, want := d.Name(), "cuda:1 (Standin GPU 1)"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
	if !strings.Contains(readLog(t, logPath), "cuDevicePrimaryCtxRetain dev=1") {
		t.Error("the context was not made on device 1")
	}
	dir, _ := standinDir(t, standin.Options{Devices: 2})
	_, err := Open(Config{Dirs: []string{dir}, UUIDs: []string{"GPU-deadbeef-0000-0000-0000-000000000000"}})
	if err == nil || !strings.Contains(err.Error(), "none of the job's GPUs (GPU-deadbeef") || !strings.Contains(err.Error(), "GPU-00010203") {
		t.Errorf("unknown UUID: error %v, want one naming the job's GPU and the ones CUDA sees", err)
	}
}

func TestStandinUnknownPrecisionIsRefused(t *testing.T) {
	if _, err := Open(Config{Precision: "fp8"}); err == nil || !strings.Contains(err.Error(), "fp32, tf32 or bf16") {
		t.Errorf("precision fp8: error %v", err)
	}
}

// refGemm is row-major c = alpha*op(a)*op(b) + beta*c, in float64.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float32 {
	out := append([]float32(nil), c...)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				av := a[i*lda+p]
				if transA {
					av = a[p*lda+i]
				}
				bv := b[p*ldb+j]
				if transB {
					bv = b[j*ldb+p]
				}
				s += float64(av) * float64(bv)
			}
			out[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
	return out
}

func seq(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32((i*7)%11-5)
	}
	return v
}

func (d *Device) upload(v []float32) *Buffer {
	b := d.NewBuffer(len(v))
	d.Upload(b, v)
	return b
}

func (d *Device) download(b *Buffer) []float32 {
	v := make([]float32, b.N)
	d.Download(v, b)
	return v
}

func close32(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// The row-major GEMM becomes cuBLAS's column-major one with the operands
// swapped; a wrong mapping gives wrong numbers or a rejected leading
// dimension in the stand-in.
func TestStandinGemmRowMajorMapping(t *testing.T) {
	for _, prec := range []string{"fp32", "tf32", "bf16"} {
		d, logPath := openStandin(t, standin.Options{}, Config{Precision: prec})
		const m, n, k = 3, 5, 4
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			ta, tb := tr[0], tr[1]
			a, lda := seq(m*k, 0.5), k
			if ta {
				lda = m
			}
			b, ldb := seq(k*n, 0.25), n
			if tb {
				ldb = k
			}
			c := seq(m*n, 1)
			want := refGemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, 0.5, c, n)
			bc := d.upload(c)
			d.Gemm(ta, tb, m, n, k, 1.5, d.upload(a), lda, d.upload(b), ldb, 0.5, bc, n)
			close32(t, prec+" gemm", d.download(bc), want, 1e-6)
		}
		if err := d.Err(); err != nil {
			t.Fatal(err)
		}
		log := readLog(t, logPath)
		// transA=true, transB=false: cuBLAS sees (opB=N, opA=T), m and n swapped.
		if !strings.Contains(log, "transa=0 transb=1 m=5 n=3 k=4 lda=5 ldb=3 ldc=5 alpha=1.5 beta=0.5") {
			t.Errorf("%s: no GEMM call with the swapped operands in the log:\n%s", prec, log)
		}
		wantCompute := map[string]string{"fp32": "", "tf32": "cublasGemmEx compute=77", "bf16": "cublasGemmEx compute=75"}[prec]
		if wantCompute == "" && strings.Contains(log, "cublasGemmEx") || wantCompute != "" && !strings.Contains(log, wantCompute) {
			t.Errorf("%s: the log does not show the expected GEMM entry point (%q)", prec, wantCompute)
		}
	}
}

// Each kernel runs (as C in the stand-in) with the parameters as packed by
// launch; the results are checked against the formulas.
func TestStandinKernelsAndLaunchParameters(t *testing.T) {
	d, logPath := openStandin(t, standin.Options{}, Config{})
	const rows, cols = 3, 4
	x := seq(rows*cols, 0.5)
	v := []float32{1, 2, 3, 4}
	bx, bv := d.upload(x), d.upload(v)
	d.AddRowVector(bx, bv, rows, cols)
	want := append([]float32(nil), x...)
	for i := range want {
		want[i] += v[i%cols]
	}
	close32(t, "AddRowVector", d.download(bx), want, 0)

	sums := d.NewBuffer(cols)
	d.SumRows(sums, bx, rows, cols)
	ws := make([]float32, cols)
	for i, w := range want {
		ws[i%cols] += w
	}
	close32(t, "SumRows", d.download(sums), ws, 0)

	y := d.NewBuffer(rows * cols)
	d.Activate(0, y, bx, rows*cols)
	relu := make([]float32, len(want))
	for i, w := range want {
		relu[i] = max(w, 0)
	}
	close32(t, "ReLU", d.download(y), relu, 0)

	// Softmax cross-entropy against one-hot targets.
	target := make([]float32, rows*cols)
	for r := range rows {
		target[r*cols+r%cols] = 1
	}
	bt, grad := d.upload(target), d.NewBuffer(rows*cols)
	loss := d.Loss(LossSoftmaxCrossEntropy, bx, bt, grad, rows, cols)
	var wantLoss float64
	wantGrad := make([]float32, rows*cols)
	for r := range rows {
		z := want[r*cols : (r+1)*cols]
		zmax := z[0]
		for _, q := range z {
			zmax = max(zmax, q)
		}
		var s float64
		for _, q := range z {
			s += math.Exp(float64(q - zmax))
		}
		for j, q := range z {
			logp := float64(q-zmax) - math.Log(s)
			wantLoss -= float64(target[r*cols+j]) * logp
			wantGrad[r*cols+j] = float32((math.Exp(logp) - float64(target[r*cols+j])) / rows)
		}
	}
	if math.Abs(loss-wantLoss/rows) > 1e-12 {
		t.Errorf("Loss = %v, want %v", loss, wantLoss/rows)
	}
	close32(t, "Loss grad", d.download(grad), wantGrad, 1e-7)

	// Adam: one step from zero moments moves each weight by lr against the
	// sign of its gradient (bias correction makes m/sqrt(v) = g/|g|).
	p, g := d.upload([]float32{1, 1, 1}), d.upload([]float32{0.5, -2, 3})
	m1, m2 := d.NewBuffer(3), d.NewBuffer(3)
	d.Adam(p, g, m1, m2, 3, 0.1, 0.9, 0.999, 1e-8, 0, 1)
	close32(t, "Adam", d.download(p), []float32{0.9, 1.1, 0.9}, 1e-6)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	// Kernels run on the compute stream (the stand-in numbers streams in
	// creation order, across all devices of the test binary).
	log := readLog(t, logPath)
	for _, want := range []string{
		`cuLaunchKernel k_add_row_vector grid=1 block=256 stream=(\d+)`,
		`cuLaunchKernel k_softmax_xent grid=1 block=256 stream=(\d+)`,
		`cuLaunchKernel k_sum_partial grid=1 block=256 stream=(\d+)`,
		`cuLaunchKernel k_sum_final grid=1 block=1 stream=(\d+)`,
		`cuLaunchKernel k_adam grid=1 block=256 stream=(\d+)`,
	} {
		m := regexp.MustCompile(want).FindStringSubmatch(log)
		if m == nil || m[1] == "-1" {
			t.Errorf("call log lacks %q on a created stream", want)
		}
	}
}

// The first upload of a buffer is a plain copy; later ones go through
// pinned memory on the copy stream (stream 1) into alternating arrays, and
// the compute stream waits for them.
func TestStandinRepeatedUploadsArePinnedAndAsync(t *testing.T) {
	d, logPath := openStandin(t, standin.Options{}, Config{})
	b := d.NewBuffer(4)
	for i := range 5 {
		v := []float32{float32(i), 1, 2, 3}
		d.Upload(b, v)
		close32(t, "round trip", d.download(b), v, 0)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	log := readLog(t, logPath)
	copies := regexp.MustCompile(`cuMemcpyHtoDAsync_v2 bytes=16 stream=(\d+)`).FindAllStringSubmatch(log, -1)
	if len(copies) != 4 {
		t.Fatalf("%d asynchronous uploads, want 4:\n%s", len(copies), log)
	}
	if n := strings.Count(log, "cuMemcpyHtoD_v2 bytes=16"); n != 1 {
		t.Errorf("%d synchronous uploads, want 1 (the first)", n)
	}
	// The copies go on a stream of their own, which waits for the compute
	// stream's marks, and the compute stream waits for the copies.
	d.Mul(b, b, b, 4)
	d.download(b)
	log = readLog(t, logPath)
	compute := regexp.MustCompile(`cuLaunchKernel k_mul grid=1 block=256 stream=(\d+)`).FindStringSubmatch(log)
	if compute == nil || compute[1] == copies[0][1] {
		t.Fatalf("kernels and copies on the same stream %s:\n%s", copies[0][1], log)
	}
	for _, s := range []string{copies[0][1], compute[1]} {
		if !strings.Contains(log, "cuStreamWaitEvent stream="+s+"\n") {
			t.Errorf("stream %s never waits for an event", s)
		}
	}
}

// A failed call is sticky and reported, never a panic.
func TestStandinErrorsAreStickyNotPanics(t *testing.T) {
	d, _ := openStandin(t, standin.Options{}, Config{})
	a, b := d.NewBuffer(4), d.NewBuffer(4)
	// Claims 8 values in a 4-value buffer: the stand-in's kernel trampoline
	// passes, but the copy out of range is refused.
	big := &Buffer{N: 8, m: a.m}
	d.Download(make([]float32, 8), big)
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "cuMemcpyDtoH_v2") || !strings.Contains(err.Error(), "CUDA_ERROR_INVALID_VALUE") {
		t.Fatalf("out-of-range download: Err = %v", err)
	}
	d.Mul(a, a, b, 4) // skipped: the device has failed
	if l := d.Loss(LossMeanSquaredError, a, b, nil, 2, 2); !math.IsNaN(l) {
		t.Errorf("Loss after a failure = %v, want NaN", l)
	}
}

// The package deals in device pointers only: nothing of joule's.
func TestImportsNothingOfJoule(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/joulehq/joule") && dep != "github.com/joulehq/joule/trainer/internal/cuda" {
			t.Errorf("trainer/internal/cuda depends on %s", dep)
		}
	}
}

// Over many rows SumRows sums chunks of rows, then the chunks, each in row
// order: the result is that float32 sum exactly, whatever the grid.
func TestStandinSumRowsInChunks(t *testing.T) {
	d, logPath := openStandin(t, standin.Options{}, Config{})
	for _, rows := range []int{1, 64, 65, 100, 1000} {
		const cols = 7
		x := seq(rows*cols, 0.1)
		want := make([]float32, cols)
		for c := range cols {
			var total float32
			for k := 0; k < rows; k += sumChunkRows {
				var s float32
				for r := k; r < min(k+sumChunkRows, rows); r++ {
					s += x[r*cols+c]
				}
				total += s
			}
			if rows <= 2*sumChunkRows { // one pass: plain row order
				total = 0
				for r := range rows {
					total += x[r*cols+c]
				}
			}
			want[c] = total
		}
		dst := d.NewBuffer(cols)
		d.SumRows(dst, d.upload(x), rows, cols)
		close32(t, fmt.Sprintf("SumRows over %d rows", rows), d.download(dst), want, 0)
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readLog(t, logPath), "cuLaunchKernel k_sum_rows_partial grid=1 block=256") {
		t.Error("no chunked pass over 1000 rows")
	}
}
