package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vecInput mixes ordinary values with the cases where vector and scalar
// code could part ways: zeros of both signs, NaN, infinities, denormals.
func vecInput(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch r.IntN(10) {
		case 0:
			s[i] = 0
		case 1:
			s[i] = float32(math.Copysign(0, -1))
		case 2:
			s[i] = float32(math.NaN())
		case 3:
			s[i] = float32(math.Inf(2*r.IntN(2) - 1))
		case 4:
			s[i] = float32(r.NormFloat64() * 1e-39)
		default:
			s[i] = float32(r.NormFloat64())
		}
	}
	return s
}

func sameBits(t *testing.T, name string, n int, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s n=%d: [%d] = %v (%#x), want %v (%#x)", name, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestVecBits checks every vector kernel against its plain loop, bit for
// bit, for lengths around the vector width.
func TestVecBits(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for _, n := range []int{0, 1, 7, 8, 9, 16, 33, 1000} {
		x, y := vecInput(r, n), vecInput(r, n)

		got, want := append([]float32(nil), y...), append([]float32(nil), y...)
		Saxpy(1.7, x, got)
		saxpyGo(1.7, x, want)
		sameBits(t, "Saxpy", n, got, want)

		got, want = append([]float32(nil), y...), append([]float32(nil), y...)
		Add(got, x)
		addGo(want, x)
		sameBits(t, "Add", n, got, want)

		got, want = make([]float32, n), make([]float32, n)
		Relu(got, x)
		reluGo(want, x)
		sameBits(t, "Relu", n, got, want)

		got, want = make([]float32, n), make([]float32, n)
		ReluGrad(got, y, x)
		reluGradGo(want, y, x)
		sameBits(t, "ReluGrad", n, got, want)

		got = append([]float32(nil), y...) // in place: dx is dy
		ReluGrad(got, got, x)
		sameBits(t, "ReluGrad in place", n, got, want)
	}
}

func TestVecPanicsOnLengths(t *testing.T) {
	a, b := make([]float32, 3), make([]float32, 4)
	for name, f := range map[string]func(){
		"Saxpy":    func() { Saxpy(1, a, b) },
		"Add":      func() { Add(a, b) },
		"Relu":     func() { Relu(a, b) },
		"ReluGrad": func() { ReluGrad(a, a, b) },
	} {
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

// BenchmarkReluGrad is the backward ReLU of the MNIST MLP's two hidden
// layers at batch 128.
func BenchmarkReluGrad(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	n := 128 * (256 + 128)
	y, dy, dx := randSlice(r, n), randSlice(r, n), make([]float32, n)
	for _, asm := range []bool{true, false} {
		name := "vector"
		if !asm {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) {
			saved := useAsmVec
			useAsmVec = useAsmVec && asm
			defer func() { useAsmVec = saved }()
			for b.Loop() {
				ReluGrad(dx, dy, y)
			}
		})
	}
}
