package gemm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices, where
// op(X) is X, or its transpose when transX is true. op(A) is m x k, op(B) is
// k x n and C is m x n; lda, ldb and ldc are the row strides (in elements) of
// a, b and c as stored.
//
// When beta is 0, C is overwritten and its old contents (NaN included) are
// never read. When alpha is 0 or k is 0, A and B are not read.
//
// Sgemm panics when a dimension is negative, a stride is shorter than its
// row, or a slice is too short for its matrix: these are programming errors
// of the caller, as in BLAS.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("a", ar, ac, a, lda)
	checkMatrix("b", br, bc, b, ldb)
	checkMatrix("c", m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	p := &problem{
		transA: transA, transB: transB,
		m: m, n: n, k: k,
		alpha: alpha, a: a, lda: lda,
		b: b, ldb: ldb,
		beta: beta, c: c, ldc: ldc,
		kern: active,
	}
	p.run()
}

// checkMatrix panics unless s can hold a rows x cols matrix with row stride ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("gemm: ld%s=%d is less than the row length %d", name, ld, max(1, cols)))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("gemm: len(%s)=%d, need %d for a %dx%d matrix with stride %d", name, len(s), need, rows, cols, ld))
	}
}

// scaleC sets C = beta*C; beta == 0 writes zeros without reading C.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// parallelMinFMA is the smallest product (m*n*k multiply-adds) worth a second
// goroutine: below it, starting and joining costs more than it saves.
const parallelMinFMA = 1 << 18

// problem is one call of Sgemm.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
	kern           *kernel

	kc, nkb int // depth of a k block (a multiple of 8) and how many there are
}

// kBlock returns the start and depth of k block i.
func (p *problem) kBlock(i int) (p0, kc int) {
	p0 = i * p.kc
	return p0, min(p.kc, p.k-p0)
}

// run computes C in two phases, each a list of tasks that the workers (the
// caller's goroutine and up to GOMAXPROCS-1 more) take in turn from an atomic
// counter, so that a core slowed by other work simply takes fewer tasks.
//
// Usually C is cut into bands of rows: phase 1 packs all of op(B) once,
// shared by every worker; phase 2 gives each worker bands of rows, for which
// it packs op(A) into its own buffer and runs the micro-kernel over all of
// op(B). When C has too few rows for that, the roles swap: op(A) is shared
// and the tasks are bands of columns.
func (p *problem) run() {
	kn := p.kern
	p.nkb = (p.k + kn.kc - 1) / kn.kc
	p.kc = ((p.k+p.nkb-1)/p.nkb + 7) &^ 7 // balanced blocks, 8-aligned for the packers

	workers := 1
	if p.m*p.n*p.k >= parallelMinFMA {
		workers = runtime.GOMAXPROCS(0)
	}
	tilesM := (p.m + kn.mr - 1) / kn.mr
	mPad := tilesM * kn.mr
	if tilesM >= 2*workers || p.m > kn.mc || p.k*mPad > maxShared {
		// Columns in blocks of at most nc, fewer if k is so deep that the
		// shared op(B) would pass maxShared.
		nc := max(kn.nr, min(kn.nc, maxShared/p.k/kn.nr*kn.nr))
		for jc := 0; jc < p.n; jc += nc {
			p.runRows(workers, jc, min(nc, p.n-jc))
		}
		return
	}
	p.runCols(workers)
}

// maxShared bounds, in floats, the packed operand that the workers share
// (all of k times a block of columns or rows): 64 MiB. Tests lower it.
var maxShared = 16 << 20

