package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/trainer/internal/cuda"
	"github.com/joulehq/joule/trainer/internal/cuda/standin"
)

// Tests named Standin run the CUDA backend on stand-in libraries built with
// gcc (trainer/internal/cuda/standin): they check, on any machine, that the
// backend computes what the CPU computes. Tests named CUDA need a real GPU
// and skip without one.

func TestMain(m *testing.M) {
	code := m.Run()
	standin.Cleanup()
	os.Exit(code)
}

// useStandins builds the stand-in CUDA libraries (once per test binary) and
// points the loader at them for the rest of the test.
func useStandins(t *testing.T) {
	t.Helper()
	dir, err := standin.Cached(cuda.KernelSource(), standin.Options{})
	if err != nil {
		if errors.Is(err, standin.ErrNoCompiler) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Setenv("JOULE_CUDA_LIB_DIR", dir)
	t.Setenv("JOULE_STANDIN_LOG", "")
}

// realGPU returns the CUDA backend on this machine's GPU, or skips.
func realGPU(t *testing.T, precision string) CUDA {
	t.Helper()
	be, err := openCUDA(nil, precision)
	if err != nil {
		t.Skipf("no usable CUDA GPU here, skipping the GPU check: %v", err)
	}
	if strings.Contains(be.Name(), "Standin") {
		t.Skip("JOULE_CUDA_LIB_DIR points at stand-in libraries, not a GPU")
	}
	return be
}

// parityCase is a small training problem run identically on two backends.
type parityCase struct {
	name    string
	sizes   []int
	act     Activation
	dropout float32
	loss    LossKind
	optim   api.OptimizerSpec
	batch   int
}

var parityCases = []parityCase{
	{"relu-softmax-adam-dropout", []int{20, 16, 12, 5}, ReLU, 0.2, SoftmaxCrossEntropy, api.OptimizerSpec{Name: "adam", LR: 0.01, WeightDecay: 1e-4}, 8},
	{"tanh-bce-sgd", []int{10, 8, 1}, Tanh, 0, BCEWithLogits, api.OptimizerSpec{Name: "sgd", LR: 0.05, Momentum: 0.9}, 6},
	{"sigmoid-mse-adam", []int{7, 9, 2}, Sigmoid, 0.1, MeanSquaredError, api.OptimizerSpec{Name: "adam", LR: 0.005}, 5},
}

// the MNIST model, for the real GPU only (too slow for the stand-ins).
var mnistParity = parityCase{"mnist-784-256-128-10", []int{784, 256, 128, 10}, ReLU, 0.2, SoftmaxCrossEntropy, api.OptimizerSpec{Name: "adam", LR: 0.001}, 128}

// trainSteps trains c's model on be for steps mini-batches drawn from a
// fixed random data set and returns every step's loss and the final
// parameters. The same seed gives both backends the same data, initial
// weights and dropout masks.
func trainSteps(be Backend, c parityCase, steps int) ([]float64, [][]float32) {
	rng := rand.New(rand.NewPCG(7, 7))
	net := NewMLP(be, c.sizes, c.act, c.dropout, rng)
	params, grads := net.Params()
	opt := NewOptimizer(be, c.optim, params)
	in, out := c.sizes[0], c.sizes[len(c.sizes)-1]
	const pool = 4
	xs, ts := make([][]float32, pool), make([][]float32, pool)
	for p := range pool {
		xs[p], ts[p] = make([]float32, c.batch*in), make([]float32, c.batch*out)
		for i := range xs[p] {
			xs[p][i] = float32(rng.NormFloat64())
		}
		for r := range c.batch {
			switch c.loss {
			case SoftmaxCrossEntropy:
				ts[p][r*out+rng.IntN(out)] = 1
			case BCEWithLogits:
				ts[p][r*out] = float32(rng.IntN(2))
			default:
				for j := range out {
					ts[p][r*out+j] = float32(rng.NormFloat64())
				}
			}
		}
	}
	x, tt, dl := be.New(c.batch, in), be.New(c.batch, out), be.New(c.batch, out)
	losses := make([]float64, steps)
	for s := range steps {
		be.Upload(x, xs[s%pool])
		be.Upload(tt, ts[s%pool])
		logits := net.Forward(x, true, rng)
		losses[s] = be.Loss(c.loss, logits, tt, dl)
		net.Backward(dl, true)
		opt.Update(params, grads, c.optim.LR)
	}
	final := make([][]float32, len(params))
	for i, p := range params {
		final[i] = make([]float32, p.Len())
		be.Download(final[i], p)
	}
	return losses, final
}

// checkParity compares every step's loss and, unless paramTol is 0, the
// final parameters.
func checkParity(t *testing.T, gpu Backend, c parityCase, steps int, lossTol, paramTol float64) {
	t.Helper()
	cpuLoss, cpuParams := trainSteps(CPU{}, c, steps)
	if paramTol == 0 {
		cpuParams = nil // losses only
	}
	gpuLoss, gpuParams := trainSteps(gpu, c, steps)
	if err := backendErr(gpu); err != nil {
		t.Fatal(err)
	}
	for s := range steps {
		if !near(gpuLoss[s], cpuLoss[s], lossTol) {
			t.Fatalf("%s: step %d loss %.7g on %s, %.7g on the CPU (relative tolerance %g)", c.name, s+1, gpuLoss[s], gpu.Name(), cpuLoss[s], lossTol)
		}
	}
	for i := range cpuParams {
		for j := range cpuParams[i] {
			if !near(float64(gpuParams[i][j]), float64(cpuParams[i][j]), paramTol) {
				t.Fatalf("%s: parameter %d[%d] = %g on %s, %g on the CPU", c.name, i, j, gpuParams[i][j], gpu.Name(), cpuParams[i][j])
			}
		}
	}
	t.Logf("%s: loss after %d steps %.6f on %s, %.6f on the CPU", c.name, steps, gpuLoss[steps-1], gpu.Name(), cpuLoss[steps-1])
}

// On the stand-ins the kernels are the same C as on the GPU and GEMM a
// plain loop, so 50 steps agree with the CPU to float rounding.
func TestStandinBackendMatchesCPU(t *testing.T) {
	useStandins(t)
	be, err := openCUDA(nil, "fp32")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range parityCases {
		checkParity(t, be, c, 50, 1e-5, 1e-4)
	}
}

// The parity check: CPU and CUDA give the same loss after 50 steps
// within 1e-3 relative, here at every step.
func TestCUDAParityWithCPU(t *testing.T) {
	be := realGPU(t, "fp32")
	for _, c := range append(parityCases, mnistParity) {
		// Losses only: with Adam, a parameter whose gradient is rounding
		// noise may step either way, by lr, on either side.
		checkParity(t, be, c, 50, 1e-3, 0)
	}
}

// Run with device cuda on the stand-ins reports the device, logs it, and
// reaches the CPU's losses.
func TestStandinRunUsesCUDAAndMatchesCPU(t *testing.T) {
	useStandins(t)
	spec := irisSpec()
	spec.Epochs = 5
	cpu, err := Run(context.Background(), spec, Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	spec.Device = "cuda"
	var log bytes.Buffer
	gpu, err := Run(context.Background(), spec, Options{OutDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatalf("Run on the stand-ins: %v\n%s", err, log.String())
	}
	if gpu.Device != "cuda:0 (Standin GPU 0)" {
		t.Errorf("Metrics.Device = %q", gpu.Device)
	}
	if !strings.Contains(log.String(), "backend: cuda:0 (Standin GPU 0) GPU-00010203-0405-0607-0809-0a0b0c0d0e0f, kernels for sm_90, gemm fp32") {
		t.Errorf("no backend line in the log:\n%s", log.String())
	}
	if !near(gpu.TrainLoss, cpu.TrainLoss, 1e-4) || !near(gpu.ValLoss, cpu.ValLoss, 1e-4) || gpu.ValAccuracy != cpu.ValAccuracy {
		t.Errorf("stand-in CUDA run: train loss %g, val loss %g, accuracy %g; CPU: %g, %g, %g",
			gpu.TrainLoss, gpu.ValLoss, gpu.ValAccuracy, cpu.TrainLoss, cpu.ValLoss, cpu.ValAccuracy)
	}
}

// Without CUDA, auto trains on the CPU and says why in one line; device
// cuda is an error that says how to fall back.
func TestRunWithoutCUDAFallsBackToCPU(t *testing.T) {
	t.Setenv("JOULE_CUDA_LIB_DIR", t.TempDir()) // no libraries there
	spec := irisSpec()
	spec.Epochs, spec.Device = 1, "auto"
	var log bytes.Buffer
	m, err := Run(context.Background(), spec, Options{OutDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if m.Device != "cpu" {
		t.Errorf("Metrics.Device = %q, want cpu", m.Device)
	}
	lines := strings.Count(log.String(), "backend: ")
	if lines != 1 || !strings.Contains(log.String(), "(no CUDA GPU: the CUDA driver is not installed: could not load") {
		t.Errorf("want one backend line giving the reason, got:\n%s", log.String())
	}
	spec.Device = "cuda"
	_, err = Run(context.Background(), spec, Options{OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "the spec asks for device cuda") || !strings.Contains(err.Error(), "device: auto") {
		t.Errorf("device cuda without CUDA: error %v", err)
	}
}

// The job's GPUs are chosen by UUID; simulated GPUs are not CUDA devices,
// so the run falls back to the CPU and says so.
func TestStandinRunPicksTheJobsGPU(t *testing.T) {
	useStandins(t)
	spec := irisSpec()
	spec.Epochs, spec.Device = 1, "auto"
	var log bytes.Buffer
	m, err := Run(context.Background(), spec, Options{OutDir: t.TempDir(), Log: &log, GPUUUIDs: []string{"GPU-sim-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Device != "cpu" || !strings.Contains(log.String(), "none of the job's GPUs (GPU-sim-0001) is a CUDA device here") {
		t.Errorf("device %q, log:\n%s", m.Device, log.String())
	}
	m, err = Run(context.Background(), spec, Options{OutDir: t.TempDir(), GPUUUIDs: []string{"GPU-00010203-0405-0607-0809-0a0b0c0d0e0f", "GPU-other"}})
	if err != nil || m.Device != "cuda:0 (Standin GPU 0)" {
		t.Errorf("with the stand-in's UUID: device %q, error %v", m.Device, err)
	}
}

// A device failure in the middle of training stops the run with the
// CUDA error, not a NaN loss or a panic, and writes no checkpoint.
func TestStandinDeviceFailureStopsTheRun(t *testing.T) {
	useStandins(t)
	spec := irisSpec()
	spec.Epochs, spec.Device = 2, "cuda"
	// From the third step on, every kernel launch fails (the stand-in's
	// fault injection), as after an illegal address on a real GPU.
	defer func() { testHookStep = nil }()
	t.Cleanup(func() { os.Unsetenv("JOULE_STANDIN_FAIL") })
	testHookStep = func(epoch, step int) {
		if epoch == 0 && step == 2 {
			be, _ := openCUDA(nil, "")
			be.d.Synchronize() // the owner thread is idle while the environment changes
			os.Setenv("JOULE_STANDIN_FAIL", "launch")
		}
	}
	out := t.TempDir()
	_, err := Run(context.Background(), spec, Options{OutDir: out})
	if err == nil || !strings.Contains(err.Error(), "training failed at epoch 1 step 4") || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
		t.Errorf("error %v, want the CUDA failure with its step", err)
	}
	if _, err := os.Stat(filepath.Join(out, checkpointFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a checkpoint was written after the failure (stat: %v)", err)
	}
}

// The acceptance run of TestMNIST on the GPU: the same accuracy bar as the
// CPU. With tf32 and bf16 GEMM it logs the accuracy each reaches (the
// precision's impact) and wants it within half a point of the bar.
func TestCUDATrainsMNISTToCPUAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the MNIST runs")
	}
	realGPU(t, "fp32")
	dir := mnistDir(t)
	for _, prec := range []string{"fp32", "tf32", "bf16"} {
		spec := mnistSpec(dir)
		spec.Device, spec.Precision = "cuda", prec
		var log strings.Builder
		m, err := Run(context.Background(), spec, Options{OutDir: t.TempDir(), Log: &log})
		if err != nil {
			t.Fatalf("%s: %v\n%s", prec, err, log.String())
		}
		t.Logf("%s on %s: test accuracy %.4f, %.0f samples/s", prec, m.Device, *m.TestAccuracy, m.SamplesPerS)
		bar := 0.98
		if prec != "fp32" {
			bar = 0.975
		}
		if !strings.HasPrefix(m.Device, "cuda:") || *m.TestAccuracy < bar {
			t.Errorf("%s: device %q, test accuracy %.4f, want at least %.3f", prec, m.Device, *m.TestAccuracy, bar)
		}
	}
}

// blobsCSV writes a 6-class problem with overlapping Gaussian blobs in 24
// dimensions (about 90% separable), train and test files, into dir.
func blobsCSV(t *testing.T, dir string) (train, test string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	const classes, dims = 6, 24
	centres := make([][]float64, classes)
	for c := range centres {
		centres[c] = make([]float64, dims)
		for d := range centres[c] {
			centres[c][d] = rng.NormFloat64() * 0.6
		}
	}
	write := func(name string, rows int) string {
		var b strings.Builder
		for d := range dims {
			fmt.Fprintf(&b, "x%d,", d)
		}
		b.WriteString("label\n")
		for range rows {
			c := rng.IntN(classes)
			for d := range dims {
				fmt.Fprintf(&b, "%.4f,", centres[c][d]+rng.NormFloat64())
			}
			fmt.Fprintf(&b, "c%d\n", c)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("train.csv", 6000), write("test.csv", 2000)
}

// A training run on the GPU reaches the CPU's accuracy: with fp32 GEMM
// within half a point, with tf32 and bf16 within one point (logged: the
// precision's accuracy impact). It needs no data set beyond the generated
// one, so it runs wherever a GPU is.
func TestCUDATrainsToCPUAccuracy(t *testing.T) {
	realGPU(t, "fp32")
	dir := t.TempDir()
	train, test := blobsCSV(t, dir)
	spec := api.TrainSpec{
		Dataset:         api.DatasetSpec{Format: "csv", Path: train, TestPath: test, Label: "label"},
		Model:           api.ModelSpec{Hidden: []int{128, 64}, Dropout: 0.1},
		Optimizer:       api.OptimizerSpec{Name: "adam", LR: 0.001},
		BatchSize:       64,
		Epochs:          8,
		ValidationSplit: 0.1,
		Seed:            1,
		Device:          "cpu",
	}
	cpu, err := Run(context.Background(), spec, Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cpu: test accuracy %.4f, val loss %.4f", *cpu.TestAccuracy, cpu.ValLoss)
	for _, prec := range []string{"fp32", "tf32", "bf16"} {
		spec.Device, spec.Precision = "cuda", prec
		var log strings.Builder
		m, err := Run(context.Background(), spec, Options{OutDir: t.TempDir(), Log: &log})
		if err != nil {
			t.Fatalf("%s: %v\n%s", prec, err, log.String())
		}
		t.Logf("%s on %s: test accuracy %.4f (cpu %.4f), val loss %.4f (cpu %.4f), %.0f samples/s",
			prec, m.Device, *m.TestAccuracy, *cpu.TestAccuracy, m.ValLoss, cpu.ValLoss, m.SamplesPerS)
		tol := 0.005
		if prec != "fp32" {
			tol = 0.01
		}
		if math.Abs(*m.TestAccuracy-*cpu.TestAccuracy) > tol {
			t.Errorf("%s: test accuracy %.4f, the CPU's %.4f: more than %.3f apart", prec, *m.TestAccuracy, *cpu.TestAccuracy, tol)
		}
	}
}
