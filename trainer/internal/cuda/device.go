package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Constants of the CUDA, cuBLAS and NVRTC headers that the calls use.
const (
	attrComputeMajor   = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrComputeMinor   = 76 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	eventDisableTiming = 2  // CU_EVENT_DISABLE_TIMING
	cublasOpN          = 0  // CUBLAS_OP_N
	cublasOpT          = 1  // CUBLAS_OP_T
	cudaR32F           = 0  // CUDA_R_32F
	cublasCompute32F   = 68 // CUBLAS_COMPUTE_32F
	cublasFastBF16     = 75 // CUBLAS_COMPUTE_32F_FAST_16BF
	cublasFastTF32     = 77 // CUBLAS_COMPUTE_32F_FAST_TF32
	cublasGemmDefault  = -1 // CUBLAS_GEMM_DEFAULT
	arenaBytes         = 1 << 16
	threadsPerBlock    = 256
	maxBlocks          = 8192
)

// Config chooses the device and the GEMM precision.
type Config struct {
	// UUIDs, when not empty, are the GPUs the job was given (NVML's
	// "GPU-..." form): the first CUDA device with one of them is used, and
	// none matching is an error. Empty means CUDA device 0.
	UUIDs []string
	// Precision of GEMM: "fp32" (default, cublasSgemm), "tf32" or "bf16"
	// (cublasGemmEx with FP32 data and TF32 or BF16 tensor-core compute).
	Precision string
	// Dirs, when not empty, are searched for the libraries (see Load).
	Dirs []string
}

// Device is one GPU's primary context with its streams, cuBLAS handle and
// compiled kernels. Its methods are called by one goroutine (the trainer's)
// and forward every CUDA call to the owner goroutine, which is locked to its
// OS thread and holds the context current.
type Device struct {
	libs *Libs
	q    chan func()

	name    string // "cuda:0 (NVIDIA H200)"
	uuid    string
	sm      string // "sm_90"
	compute int32  // cuBLAS compute type; cublasCompute32F means cublasSgemm

	mu  sync.Mutex
	err error // the first error; later operations are skipped

	// Owned by the owner goroutine.
	ctx, stream, copyStream, blas, module uintptr
	fn                                    []uintptr
	arena                                 unsafe.Pointer // pinned scratch: launch parameters, GEMM scalars, NVRTC options
	lossBuf, partial, result, sumBuf      uintptr
	lossCap, sumCap                       int
}

// Open loads the libraries, picks the device, creates its context, streams
// and cuBLAS handle and compiles the kernels. Each Open starts one owner
// goroutine; a process normally opens one Device and keeps it.
func Open(cfg Config) (*Device, error) {
	var compute int32
	switch cfg.Precision {
	case "", "fp32":
		compute = cublasCompute32F
	case "tf32":
		compute = cublasFastTF32
	case "bf16":
		compute = cublasFastBF16
	default:
		return nil, fmt.Errorf("unknown GEMM precision %q: use fp32, tf32 or bf16", cfg.Precision)
	}
	libs, err := Load(cfg.Dirs...)
	if err != nil {
		return nil, err
	}
	d := &Device{libs: libs, q: make(chan func(), 1024), compute: compute}
	go d.own()
	d.call(func() { d.setErr(d.init(cfg.UUIDs)) })
	if err := d.Err(); err != nil {
		close(d.q)
		return nil, err
	}
	return d, nil
}

// own runs every queued function on one locked OS thread.
func (d *Device) own() {
	runtime.LockOSThread()
	for f := range d.q {
		f()
	}
}

// do queues f on the owner goroutine and returns at once.
func (d *Device) do(f func()) { d.q <- f }

// call runs f on the owner goroutine and waits for it (and so for every
// operation queued before it).
func (d *Device) call(f func()) {
	done := make(chan struct{})
	d.q <- func() { f(); close(done) }
	<-done
}

// Err is the first error any operation met, nil if none.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *Device) setErr(err error) {
	if err == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

func (d *Device) failed() bool { return d.Err() != nil }

// Name is the device as metrics report it, e.g. "cuda:0 (NVIDIA H200)".
func (d *Device) Name() string { return d.name }

// UUID is the device's UUID in NVML's form.
func (d *Device) UUID() string { return d.uuid }