// team runs the phases on workers goroutines: each calls phase1(t) for the
// tasks t < n1 it takes, waits until all of phase 1 is done, then phase2(t)
// for the tasks t < n2 it takes.
func team(workers, n1, n2 int, phase1, phase2 func(w *workBuf, t int), kn *kernel) {
	var next1, done1, next2 atomic.Int64
	packed := make(chan struct{}) // closed when phase 1 is done
	if n1 == 0 {
		close(packed)
	}
	work := func() {
		w := kn.work.Get().(*workBuf)
		defer kn.work.Put(w)
		for {
			t := int(next1.Add(1) - 1)
			if t >= n1 {
				break
			}
			phase1(w, t)
			if done1.Add(1) == int64(n1) {
				close(packed)
			}
		}
		// Others are packing the last phase-1 tasks: spin briefly, then
		// sleep, so that a worker whose core was taken by another process
		// does not make this one burn its own core.
		for i := 0; i < 2000 && done1.Load() < int64(n1); i++ {
		}
		<-packed
		for {
			t := int(next2.Add(1) - 1)
			if t >= n2 {
				break
			}
			phase2(w, t)
		}
	}
	workers = min(workers, n2)
	if workers <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// runRows computes columns [jc, jc+nc) of C: phase 1 packs op(B)[:, jc:jc+nc]
// into a buffer shared by the workers, phase 2 takes bands of rows.
func (p *problem) runRows(workers, jc, nc int) {
	kn := p.kern
	mr, nr := kn.mr, kn.nr
	npanels := (nc + nr - 1) / nr
	ncPad := npanels * nr
	shared := kn.getShared(p.k * ncPad)
	defer kn.putShared(shared)
	bp := *shared

	// Phase 1: (k block, group of panels) pairs.
	const panelsPerTask = 4
	groups := (npanels + panelsPerTask - 1) / panelsPerTask
	pack := func(_ *workBuf, t int) {
		p0, kc := p.kBlock(t / groups)
		s0 := (t % groups) * panelsPerTask * nr
		packB(bp[p0*ncPad+s0*kc:], p.b, p.ldb, p.transB, p0, kc, jc+s0, min(panelsPerTask*nr, nc-s0), nr, kn.asmPack)
	}

	// Phase 2: bands of whole tiles, about four per worker, at most mc rows.
	tilesM := (p.m + mr - 1) / mr
	perTask := max(1, min(tilesM/(4*workers), kn.mc/mr))
	bands := (tilesM + perTask - 1) / perTask
	compute := func(w *workBuf, t int) {
		i0 := t * perTask * mr
		mh := min(perTask*mr, p.m-i0)
		for bi := range p.nkb {
			p0, kc := p.kBlock(bi)
			packA(w.grownA(perTask*mr*kc), p.a, p.lda, p.transA, i0, mh, p0, kc, mr, kn.asmPack)
			p.macro(w, w.a, bp[p0*ncPad:], i0, mh, jc, nc, kc, p.betaFor(bi))
		}
	}
	team(workers, p.nkb*groups, bands, pack, compute, kn)
}

// runCols is runRows with the roles of A and B swapped: for products with
// few rows, op(A) is packed once and shared, and tasks are bands of columns.
func (p *problem) runCols(workers int) {
	kn := p.kern
	mr, nr := kn.mr, kn.nr
	tilesM := (p.m + mr - 1) / mr
	mPad := tilesM * mr
	shared := kn.getShared(p.k * mPad)
	defer kn.putShared(shared)
	ap := *shared

	pack := func(_ *workBuf, t int) {
		p0, kc := p.kBlock(t)
		packA(ap[p0*mPad:], p.a, p.lda, p.transA, 0, p.m, p0, kc, mr, kn.asmPack)
	}
	tilesN := (p.n + nr - 1) / nr
	perTask := max(1, min(tilesN/(4*workers), kn.nc/nr))
	bands := (tilesN + perTask - 1) / perTask
	compute := func(w *workBuf, t int) {
		j0 := t * perTask * nr
		nw := min(perTask*nr, p.n-j0)
		for bi := range p.nkb {
			p0, kc := p.kBlock(bi)
			packB(w.grownB(perTask*nr*kc), p.b, p.ldb, p.transB, p0, kc, j0, nw, nr, kn.asmPack)
			p.macro(w, ap[p0*mPad:], w.b, 0, p.m, j0, nw, kc, p.betaFor(bi))
		}
	}
	team(workers, p.nkb, bands, pack, compute, kn)
}

// betaFor is the beta of k block bi: the caller's for the first, then 1, as
// the later blocks add to what the first one wrote.
func (p *problem) betaFor(bi int) float32 {
	if bi == 0 {
		return p.beta
	}
	return 1
}

// macro runs the micro-kernel over rows [i0, i0+mh) and columns [j0, j0+nw)
// of C, from op(A) packed in ap (mr-row panels) and op(B) packed in bp
// (nr-column panels), both kc deep. Each B panel stays in L1 while the A
// panels stream past it.
func (p *problem) macro(w *workBuf, ap, bp []float32, i0, mh, j0, nw, kc int, beta float32) {
	kn := p.kern
	mr, nr := kn.mr, kn.nr
	for jr := 0; jr < nw; jr += nr {
		bpan := bp[jr*kc : jr*kc+kc*nr]
		wd := min(nr, nw-jr)
		for ir := 0; ir < mh; ir += mr {
			apan := ap[ir*kc : ir*kc+kc*mr]
			h := min(mr, mh-ir)
			off := (i0+ir)*p.ldc + j0 + jr
			if h == mr && wd == nr {
				kn.fn(kc, apan, bpan, p.c[off:], p.ldc, p.alpha, beta)
				continue
			}
			if h <= kn.edgeRows {
				kn.edgeFn(kc, apan, bpan, w.tile, nr, p.alpha, 0)
			} else {
				kn.fn(kc, apan, bpan, w.tile, nr, p.alpha, 0)
			}
			mergeTile(p.c[off:], p.ldc, w.tile, nr, h, wd, beta)
		}
	}
}

// mergeTile sets the h x w corner of C to tile + beta*C.
func mergeTile(c []float32, ldc int, tile []float32, ldt, h, w int, beta float32) {
	for i := 0; i < h; i++ {
		cr := c[i*ldc : i*ldc+w]
		tr := tile[i*ldt : i*ldt+w]
		switch beta {
		case 0:
			copy(cr, tr)
		case 1:
			for j, v := range tr {
				cr[j] += v
			}
		default:
			for j, v := range tr {
				cr[j] = v + beta*cr[j]
			}
		}
	}
}
