package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// allKernels is every kernel this build and CPU can run, the fallback last.
func allKernels() []*kernel { return append(asmKernels(), goKernel) }

// withKernel runs f with Sgemm forced onto kn.
func withKernel(t *testing.T, kn *kernel, f func(t *testing.T)) {
	t.Run(kn.name, func(t *testing.T) {
		saved := active
		active = kn
		defer func() { active = saved }()
		f(t)
	})
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra stride beyond the stored row length
	padC           int
}

func (tc gemmCase) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s_m%d_n%d_k%d_a%g_b%g_pad%d.%d.%d", t(tc.transA), t(tc.transB), tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// check runs Sgemm on tc with random data and compares every element of C,
// and the padding between rows, with a float64 reference.
func check(t *testing.T, r *rand.Rand, tc gemmCase) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := max(1, ac)+tc.padA, max(1, bc)+tc.padB, max(1, tc.n)+tc.padC
	a := randSlice(r, max(0, (ar-1)*lda+ac))
	b := randSlice(r, max(0, (br-1)*ldb+bc))
	c := randSlice(r, max(0, (tc.m-1)*ldc+tc.n))
	if tc.beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN()) // beta == 0 must not read C
		}
	}
	c0 := append([]float32(nil), c...)

	opA := func(i, p int) float64 {
		if tc.transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	opB := func(p, j int) float64 {
		if tc.transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}

	Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)

	const eps = 1.0 / (1 << 23)
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			got := c[i*ldc+j]
			if j >= tc.n { // padding: untouched
				if math.Float32bits(got) != math.Float32bits(c0[i*ldc+j]) {
					t.Fatalf("%v: padding C[%d][%d] changed from %v to %v", tc, i, j, c0[i*ldc+j], got)
				}
				continue
			}
			var want, mag float64
			for p := 0; p < tc.k; p++ {
				v := opA(i, p) * opB(p, j)
				want += v
				mag += math.Abs(v)
			}
			want *= float64(tc.alpha)
			mag *= math.Abs(float64(tc.alpha))
			if tc.beta != 0 {
				want += float64(tc.beta) * float64(c0[i*ldc+j])
				mag += math.Abs(float64(tc.beta) * float64(c0[i*ldc+j]))
			}
			tol := 4*float64(tc.k+2)*eps*mag + 1e-30
			if d := math.Abs(float64(got) - want); !(d <= tol) {
				if bad++; bad <= 3 {
					t.Errorf("%v: C[%d][%d] = %v, want %v (diff %g, tol %g)", tc, i, j, got, want, d, tol)
				}
			}
		}
	}
	if bad > 3 {
		t.Fatalf("%v: %d wrong elements", tc, bad)
	}
}

func TestSgemmShapes(t *testing.T) {
	dims := []int{1, 2, 3, 5, 6, 7, 13, 16, 17, 31, 33, 47}
	for _, kn := range allKernels() {
		withKernel(t, kn, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, m := range dims {
						for _, n := range dims {
							k := dims[r.IntN(len(dims))]
							check(t, r, gemmCase{transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, beta: 0})
						}
					}
				}
			}
		})
	}
}

func TestSgemmAlphaBetaStrides(t *testing.T) {
	alphas := []float32{1, -1, 0.5, 2.25}
	betas := []float32{0, 1, -0.5, 3}
	for _, kn := range allKernels() {
		withKernel(t, kn, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			for i := 0; i < 300; i++ {
				tc := gemmCase{
					transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
					m: 1 + r.IntN(40), n: 1 + r.IntN(70), k: 1 + r.IntN(40),
					alpha: alphas[r.IntN(len(alphas))], beta: betas[r.IntN(len(betas))],
					padA: r.IntN(3) * r.IntN(9), padB: r.IntN(3) * r.IntN(9), padC: r.IntN(3) * r.IntN(9),
				}
				check(t, r, tc)
			}
		})
	}
}

// TestSgemmBlocking uses shapes that cross the kc, mc and nc block edges and
// are large enough to run on several goroutines.
func TestSgemmBlocking(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	for _, kn := range allKernels() {
		withKernel(t, kn, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			shapes := [][3]int{
				{kn.mc + 5, 2*kn.nr + 3, kn.kc + 1},
				{2*kn.mc + kn.mr + 1, 37, 2*kn.kc + 9},
				{11, kn.nc + kn.nr + 3, 67},
				{128, 256, 784}, // MLP layer 1 forward
				{784, 256, 128}, // its weight gradient
				{128, 784, 256}, // its input gradient
				{128, 10, 128},
				{97, 89, 83},
			}
			for _, s := range shapes {
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						check(t, r, gemmCase{transA: ta, transB: tb, m: s[0], n: s[1], k: s[2], alpha: 1, beta: 0.5, padC: 3})
					}
				}
			}
		})
	}
}

