package gemm

import "sync"

// kernel is a micro-kernel with the blocking that suits it.
type kernel struct {
	name   string
	mr, nr int // register tile
	kc     int // depth of a packed panel: an nr x kc B panel stays in L1
	mc     int // rows of a packed A block (multiple of mr): stays in L2
	nc     int // columns of a packed B block (multiple of nr)
	// fn sets the mr x nr tile at c (row stride ldc) to alpha*a*b + beta*c,
	// where a is a packed mr x kc panel and b a packed kc x nr panel; beta == 0
	// does not read c.
	fn func(kc int, a, b, c []float32, ldc int, alpha, beta float32)
	// edgeFn, when set, is fn for the first edgeRows rows of the tile only:
	// the cheaper kernel for the last tile of C when few rows are left.
	edgeFn   func(kc int, a, b, c []float32, ldc int, alpha, beta float32)
	edgeRows int
	// asmPack: transposing packs use transposeStrip (AVX, amd64 only).
	asmPack bool
	work    sync.Pool // *workBuf
	shared  sync.Pool // *[]float32
}

// workBuf is one worker's own pack buffers, grown on demand, and edge tile.
type workBuf struct {
	a, b []float32 // a band of op(A) or of op(B), kc deep
	tile []float32
}

// grownA returns w.a with at least n floats.
func (w *workBuf) grownA(n int) []float32 {
	if len(w.a) < n {
		w.a = make([]float32, n)
	}
	return w.a
}

// grownB returns w.b with at least n floats.
func (w *workBuf) grownB(n int) []float32 {
	if len(w.b) < n {
		w.b = make([]float32, n)
	}
	return w.b
}

// getShared returns a buffer of at least n floats from the pool.
func (kn *kernel) getShared(n int) *[]float32 {
	if v, ok := kn.shared.Get().(*[]float32); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]float32, n)
	return &s
}

func (kn *kernel) putShared(s *[]float32) { kn.shared.Put(s) }

func newKernel(name string, mr, nr, kc, mc, nc int, fn func(kc int, a, b, c []float32, ldc int, alpha, beta float32), asmPack bool) *kernel {
	mc = (mc + mr - 1) / mr * mr
	nc = (nc + nr - 1) / nr * nr
	kn := &kernel{name: name, mr: mr, nr: nr, kc: kc, mc: mc, nc: nc, fn: fn, asmPack: asmPack}
	kn.work.New = func() any { return &workBuf{tile: make([]float32, mr*nr)} }
	return kn
}

// goKernel is the pure-Go fallback, used where no assembly kernel fits the CPU.
var goKernel = newKernel("go4x4", 4, 4, 256, 128, 1024, kernelGo4x4, false)

// active is the kernel Sgemm uses; tests swap it to cover every kernel.
var active = bestKernel()

// KernelName says which micro-kernel Sgemm uses on this machine.
func KernelName() string { return active.name }

// kernelGo4x4 is the pure-Go micro-kernel: a 4x4 tile held in 16 locals.
func kernelGo4x4(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:4*kc]
	b = b[:4*kc]
	for p := 0; p+3 < len(a) && p+3 < len(b); p += 4 {
		a0, a1, a2, a3 := a[p], a[p+1], a[p+2], a[p+3]
		b0, b1, b2, b3 := b[p], b[p+1], b[p+2], b[p+3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	storeRow4(c[0:4], c00, c01, c02, c03, alpha, beta)
	storeRow4(c[ldc:ldc+4], c10, c11, c12, c13, alpha, beta)
	storeRow4(c[2*ldc:2*ldc+4], c20, c21, c22, c23, alpha, beta)
	storeRow4(c[3*ldc:3*ldc+4], c30, c31, c32, c33, alpha, beta)
}

func storeRow4(c []float32, v0, v1, v2, v3, alpha, beta float32) {
	c = c[:4]
	v0, v1, v2, v3 = alpha*v0, alpha*v1, alpha*v2, alpha*v3
	if beta == 0 {
		c[0], c[1], c[2], c[3] = v0, v1, v2, v3
		return
	}
	c[0] = v0 + beta*c[0]
	c[1] = v1 + beta*c[1]
	c[2] = v2 + beta*c[2]
	c[3] = v3 + beta*c[3]
}
