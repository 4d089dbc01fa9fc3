package trainer

import (
	"cmp"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/trainer/gemm"

	"github.com/joulehq/joule/trainer/internal/cuda"
)

// CUDA is the GPU backend: every operation is queued on one device
// (trainer/internal/cuda) and runs asynchronously; parameters, gradients,
// optimiser state and activations live on the device, and only Loss (one
// number per call) and Download wait for it. Its arithmetic follows the CPU
// backend operation by operation; GEMM is cuBLAS's (FP32, or TF32/BF16
// tensor cores when the spec asks).
type CUDA struct{ d *cuda.Device }

// Err is the first error the device met, nil if none. The Backend methods
// cannot return errors, so the training loop asks after every step.
func (b CUDA) Err() error { return b.d.Err() }

func (b CUDA) Name() string { return b.d.Name() }

func (b CUDA) New(rows, cols int) *Tensor {
	return &Tensor{Rows: rows, Cols: cols, dev: b.d.NewBuffer(rows * cols)}
}

func (b CUDA) Upload(t *Tensor, src []float32) { b.d.Upload(t.dev, src[:t.Len()]) }

func (b CUDA) Download(dst []float32, t *Tensor) { b.d.Download(dst[:t.Len()], t.dev) }

func (b CUDA) Gemm(transA, transB bool, alpha float32, x, y *Tensor, beta float32, c *Tensor) {
	m, k := x.Rows, x.Cols
	if transA {
		m, k = k, m
	}
	kb, n := y.Rows, y.Cols
	if transB {
		kb, n = n, kb
	}
	if k != kb || c.Rows != m || c.Cols != n {
		panic(fmt.Sprintf("trainer: gemm shapes %dx%d (T=%v) * %dx%d (T=%v) -> %dx%d", x.Rows, x.Cols, transA, y.Rows, y.Cols, transB, c.Rows, c.Cols))
	}
	b.d.Gemm(transA, transB, m, n, k, alpha, x.dev, x.Cols, y.dev, y.Cols, beta, c.dev, c.Cols)
}

func (b CUDA) AddRowVector(x, v *Tensor) { b.d.AddRowVector(x.dev, v.dev, x.Rows, x.Cols) }

func (b CUDA) SumRows(dst, x *Tensor) { b.d.SumRows(dst.dev, x.dev, x.Rows, x.Cols) }

func (b CUDA) Mul(dst, x, y *Tensor) { b.d.Mul(dst.dev, x.dev, y.dev, x.Len()) }

func (b CUDA) Activate(f Activation, y, x *Tensor) { b.d.Activate(int(f), y.dev, x.dev, x.Len()) }

func (b CUDA) ActivateGrad(f Activation, dx, dy, y *Tensor) {
	b.d.ActivateGrad(int(f), dx.dev, dy.dev, y.dev, y.Len())
}

func (b CUDA) Loss(kind LossKind, logits, target, grad *Tensor) float64 {
	var g *cuda.Buffer
	if grad != nil {
		g = grad.dev
	}
	return b.d.Loss(int(kind), logits.dev, target.dev, g, logits.Rows, logits.Cols)
}

func (b CUDA) Output(kind LossKind, dst, logits *Tensor) {
	b.d.Output(int(kind), dst.dev, logits.dev, logits.Rows, logits.Cols)
}

func (b CUDA) SGD(p, g, v *Tensor, lr, momentum, weightDecay float32) {
	b.d.SGD(p.dev, g.dev, v.dev, p.Len(), lr, momentum, weightDecay)
}

func (b CUDA) Adam(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay float32, step int) {
	b.d.Adam(p.dev, g.dev, m.dev, v.dev, p.Len(), lr, beta1, beta2, eps, weightDecay, step)
}

// backendErr is a backend's sticky error (the CUDA backend's), nil for the CPU.
func backendErr(be Backend) error {
	if e, ok := be.(interface{ Err() error }); ok {
		if err := e.Err(); err != nil {
			return fmt.Errorf("%s: %w", be.Name(), err)
		}
	}
	return nil
}

// One device per process and precision: NVRTC compiles the kernels once,
// and a second run in the same process (tests, schedulerd's demo) reuses
// the context.
var (
	cudaMu      sync.Mutex
	cudaDevices = map[string]*cuda.Device{}
)

// openCUDA opens (or reuses) the CUDA device for the job's GPUs.
func openCUDA(uuids []string, precision string) (CUDA, error) {
	cudaMu.Lock()
	defer cudaMu.Unlock()
	key := fmt.Sprint(uuids, precision, os.Getenv("JOULE_CUDA_LIB_DIR"))
	if d := cudaDevices[key]; d != nil && d.Err() == nil {
		return CUDA{d}, nil
	}
	d, err := cuda.Open(cuda.Config{UUIDs: uuids, Precision: precision})
	if err != nil {
		return CUDA{}, err
	}
	cudaDevices[key] = d
	return CUDA{d}, nil
}

// chooseBackend is where the run trains, with the one log line that says
// so: the CUDA device when the spec allows it and one is usable, else the
// CPU with the reason. device "cuda" makes a missing GPU an error.
func chooseBackend(spec api.TrainSpec, uuids []string, logf func(string, ...any)) (Backend, error) {
	cpuLine := fmt.Sprintf("backend: cpu, gemm kernel %s, %d threads", gemm.KernelName(), runtime.GOMAXPROCS(0))
	if spec.Precision != "" && spec.Precision != "fp32" {
		cpuLine += fmt.Sprintf("; precision %s applies to GPU matrix products only, the CPU computes in fp32", spec.Precision)
	}
	if spec.Device == "cpu" {
		logf("%s (the spec asks for the CPU)", cpuLine)
		return CPU{}, nil
	}
	be, err := openCUDA(uuids, spec.Precision)
	if err != nil {
		if spec.Device == "cuda" {
			return nil, fmt.Errorf("the spec asks for device cuda, but no CUDA GPU is usable: %w; set device: auto to fall back to the CPU", err)
		}
		logf("%s (no CUDA GPU: %v)", cpuLine, err)
		return CPU{}, nil
	}
	prec := cmp.Or(spec.Precision, "fp32")
	line := fmt.Sprintf("backend: %s %s, kernels for %s, gemm %s", be.Name(), be.d.UUID(), be.d.Arch(), prec)
	if len(uuids) > 1 {
		line += fmt.Sprintf("; the trainer uses one of the job's %d GPUs", len(uuids))
	}
	logf("%s", line)
	return be, nil
}