// TestSgemmWorkers checks the split of C over worker grids of several sizes.
func TestSgemmWorkers(t *testing.T) {
	saved := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(saved)
	r := rand.New(rand.NewPCG(7, 8))
	for _, procs := range []int{1, 2, 3, 4, 6} {
		runtime.GOMAXPROCS(procs)
		for _, s := range [][3]int{{200, 90, 70}, {9, 700, 60}, {700, 9, 60}, {64, 64, 64}, {13, 17, 2000}} {
			check(t, r, gemmCase{m: s[0], n: s[1], k: s[2], alpha: 1.5, beta: 0, padA: 1})
		}
	}
}

func TestSgemmDegenerate(t *testing.T) {
	nan := float32(math.NaN())
	// k == 0 and alpha == 0: C = beta*C, A and B unread.
	c := []float32{nan, nan, nan, nan}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
	for i, v := range c {
		if v != 0 {
			t.Fatalf("k=0 beta=0: c[%d] = %v, want 0", i, v)
		}
	}
	a := []float32{nan, nan, nan, nan}
	c = []float32{1, 2, 3, 4}
	Sgemm(false, true, 2, 2, 2, 0, a, 2, a, 2, 2, c, 2)
	for i, v := range c {
		if v != float32(2*(i+1)) {
			t.Fatalf("alpha=0 beta=2: c[%d] = %v, want %v", i, v, 2*(i+1))
		}
	}
	// m == 0 and n == 0 touch nothing.
	Sgemm(false, false, 0, 3, 3, 1, nil, 3, make([]float32, 9), 3, 0, nil, 3)
	Sgemm(false, false, 3, 0, 3, 1, make([]float32, 9), 3, nil, 1, 0, nil, 1)
}

func TestSgemmPanics(t *testing.T) {
	s := make([]float32, 16)
	cases := map[string]func(){
		"negative m":  func() { Sgemm(false, false, -1, 2, 2, 1, s, 2, s, 2, 0, s, 2) },
		"short lda":   func() { Sgemm(false, false, 2, 2, 3, 1, s, 2, s, 2, 0, s, 2) },
		"short ldb^T": func() { Sgemm(false, true, 2, 2, 3, 1, s, 3, s, 2, 0, s, 2) },
		"short c":     func() { Sgemm(false, false, 4, 4, 1, 1, s, 1, s, 4, 0, s[:15], 4) },
		"short a":     func() { Sgemm(true, false, 4, 4, 4, 1, s[:10], 4, s, 4, 0, s, 4) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestKernelName logs the kernel in use (scripts/bench-trainer.sh prints it).
func TestKernelName(t *testing.T) {
	if KernelName() == "" {
		t.Fatal("no kernel name")
	}
	t.Logf("kernel: %s", KernelName())
}

// TestSgemmDeterministic checks that the result does not depend on the
// number of workers or on which worker took which task.
func TestSgemmDeterministic(t *testing.T) {
	saved := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(saved)
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][5]int{{130, 250, 790, 0, 1}, {20, 600, 300, 1, 0}, {257, 129, 131, 1, 1}} {
		m, n, k := s[0], s[1], s[2]
		ta, tb := s[3] == 1, s[4] == 1
		a, b := randSlice(r, m*k), randSlice(r, k*n)
		lda, ldb := k, n
		if ta {
			lda = m
		}
		if tb {
			ldb = k
		}
		var want []float32
		for _, procs := range []int{1, 2, 3, 8} {
			runtime.GOMAXPROCS(procs)
			for range 3 {
				c := make([]float32, m*n)
				Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, n)
				if want == nil {
					want = c
					continue
				}
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%dx%dx%d with GOMAXPROCS=%d: c[%d] = %v, first run gave %v", m, n, k, procs, i, c[i], want[i])
					}
				}
			}
		}
	}
}

// TestSgemmColumnBlocks lowers the shared-buffer bound so that deep products
// are cut into several blocks of columns, as very deep ones would be.
func TestSgemmColumnBlocks(t *testing.T) {
	saved := maxShared
	maxShared = 3000
	defer func() { maxShared = saved }()
	for _, kn := range allKernels() {
		withKernel(t, kn, func(t *testing.T) {
			r := rand.New(rand.NewPCG(13, 14))
			for _, s := range [][3]int{{5, 100, 300}, {40, 77, 50}, {3, 40, 5000}} {
				for _, tb := range []bool{false, true} {
					check(t, r, gemmCase{transB: tb, m: s[0], n: s[1], k: s[2], alpha: 1, beta: 0.25, padB: 2})
				}
			}
		})
	}
}
