package cuda

// kernelSource is the CUDA C of every kernel, compiled once per process by
// NVRTC. It is written in the common subset of CUDA C and C99 (no shared
// memory, no templates, one thread per independent piece of work) so that
// the stand-in driver used by the tests (package standin) compiles the same
// text with gcc and runs it on the host: the tests then check the kernels'
// arithmetic and their launch parameters, not only that they were called.
//
// The arithmetic mirrors the CPU backend (trainer/cpu.go) operation by
// operation: losses in double, sums in row order, the same Adam and SGD
// formulas, so that CPU and CUDA differ only by GEMM rounding.
//
// Every kernel is a grid-stride loop over its work items, so any grid size
// is correct; launches use 256 threads per block.
const kernelSource = `
#ifndef KERNEL
#define KERNEL extern "C" __global__
#define DEVICE __device__ static
#endif

DEVICE float sigmoid_f(float x) {
	if (x >= 0.0f) return (float)(1.0 / (1.0 + exp(-(double)x)));
	double e = exp((double)x);
	return (float)(e / (1.0 + e));
}

#define GRID_LOOP(i, n) for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (long)(n); i += (long)gridDim.x * blockDim.x)

/* x[r][c] += v[c] */
KERNEL void k_add_row_vector(float* x, const float* v, int rows, int cols) {
	GRID_LOOP(i, (long)rows * cols) { x[i] += v[i % cols]; }
}

/* dst[c] = sum over r of x[r][c], in row order */
KERNEL void k_sum_rows(float* dst, const float* x, int rows, int cols) {
	GRID_LOOP(c, cols) {
		float s = 0.0f;
		for (int r = 0; r < rows; r++) s += x[(long)r * cols + c];
		dst[c] = s;
	}
}

/* First pass of a column sum over many rows: partial[k][c] is the sum of
   x[r][c] over chunk k of the rows (chunk rows each, in row order). Then
   k_sum_rows adds the chunks' partials in order. Many threads (chunks x
   cols) keep the GPU busy where one thread per column would not. */
KERNEL void k_sum_rows_partial(float* partial, const float* x, int rows, int cols, int chunk) {
	long chunks = (rows + chunk - 1) / chunk;
	GRID_LOOP(i, chunks * cols) {
		long k = i / cols, c = i % cols;
		long r0 = k * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
		float s = 0.0f;
		for (long r = r0; r < r1; r++) s += x[r * cols + c];
		partial[i] = s;
	}
}

KERNEL void k_mul(float* dst, const float* a, const float* b, int n) {
	GRID_LOOP(i, n) { dst[i] = a[i] * b[i]; }
}

/* f: 0 relu, 1 sigmoid, 2 tanh (trainer.Activation) */
KERNEL void k_activate(int f, float* y, const float* x, int n) {
	GRID_LOOP(i, n) {
		float v = x[i];
		if (f == 0) y[i] = v > 0.0f ? v : 0.0f;
		else if (f == 1) y[i] = sigmoid_f(v);
		else y[i] = (float)tanh((double)v);
	}
}

KERNEL void k_activate_grad(int f, float* dx, const float* dy, const float* y, int n) {
	GRID_LOOP(i, n) {
		float v = y[i];
		if (f == 0) dx[i] = v > 0.0f ? dy[i] : 0.0f;
		else if (f == 1) dx[i] = dy[i] * v * (1.0f - v);
		else dx[i] = dy[i] * (1.0f - v * v);
	}
}

/* Softmax cross-entropy, one thread per row: loss[r] is the row's loss,
   grad (if not null) its gradient times inv (1/rows). */
KERNEL void k_softmax_xent(const float* z, const float* t, float* grad, double* loss, int rows, int cols, double inv) {
	GRID_LOOP(r, rows) {
		const float* zr = z + (long)r * cols;
		const float* tr = t + (long)r * cols;
		float zmax = zr[0];
		for (int j = 0; j < cols; j++) zmax = zr[j] > zmax ? zr[j] : zmax;
		double s = 0.0;
		for (int j = 0; j < cols; j++) s += exp((double)(zr[j] - zmax));
		double logS = log(s), sum = 0.0;
		for (int j = 0; j < cols; j++) {
			double logp = (double)(zr[j] - zmax) - logS;
			if (tr[j] != 0.0f) sum -= (double)tr[j] * logp;
			if (grad) grad[(long)r * cols + j] = (float)((exp(logp) - (double)tr[j]) * inv);
		}
		loss[r] = sum;
	}
}

/* Binary cross-entropy with logits, one thread per element; scale is
   1/(rows*cols). */
KERNEL void k_bce(const float* z, const float* t, float* grad, double* loss, int n, double scale) {
	GRID_LOOP(i, n) {
		double zi = (double)z[i], ti = (double)t[i];
		loss[i] = (zi > 0.0 ? zi : 0.0) - zi * ti + log1p(exp(-fabs(zi)));
		if (grad) grad[i] = (float)(((double)sigmoid_f(z[i]) - ti) * scale);
	}
}

/* Mean squared error, one thread per element; scale is 1/(rows*cols). */
KERNEL void k_mse(const float* z, const float* t, float* grad, double* loss, int n, double scale) {
	GRID_LOOP(i, n) {
		double d = (double)z[i] - (double)t[i];
		loss[i] = d * d;
		if (grad) grad[i] = (float)(2.0 * d * scale);
	}
}

/* Deterministic sum in two launches: k_sum_partial with one block of
   blockDim threads writes partial[t] = in[t] + in[t+blockDim] + ...; then
   k_sum_final with one thread adds the partials in order. */
KERNEL void k_sum_partial(const double* in, int n, double* partial) {
	int t = threadIdx.x;
	double s = 0.0;
	for (long i = t; i < n; i += blockDim.x) s += in[i];
	partial[t] = s;
}

KERNEL void k_sum_final(const double* partial, int n, double* out) {
	if (threadIdx.x == 0 && blockIdx.x == 0) {
		double s = 0.0;
		for (int i = 0; i < n; i++) s += partial[i];
		out[0] = s;
	}
}

/* Row-wise softmax, one thread per row; dst may be z. */
KERNEL void k_softmax(float* dst, const float* z, int rows, int cols) {
	GRID_LOOP(r, rows) {
		const float* zr = z + (long)r * cols;
		float* d = dst + (long)r * cols;
		float zmax = zr[0];
		for (int j = 0; j < cols; j++) zmax = zr[j] > zmax ? zr[j] : zmax;
		double s = 0.0;
		for (int j = 0; j < cols; j++) {
			double e = exp((double)(zr[j] - zmax));
			d[j] = (float)e;
			s += e;
		}
		for (int j = 0; j < cols; j++) d[j] = (float)((double)d[j] / s);
	}
}

KERNEL void k_sigmoid(float* dst, const float* z, int n) {
	GRID_LOOP(i, n) { dst[i] = sigmoid_f(z[i]); }
}

KERNEL void k_copy(float* dst, const float* src, int n) {
	GRID_LOOP(i, n) { dst[i] = src[i]; }
}

/* SGD with momentum: v = momentum*v + g + wd*p; p -= lr*v. */
KERNEL void k_sgd(float* p, const float* g, float* v, int n, float lr, float momentum, float wd) {
	GRID_LOOP(i, n) {
		float w = p[i];
		float grad = g[i] + wd * w;
		v[i] = momentum * v[i] + grad;
		p[i] = w - lr * v[i];
	}
}

/* Adam with L2 weight decay; stepSize = lr/(1-beta1^t), sqrtBC2 =
   sqrt(1-beta2^t), computed on the host in double as the CPU does. */
KERNEL void k_adam(float* p, const float* g, float* m, float* v, int n, float stepSize, float beta1, float beta2, float eps, float wd, float sqrtBC2) {
	GRID_LOOP(i, n) {
		float w = p[i];
		float grad = g[i] + wd * w;
		m[i] = beta1 * m[i] + (1.0f - beta1) * grad;
		v[i] = beta2 * v[i] + (1.0f - beta2) * grad * grad;
		float denom = sqrtf(v[i]) / sqrtBC2 + eps;
		p[i] = w - stepSize * m[i] / denom;
	}
}
`

// kernelNames lists the kernels loaded from the module, in the order of
// the kernel constants below.
var kernelNames = []string{
	"k_add_row_vector", "k_sum_rows", "k_sum_rows_partial", "k_mul", "k_activate", "k_activate_grad",
	"k_softmax_xent", "k_bce", "k_mse", "k_sum_partial", "k_sum_final",
	"k_softmax", "k_sigmoid", "k_copy", "k_sgd", "k_adam",
}

// Kernel indices into Device.fn.
const (
	kAddRowVector = iota
	kSumRows
	kSumRowsPartial
	kMul
	kActivate
	kActivateGrad
	kSoftmaxXent
	kBCE
	kMSE
	kSumPartial
	kSumFinal
	kSoftmax
	kSigmoid
	kCopy
	kSGD
	kAdam
)

// sumThreads is the block size of k_sum_partial: the number of partials.
const sumThreads = 256

// sumChunkRows is the rows per chunk of k_sum_rows_partial; SumRows over at
// most 2*sumChunkRows rows takes one pass.
const sumChunkRows = 32

// KernelSource returns the CUDA C text (for the stand-in tests).
func KernelSource() string { return kernelSource }
