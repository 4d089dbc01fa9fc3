package gemm

import (
	"math"
	"runtime"
	"sync"
)

// Adam applies one Adam step (Kingma & Ba, with L2 weight decay added to the
// gradient, as torch.optim.Adam does) to the parameters p in place, given
// their gradients g and the moment estimates m and v, which it updates:
//
//	grad = g + weightDecay*p
//	m    = beta1*m + (1-beta1)*grad
//	v    = beta2*v + (1-beta2)*grad*grad
//	p    = p - lr/(1-beta1^step) * m / (sqrt(v)/sqrt(1-beta2^step) + eps)
//
// step counts from 1. Every element is computed in float32 with the
// operations in exactly this order and no fused multiply-add, so the
// vectorised path gives the same bits as the plain loop (adamGo). Large
// slices are split across GOMAXPROCS goroutines. Adam panics if the slices'
// lengths differ.
func Adam(p, g, m, v []float32, lr, beta1, beta2, eps, weightDecay float32, step int) {
	n := len(p)
	if len(g) != n || len(m) != n || len(v) != n {
		panic("gemm: Adam: p, g, m and v must have the same length")
	}
	bc1 := 1 - math.Pow(float64(beta1), float64(step))
	bc2 := 1 - math.Pow(float64(beta2), float64(step))
	c := adamConsts{
		weightDecay: weightDecay,
		beta1:       beta1, oneMinusBeta1: 1 - beta1,
		beta2: beta2, oneMinusBeta2: 1 - beta2,
		stepSize: float32(float64(lr) / bc1),
		sqrtBC2:  float32(math.Sqrt(bc2)),
		eps:      eps,
	}
	const minPerWorker = 1 << 15
	workers := min(runtime.GOMAXPROCS(0), n/minPerWorker)
	if workers <= 1 {
		adamSpan(p, g, m, v, &c)
		return
	}
	var wg sync.WaitGroup
	per := (n/workers + 63) &^ 63 // whole cache lines per worker
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() { adamSpan(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], &c) })
	}
	wg.Wait()
}

// adamConsts is laid out as the assembly reads it: eight float32s.
type adamConsts struct {
	weightDecay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, sqrtBC2, eps float32
}

// adamSpan runs the vector kernel over whole blocks of 8 and the plain loop
// over the rest.
func adamSpan(p, g, m, v []float32, c *adamConsts) {
	done := 0
	if useAsmVec {
		done = len(p) &^ 7
		if done > 0 {
			_, _, _ = g[done-1], m[done-1], v[done-1]
			adamAVX(&p[0], &g[0], &m[0], &v[0], done, c)
		}
	}
	adamGo(p[done:], g[done:], m[done:], v[done:], c)
}

// adamGo is the plain loop, the reference for the vector kernel.
func adamGo(p, g, m, v []float32, c *adamConsts) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	// The float32 conversions round every product, so that no Go compiler
	// (GOAMD64=v3 would) fuses a multiply and an add into an FMA.
	for i, w := range p {
		grad := g[i] + float32(c.weightDecay*w)
		m[i] = float32(c.beta1*m[i]) + float32(c.oneMinusBeta1*grad)
		v[i] = float32(c.beta2*v[i]) + float32(float32(c.oneMinusBeta2*grad)*grad)
		denom := float32(math.Sqrt(float64(v[i])))/c.sqrtBC2 + c.eps
		p[i] = w - float32(c.stepSize*m[i])/denom
	}
}
