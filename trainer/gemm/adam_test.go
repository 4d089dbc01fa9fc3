package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamBits checks that Adam gives the same bits as the plain loop, for
// lengths around the vector width, ordinary values, zeros and denormals.
func TestAdamBits(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	val := func() float32 {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return float32(r.Float64()) * 1e-39 // denormal
		default:
			return float32(r.NormFloat64() * 0.01)
		}
	}
	for _, n := range []int{0, 1, 7, 8, 9, 31, 64, 1000, 70001} {
		for _, wd := range []float32{0, 1e-4} {
			p, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range p {
				p[i], g[i], m[i] = val(), val(), val()
				v[i] = float32(math.Abs(float64(val())))
			}
			p2, g2, m2, v2 := append([]float32(nil), p...), append([]float32(nil), g...), append([]float32(nil), m...), append([]float32(nil), v...)
			for step := 1; step <= 3; step++ {
				Adam(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, wd, step)
				saved := useAsmVec
				useAsmVec = false
				Adam(p2, g2, m2, v2, 1e-3, 0.9, 0.999, 1e-8, wd, step)
				useAsmVec = saved
			}
			for i := range p {
				if math.Float32bits(p[i]) != math.Float32bits(p2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) || math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
					t.Fatalf("n=%d wd=%g: element %d: got p,m,v = %v,%v,%v, want %v,%v,%v", n, wd, i, p[i], m[i], v[i], p2[i], m2[i], v2[i])
				}
			}
		}
	}
}

// TestAdamStep checks the formula itself on one element against float64.
func TestAdamStep(t *testing.T) {
	p, g, m, v := []float32{0.5}, []float32{0.2}, []float32{0.1}, []float32{0.01}
	Adam(p, g, m, v, 0.01, 0.9, 0.999, 1e-8, 0.1, 2)
	grad := 0.2 + 0.1*0.5
	mm := 0.9*0.1 + 0.1*grad
	vv := 0.999*0.01 + 0.001*grad*grad
	want := 0.5 - 0.01/(1-0.81)*mm/(math.Sqrt(vv)/math.Sqrt(1-0.999*0.999)+1e-8)
	if math.Abs(float64(p[0])-want) > 1e-6 || math.Abs(float64(m[0])-mm) > 1e-7 || math.Abs(float64(v[0])-vv) > 1e-8 {
		t.Fatalf("p, m, v = %v, %v, %v; want %v, %v, %v", p[0], m[0], v[0], want, mm, vv)
	}
}

func TestAdamPanicsOnLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Adam(make([]float32, 3), make([]float32, 2), make([]float32, 3), make([]float32, 3), 1e-3, 0.9, 0.999, 1e-8, 0, 1)
}

// BenchmarkAdam is one step over the MNIST MLP's 235146 parameters.
func BenchmarkAdam(b *testing.B) {
	const n = 784*256 + 256 + 256*128 + 128 + 128*10 + 10
	r := rand.New(rand.NewPCG(1, 1))
	p, g := randSlice(r, n), randSlice(r, n)
	m, v := make([]float32, n), make([]float32, n)
	for i := range v {
		m[i], v[i] = g[i]*0.1, g[i]*g[i]*0.001
	}
	for _, asm := range []bool{true, false} {
		name := "vector"
		if !asm {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) {
			saved := useAsmVec
			useAsmVec = useAsmVec && asm
			defer func() { useAsmVec = saved }()
			step := 1
			for b.Loop() {
				Adam(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0, step)
				step++
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparams/s")
		})
	}
}
