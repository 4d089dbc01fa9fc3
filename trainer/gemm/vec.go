package gemm

// The small vector kernels of a training step. Each computes exactly what
// its plain Go loop (the *Go functions below, also the fallback) computes,
// bit for bit: the same float32 operations in the same order, no fused
// multiply-add. They panic if the slices' lengths differ.

// Saxpy sets y[i] += alpha*x[i].
func Saxpy(alpha float32, x, y []float32) {
	checkLen("Saxpy", len(x), len(y))
	done := 0
	if useAsmVec && len(y) >= 8 {
		done = len(y) &^ 7
		saxpyAVX(alpha, &x[0], &y[0], done)
	}
	saxpyGo(alpha, x[done:], y[done:])
}

// Add sets dst[i] += src[i]: a bias added to one row, or one row summed into
// a bias gradient.
func Add(dst, src []float32) {
	checkLen("Add", len(src), len(dst))
	done := 0
	if useAsmVec && len(dst) >= 8 {
		done = len(dst) &^ 7
		addAVX(&dst[0], &src[0], done)
	}
	addGo(dst[done:], src[done:])
}

// Relu sets y[i] = max(x[i], 0), with Go's max: NaN stays NaN, -0 becomes +0.
func Relu(y, x []float32) {
	checkLen("Relu", len(x), len(y))
	done := 0
	if useAsmVec && len(y) >= 8 {
		done = len(y) &^ 7
		reluAVX(&y[0], &x[0], done)
	}
	reluGo(y[done:], x[done:])
}

// ReluGrad sets dx[i] = dy[i] where y[i] > 0 and 0 elsewhere (y is the
// ReLU's output); dx may be dy.
func ReluGrad(dx, dy, y []float32) {
	checkLen("ReluGrad", len(dy), len(dx))
	checkLen("ReluGrad", len(y), len(dx))
	done := 0
	if useAsmVec && len(dx) >= 8 {
		done = len(dx) &^ 7
		reluGradAVX(&dx[0], &dy[0], &y[0], done)
	}
	reluGradGo(dx[done:], dy[done:], y[done:])
}

func checkLen(fn string, a, b int) {
	if a != b {
		panic("gemm: " + fn + ": slices of different lengths")
	}
}

func saxpyGo(alpha float32, x, y []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += float32(alpha * v) // rounded: never fused into an FMA
	}
}

func addGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

func reluGo(y, x []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] = max(v, 0)
	}
}

func reluGradGo(dx, dy, y []float32) {
	dy, y = dy[:len(dx)], y[:len(dx)]
	for i, v := range y {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}
