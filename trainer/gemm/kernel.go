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
var goKernel = newKernel("go4x16", 4, 16, 256, 128, 1024, kernelGo4x16, false)

// active is the kernel Sgemm uses; tests swap it to cover every kernel.
var active = bestKernel()

// KernelName says which micro-kernel Sgemm uses on this machine.
func KernelName() string { return active.name }

// kernelGo4x16 is the pure-Go micro-kernel. Go's register allocator spills
// a register tile of scalars, so the 4x16 tile lives in a stack array that
// stays in L1, updated one row of 16 at a time (axpy form): a load, a
// multiply, an add and a store per element, without bounds checks.
func kernelGo4x16(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	var acc [4 * 16]float32
	a = a[:4*kc]
	b = b[:16*kc]
	for p := 0; p < kc; p++ {
		bp := b[p*16 : p*16+16 : p*16+16]
		ap := a[p*4 : p*4+4 : p*4+4]
		for i := 0; i < 4; i++ {
			ai := ap[i]
			r := acc[i*16 : i*16+16 : i*16+16]
			r[0] += ai * bp[0]
			r[1] += ai * bp[1]
			r[2] += ai * bp[2]
			r[3] += ai * bp[3]
			r[4] += ai * bp[4]
			r[5] += ai * bp[5]
			r[6] += ai * bp[6]
			r[7] += ai * bp[7]
			r[8] += ai * bp[8]
			r[9] += ai * bp[9]
			r[10] += ai * bp[10]
			r[11] += ai * bp[11]
			r[12] += ai * bp[12]
			r[13] += ai * bp[13]
			r[14] += ai * bp[14]
			r[15] += ai * bp[15]
		}
	}
	for i := 0; i < 4; i++ {
		cr := c[i*ldc : i*ldc+16 : i*ldc+16]
		r := acc[i*16 : i*16+16 : i*16+16]
		if beta == 0 {
			for j, v := range r {
				cr[j] = alpha * v
			}
			continue
		}
		for j, v := range r {
			cr[j] = alpha*v + beta*cr[j]
		}
	}
}