// Arch is the architecture the kernels were compiled for, e.g. "sm_90".
func (d *Device) Arch() string { return d.sm }

// Libraries are the files loaded.
func (d *Device) Libraries() []string { return d.libs.Paths }

// cu turns a driver result into an error naming the call.
func (d *Device) cu(res int32, what string) error {
	if res == 0 {
		return nil
	}
	var s unsafe.Pointer
	msg := fmt.Sprintf("CUresult %d", res)
	if d.libs.cuGetErrorString(res, unsafe.Pointer(&s)) == 0 && s != nil {
		msg = fmt.Sprintf("%s (%d)", cString(s), res)
	}
	return fmt.Errorf("cuda: %s: %s", what, msg)
}

// check records a failed driver call as the sticky error.
func (d *Device) check(res int32, what string) bool {
	if err := d.cu(res, what); err != nil {
		d.setErr(err)
		return false
	}
	return true
}

func cString(p unsafe.Pointer) string {
	var b []byte
	for i := 0; i < 4096; i++ {
		c := *(*byte)(unsafe.Add(p, i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// FormatUUID writes CUDA's 16 UUID bytes in NVML's "GPU-xxxxxxxx-..." form.
func FormatUUID(b [16]byte) string {
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// init runs on the owner goroutine.
func (d *Device) init(uuids []string) error {
	l := d.libs
	if err := d.cu(l.cuInit(0), "cuInit"); err != nil {
		return fmt.Errorf("%w; is the NVIDIA driver loaded (nvidia-smi)?", err)
	}
	var count int32
	if err := d.cu(l.cuDeviceGetCount(unsafe.Pointer(&count)), "cuDeviceGetCount"); err != nil {
		return err
	}
	if count == 0 {
		return errors.New("cuda: the driver sees no GPU (CUDA_VISIBLE_DEVICES may hide them)")
	}
	ordinal, seen := int32(-1), []string{}
	var dev int32
	for i := range count {
		var h int32
		if err := d.cu(l.cuDeviceGet(unsafe.Pointer(&h), i), "cuDeviceGet"); err != nil {
			return err
		}
		var raw [16]byte
		if err := d.cu(l.cuDeviceGetUuid(unsafe.Pointer(&raw), h), "cuDeviceGetUuid"); err != nil {
			return err
		}
		u := FormatUUID(raw)
		seen = append(seen, u)
		if ordinal < 0 && (len(uuids) == 0 || contains(uuids, u)) {
			ordinal, dev, d.uuid = i, h, u
		}
	}
	if ordinal < 0 {
		return fmt.Errorf("cuda: none of the job's GPUs (%s) is a CUDA device here (CUDA sees %s); simulated GPUs have no CUDA device",
			strings.Join(uuids, ","), strings.Join(seen, ","))
	}
	var name [256]byte
	if err := d.cu(l.cuDeviceGetName(unsafe.Pointer(&name[0]), int32(len(name)), dev), "cuDeviceGetName"); err != nil {
		return err
	}
	d.name = fmt.Sprintf("cuda:%d (%s)", ordinal, cString(unsafe.Pointer(&name[0])))
	var major, minor int32
	if err := d.cu(l.cuDeviceGetAttribute(unsafe.Pointer(&major), attrComputeMajor, dev), "cuDeviceGetAttribute(major)"); err != nil {
		return err
	}
	if err := d.cu(l.cuDeviceGetAttribute(unsafe.Pointer(&minor), attrComputeMinor, dev), "cuDeviceGetAttribute(minor)"); err != nil {
		return err
	}
	d.sm = fmt.Sprintf("sm_%d%d", major, minor)
	if err := d.cu(l.cuDevicePrimaryCtxRetain(unsafe.Pointer(&d.ctx), dev), "cuDevicePrimaryCtxRetain"); err != nil {
		return err
	}
	if err := d.cu(l.cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	// Blocking streams (flags 0): the synchronous copies on the legacy
	// default stream wait for them, which orders first uploads and
	// downloads after queued work without extra events.
	if err := d.cu(l.cuStreamCreate(unsafe.Pointer(&d.stream), 0), "cuStreamCreate"); err != nil {
		return err
	}
	if err := d.cu(l.cuStreamCreate(unsafe.Pointer(&d.copyStream), 0), "cuStreamCreate"); err != nil {
		return err
	}
	if err := d.cu(l.cuMemHostAlloc(unsafe.Pointer(&d.arena), arenaBytes, 0), "cuMemHostAlloc(arena)"); err != nil {
		return err
	}
	if st := l.cublasCreate(unsafe.Pointer(&d.blas)); st != 0 {
		return fmt.Errorf("cublas: cublasCreate_v2: status %d", st)
	}
	if st := l.cublasSetStream(d.blas, d.stream); st != 0 {
		return fmt.Errorf("cublas: cublasSetStream_v2: status %d", st)
	}
	cubin, err := d.compile()
	if err != nil {
		return err
	}
	if err := d.cu(l.cuModuleLoadData(unsafe.Pointer(&d.module), unsafe.Pointer(&cubin[0])), "cuModuleLoadData"); err != nil {
		return err
	}
	d.fn = make([]uintptr, len(kernelNames))
	for i, n := range kernelNames {
		if err := d.cu(l.cuModuleGetFunction(unsafe.Pointer(&d.fn[i]), d.module, n), "cuModuleGetFunction("+n+")"); err != nil {
			return err
		}
	}
	if err := d.cu(l.cuMemAlloc(unsafe.Pointer(&d.partial), 8*sumThreads), "cuMemAlloc"); err != nil {
		return err
	}
	return d.cu(l.cuMemAlloc(unsafe.Pointer(&d.result), 8), "cuMemAlloc")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), s) {
			return true
		}
	}
	return false
}

// compileOptions are NVRTC's options for the device: its own architecture
// (a cubin, so the driver need not JIT PTX) and no FMA contraction, so that
// the kernels round as the CPU backend does.
func (d *Device) compileOptions() []string {
	return []string{"--gpu-architecture=" + d.sm, "--fmad=false"}
}

// compile builds kernelSource with NVRTC and returns the cubin.
func (d *Device) compile() ([]byte, error) {
	l := d.libs
	var prog uintptr
	if st := l.nvrtcCreateProgram(unsafe.Pointer(&prog), kernelSource, "joule_kernels.cu", 0, 0, 0); st != 0 {
		return nil, fmt.Errorf("nvrtc: nvrtcCreateProgram: status %d", st)
	}
	defer l.nvrtcDestroyProgram(unsafe.Pointer(&prog))
	// The options as a char*[] in the pinned arena: C memory, no Go pointers.
	opts := d.compileOptions()
	ptrs := unsafe.Slice((*uintptr)(d.arena), len(opts))
	off := 8 * len(opts)
	for i, o := range opts {
		b := unsafe.Slice((*byte)(unsafe.Add(d.arena, off)), len(o)+1)
		copy(b, o)
		b[len(o)] = 0
		ptrs[i] = uintptr(unsafe.Add(d.arena, off))
		off += len(o) + 1
	}
	if st := l.nvrtcCompileProgram(prog, int32(len(opts)), d.arena); st != 0 {
		var size uint64
		log := ""
		if l.nvrtcGetProgramLogSize(prog, unsafe.Pointer(&size)) == 0 && size > 1 {
			buf := make([]byte, size)
			if l.nvrtcGetProgramLog(prog, unsafe.Pointer(&buf[0])) == 0 {
				log = strings.TrimRight(string(buf), "\x00\n")
			}
		}
		return nil, fmt.Errorf("nvrtc: compiling the trainer's kernels for %s failed (status %d): %s; the NVRTC library may be older than the GPU",
			d.sm, st, log)
	}
	var size uint64
	if st := l.nvrtcGetCUBINSize(prog, unsafe.Pointer(&size)); st != 0 || size == 0 {
		return nil, fmt.Errorf("nvrtc: nvrtcGetCUBINSize: status %d, size %d", st, size)
	}
	cubin := make([]byte, size)
	if st := l.nvrtcGetCUBIN(prog, unsafe.Pointer(&cubin[0])); st != 0 {
		return nil, fmt.Errorf("nvrtc: nvrtcGetCUBIN: status %d", st)
	}
	return cubin, nil
}

// Buffer is a float32 array on the device. A buffer that is uploaded more
// than once (a batch) gets a second device array and two pinned staging
// arrays, so that an upload never waits for the compute that still reads
// the previous contents (see Upload).
type Buffer struct {
	N int
	m *bufMem
}

// bufMem is a Buffer's memory; it is freed when the Buffer is collected.
type bufMem struct {
	ptr     [2]uintptr        // device arrays; ptr[1] from the second upload
	cur     int               // which one holds the contents
	uploads int               // uploads so far
	stage   [2]unsafe.Pointer // pinned host arrays for asynchronous uploads
	copied  [2]uintptr        // events: the copy into ptr[i] is done
	mark    [2]uintptr        // events: compute queued before upload into ptr[i]
	pending [2]bool           // copied[i] recorded, stage[i] maybe still read
}

// NewBuffer allocates n zeroed floats on the device.
func (d *Device) NewBuffer(n int) *Buffer {
	m := &bufMem{}
	d.call(func() {
		if d.failed() {
			return
		}
		if d.check(d.libs.cuMemAlloc(unsafe.Pointer(&m.ptr[0]), uint64(4*max(n, 1))), fmt.Sprintf("cuMemAlloc(%d bytes)", 4*n)) {
			d.check(d.libs.cuMemsetD32Async(m.ptr[0], 0, uint64(n), d.stream), "cuMemsetD32Async")
		}
	})
	b := &Buffer{N: n, m: m}
	runtime.AddCleanup(b, d.free, m)
	return b
}

// free releases a collected buffer's memory on the owner goroutine; the
// driver waits for queued work that uses it.
func (d *Device) free(m *bufMem) {
	d.do(func() {
		l := d.libs
		for i := range 2 {
			if m.ptr[i] != 0 {
				l.cuMemFree(m.ptr[i])
			}
			if m.stage[i] != nil {
				l.cuMemFreeHost(m.stage[i])
			}
			if m.copied[i] != 0 {
				l.cuEventDestroy(m.copied[i])
				l.cuEventDestroy(m.mark[i])
			}
		}
	})
}

// ptr is the device array holding b's contents, read when an operation is
// queued (so that a later Upload may switch arrays).
func (b *Buffer) ptr() uintptr { return b.m.ptr[b.m.cur] }

// Upload copies src (b.N values) to b. The first upload is a plain
// synchronous copy. Later ones alternate between two device arrays: upload
// k copies, on the copy stream and through pinned memory, into the array
// that upload k-2 filled, after waiting (on the device) only for the compute
// queued before upload k-1, which is all that can read that array; the
// compute stream then waits for the copy. So the next batch goes up while
// the previous step's backward pass and update still run.
func (d *Device) Upload(b *Buffer, src []float32) {
	src = src[:b.N]
	m := b.m
	k := m.uploads
	m.uploads++
	if b.N == 0 {
		return
	}
	if k == 0 {
		dst := m.ptr[0]
		d.call(func() {
			if !d.failed() {
				d.check(d.libs.cuMemcpyHtoD(dst, unsafe.Pointer(&src[0]), uint64(4*b.N)), "cuMemcpyHtoD_v2")
			}
		})
		return
	}
	slot := k % 2
	if m.stage[slot] == nil || m.pending[slot] {
		d.call(func() {
			if d.failed() {
				return
			}
			l := d.libs
			if m.stage[slot] == nil {
				if slot == 1 && !d.check(l.cuMemAlloc(unsafe.Pointer(&m.ptr[1]), uint64(4*b.N)), "cuMemAlloc") {
					return
				}
				if !d.check(l.cuMemHostAlloc(unsafe.Pointer(&m.stage[slot]), uint64(4*b.N), 0), "cuMemHostAlloc") {
					return
				}
				d.check(l.cuEventCreate(unsafe.Pointer(&m.copied[slot]), eventDisableTiming), "cuEventCreate")
				d.check(l.cuEventCreate(unsafe.Pointer(&m.mark[slot]), eventDisableTiming), "cuEventCreate")
				return
			}
			d.check(l.cuEventSynchronize(m.copied[slot]), "cuEventSynchronize")
		})
		if d.failed() {
			return
		}
	}
	copy(unsafe.Slice((*float32)(m.stage[slot]), b.N), src)
	m.pending[slot], m.cur = true, slot
	dst, stage, copied, mark, prevMark := m.ptr[slot], m.stage[slot], m.copied[slot], m.mark[slot], m.mark[1-slot]
	d.do(func() {
		if d.failed() {
			return
		}
		l := d.libs
		if k >= 2 {
			d.check(l.cuStreamWaitEvent(d.copyStream, prevMark, 0), "cuStreamWaitEvent")
		}
		d.check(l.cuMemcpyHtoDAsync(dst, stage, uint64(4*b.N), d.copyStream), "cuMemcpyHtoDAsync_v2")
		d.check(l.cuEventRecord(copied, d.copyStream), "cuEventRecord")
		d.check(l.cuEventRecord(mark, d.stream), "cuEventRecord")
		d.check(l.cuStreamWaitEvent(d.stream, copied, 0), "cuStreamWaitEvent")
	})
}

// Download copies b into dst (b.N values) after the queued work.
func (d *Device) Download(dst []float32, b *Buffer) {
	dst = dst[:b.N]
	if b.N == 0 {
		return
	}
	src := b.ptr()
	d.call(func() {
		if d.failed() {
			return
		}
		if d.check(d.libs.cuStreamSynchronize(d.stream), "cuStreamSynchronize") {
			d.check(d.libs.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src, uint64(4*b.N)), "cuMemcpyDtoH_v2")
		}
	})
}

// Synchronize waits for all queued work and returns the sticky error.
func (d *Device) Synchronize() error {
	d.call(func() {
		if !d.failed() {
			d.check(d.libs.cuStreamSynchronize(d.stream), "cuStreamSynchronize")
		}
	})
	return d.Err()
}

// Kernel argument encodings: each parameter is one 8-byte slot.
func ptrArg(p uintptr) uint64 { return uint64(p) }
func intArg(v int) uint64     { return uint64(uint32(int32(v))) }
func f32Arg(v float32) uint64 { return uint64(math.Float32bits(v)) }
func f64Arg(v float64) uint64 { return math.Float64bits(v) }
func gridFor(n int) uint32 {
	return uint32(min(max((n+threadsPerBlock-1)/threadsPerBlock, 1), maxBlocks))
}
func (d *Device) slots() []uint64 { return unsafe.Slice((*uint64)(d.arena), arenaBytes/8) }

// launch runs kernel k on the compute stream; it must be called on the
// owner goroutine. The parameter values go into the arena's first slots
// and the void* array that cuLaunchKernel reads into the following ones
// (the driver copies them at launch, so the arena is reused at once).
func (d *Device) launch(k int, grid, block uint32, args ...uint64) {
	if d.failed() {
		return
	}
	s := d.slots()
	base := uintptr(d.arena)
	for i, a := range args {
		s[i] = a
		s[len(args)+i] = uint64(base + uintptr(8*i))
	}
	params := unsafe.Add(d.arena, 8*len(args))
	d.check(d.libs.cuLaunchKernel(d.fn[k], grid, 1, 1, block, 1, 1, 0, d.stream, params, nil), "cuLaunchKernel("+kernelNames[k]+")")
}

// elementwise queues kernel k over n items.
func (d *Device) elementwise(k, n int, args ...uint64) {
	if n == 0 {
		return
	}
	d.do(func() { d.launch(k, gridFor(n), threadsPerBlock, args...) })
}

// Gemm computes c = alpha*op(a)*op(b) + beta*c on row-major arrays, as
// gemm.Sgemm does (op(a) is m x k, op(b) k x n, c m x n, lda, ldb and ldc
// the row strides). cuBLAS is column-major and a row-major matrix is its
// transpose, so this is cuBLAS's c^T = op(b)^T * op(a)^T: the operands swap
// and m and n swap, while the transpose flags stay.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a *Buffer, lda int, b *Buffer, ldb int, beta float32, c *Buffer, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	pa, pb, pc := a.ptr(), b.ptr(), c.ptr()
	opA, opB := int32(cublasOpN), int32(cublasOpN)
	if transA {
		opA = cublasOpT
	}
	if transB {
		opB = cublasOpT
	}
	d.do(func() {
		if d.failed() {
			return
		}
		s := d.slots()
		s[0], s[1] = uint64(math.Float32bits(alpha)), uint64(math.Float32bits(beta))
		pAlpha, pBeta := uintptr(d.arena), uintptr(d.arena)+8
		var st int32
		if d.compute == cublasCompute32F {
			st = d.libs.cublasSgemm(d.blas, opB, opA, int32(n), int32(m), int32(k), pAlpha, pb, int32(ldb), pa, int32(lda), pBeta, pc, int32(ldc))
		} else {
			st = d.libs.cublasGemmEx(d.blas, opB, opA, int32(n), int32(m), int32(k), pAlpha, pb, cudaR32F, int32(ldb), pa, cudaR32F, int32(lda),
				pBeta, pc, cudaR32F, int32(ldc), d.compute, cublasGemmDefault)
		}
		if st != 0 {
			d.setErr(fmt.Errorf("cublas: gemm %dx%dx%d: status %d", m, n, k, st))
		}
	})
}

// AddRowVector adds v (cols values) to every row of x (rows x cols).
func (d *Device) AddRowVector(x, v *Buffer, rows, cols int) {
	d.elementwise(kAddRowVector, rows*cols, ptrArg(x.ptr()), ptrArg(v.ptr()), intArg(rows), intArg(cols))
}

// SumRows sets dst (cols values) to the column sums of x (rows x cols).
// Over many rows it sums chunks of sumChunkRows rows first, then the
// chunks, both in order: deterministic, though not the CPU's order.
func (d *Device) SumRows(dst, x *Buffer, rows, cols int) {
	if rows <= 2*sumChunkRows || cols == 0 {
		d.elementwise(kSumRows, cols, ptrArg(dst.ptr()), ptrArg(x.ptr()), intArg(rows), intArg(cols))
		return
	}
	pd, px := dst.ptr(), x.ptr()
	chunks := (rows + sumChunkRows - 1) / sumChunkRows
	d.do(func() {
		if d.failed() {
			return
		}
		if n := chunks * cols; n > d.sumCap {
			if d.sumBuf != 0 {
				d.libs.cuMemFree(d.sumBuf)
			}
			d.sumBuf, d.sumCap = 0, 0
			if !d.check(d.libs.cuMemAlloc(unsafe.Pointer(&d.sumBuf), uint64(4*n)), "cuMemAlloc") {
				return
			}
			d.sumCap = n
		}
		d.launch(kSumRowsPartial, gridFor(chunks*cols), threadsPerBlock, ptrArg(d.sumBuf), ptrArg(px), intArg(rows), intArg(cols), intArg(sumChunkRows))
		d.launch(kSumRows, gridFor(cols), threadsPerBlock, ptrArg(pd), ptrArg(d.sumBuf), intArg(chunks), intArg(cols))
	})
}

// Mul sets dst to a*b elementwise over n values.
func (d *Device) Mul(dst, a, b *Buffer, n int) {
	d.elementwise(kMul, n, ptrArg(dst.ptr()), ptrArg(a.ptr()), ptrArg(b.ptr()), intArg(n))
}

// Activate sets y = f(x) (f: 0 relu, 1 sigmoid, 2 tanh) over n values.
func (d *Device) Activate(f int, y, x *Buffer, n int) {
	d.elementwise(kActivate, n, intArg(f), ptrArg(y.ptr()), ptrArg(x.ptr()), intArg(n))
}

// ActivateGrad sets dx = dy*f'(x) through y = f(x) over n values.
func (d *Device) ActivateGrad(f int, dx, dy, y *Buffer, n int) {
	d.elementwise(kActivateGrad, n, intArg(f), ptrArg(dx.ptr()), ptrArg(dy.ptr()), ptrArg(y.ptr()), intArg(n))
}

// Loss kinds, as trainer.LossKind.
const (
	LossSoftmaxCrossEntropy = 0
	LossBCEWithLogits       = 1
	LossMeanSquaredError    = 2
)

// Loss returns the mean loss of logits z against targets t (rows x cols)
// and, when grad is not nil, sets grad to its gradient. It waits for the
// result: one small synchronous copy per call.
func (d *Device) Loss(kind int, z, t, grad *Buffer, rows, cols int) float64 {
	if rows == 0 {
		return 0
	}
	pz, pt, pg := z.ptr(), t.ptr(), uintptr(0)
	if grad != nil {
		pg = grad.ptr()
	}
	n := rows * cols
	var out float64
	d.call(func() {
		if d.failed() {
			return
		}
		items := n
		if kind == LossSoftmaxCrossEntropy {
			items = rows
		}
		if items > d.lossCap {
			if d.lossBuf != 0 {
				d.libs.cuMemFree(d.lossBuf)
			}
			d.lossBuf, d.lossCap = 0, 0
			if !d.check(d.libs.cuMemAlloc(unsafe.Pointer(&d.lossBuf), uint64(8*items)), "cuMemAlloc") {
				return
			}
			d.lossCap = items
		}
		scale := 1 / float64(n)
		switch kind {
		case LossSoftmaxCrossEntropy:
			d.launch(kSoftmaxXent, gridFor(rows), threadsPerBlock, ptrArg(pz), ptrArg(pt), ptrArg(pg), ptrArg(d.lossBuf), intArg(rows), intArg(cols), f64Arg(1/float64(rows)))
		case LossBCEWithLogits:
			d.launch(kBCE, gridFor(n), threadsPerBlock, ptrArg(pz), ptrArg(pt), ptrArg(pg), ptrArg(d.lossBuf), intArg(n), f64Arg(scale))
		default:
			d.launch(kMSE, gridFor(n), threadsPerBlock, ptrArg(pz), ptrArg(pt), ptrArg(pg), ptrArg(d.lossBuf), intArg(n), f64Arg(scale))
		}
		d.launch(kSumPartial, 1, sumThreads, ptrArg(d.lossBuf), intArg(items), ptrArg(d.partial))
		d.launch(kSumFinal, 1, 1, ptrArg(d.partial), intArg(sumThreads), ptrArg(d.result))
		if d.failed() || !d.check(d.libs.cuStreamSynchronize(d.stream), "cuStreamSynchronize") {
			return
		}
		d.check(d.libs.cuMemcpyDtoH(unsafe.Pointer(&out), d.result, 8), "cuMemcpyDtoH_v2")
	})
	if d.failed() {
		return math.NaN()
	}
	if kind == LossSoftmaxCrossEntropy {
		return out / float64(rows)
	}
	return out / float64(n)
}

// Output sets dst to predictions from logits z: softmax rows, sigmoid, or a
// copy (kind as in Loss).
func (d *Device) Output(kind int, dst, z *Buffer, rows, cols int) {
	switch kind {
	case LossSoftmaxCrossEntropy:
		d.elementwise(kSoftmax, rows, ptrArg(dst.ptr()), ptrArg(z.ptr()), intArg(rows), intArg(cols))
	case LossBCEWithLogits:
		d.elementwise(kSigmoid, rows*cols, ptrArg(dst.ptr()), ptrArg(z.ptr()), intArg(rows*cols))
	default:
		if dst.ptr() != z.ptr() {
			d.elementwise(kCopy, rows*cols, ptrArg(dst.ptr()), ptrArg(z.ptr()), intArg(rows*cols))
		}
	}
}

// SGD does p -= lr*v after v = momentum*v + g + wd*p over n values.
func (d *Device) SGD(p, g, v *Buffer, n int, lr, momentum, wd float32) {
	d.elementwise(kSGD, n, ptrArg(p.ptr()), ptrArg(g.ptr()), ptrArg(v.ptr()), intArg(n), f32Arg(lr), f32Arg(momentum), f32Arg(wd))
}

// Adam does one bias-corrected Adam step (step from 1) over n values.
func (d *Device) Adam(p, g, m, v *Buffer, n int, lr, beta1, beta2, eps, wd float32, step int) {
	bc1 := 1 - math.Pow(float64(beta1), float64(step))
	bc2 := 1 - math.Pow(float64(beta2), float64(step))
	d.elementwise(kAdam, n, ptrArg(p.ptr()), ptrArg(g.ptr()), ptrArg(m.ptr()), ptrArg(v.ptr()), intArg(n),
		f32Arg(float32(float64(lr)/bc1)), f32Arg(beta1), f32Arg(beta2), f32Arg(eps), f32Arg(wd), f32Arg(float32(math.Sqrt(bc2))))
}
