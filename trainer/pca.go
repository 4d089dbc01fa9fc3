package trainer

import (
	"errors"
	"fmt"
	"sort"

	"gonum.org/v1/gonum/mat"
)

type pcaFit struct {
	mean       []float64
	components [][]float64 // k rows of width values
	ratio      []float64   // explained-variance ratio of each kept component
	allRatios  []float64   // of every component, for tests and logs
}

// fitPCA fits principal components on x (n rows of width values) from the
// eigen-decomposition of the sample covariance, keeping k components, or,
// when k is 0, the fewest whose cumulative explained-variance ratio exceeds
// fraction (scikit-learn's rule for a float n_components).
func fitPCA(x []float64, width, k int, fraction float64) (*pcaFit, error) {
	n := len(x) / width
	if n < 2 {
		return nil, errors.New("PCA needs at least 2 training rows")
	}
	p := &pcaFit{mean: make([]float64, width)}
	for i := range n {
		for j := range width {
			p.mean[j] += x[i*width+j]
		}
	}
	for j := range p.mean {
		p.mean[j] /= float64(n)
	}
	centred := mat.NewDense(n, width, nil)
	for i := range n {
		for j := range width {
			centred.Set(i, j, x[i*width+j]-p.mean[j])
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(n-1), centred.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return nil, errors.New("PCA: the eigen-decomposition of the covariance did not converge")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, width)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	var total float64
	for _, v := range vals {
		total += max(v, 0)
	}
	if total == 0 {
		return nil, errors.New("PCA: the features have no variance; turn PCA off or check the data")
	}
	for _, o := range order {
		p.allRatios = append(p.allRatios, max(vals[o], 0)/total)
	}
	if k == 0 {
		cum := 0.0
		for _, r := range p.allRatios {
			cum += r
			k++
			if cum > fraction {
				break
			}
		}
	}
	if k > width {
		return nil, fmt.Errorf("PCA: %d components asked of %d features", k, width)
	}
	for c := range k {
		comp := make([]float64, width)
		big := 0.0
		for j := range width {
			comp[j] = vecs.At(j, order[c])
			if abs(comp[j]) > abs(big) {
				big = comp[j]
			}
		}
		if big < 0 { // fix the sign: the largest loading is positive
			for j := range comp {
				comp[j] = -comp[j]
			}
		}
		p.components = append(p.components, comp)
		p.ratio = append(p.ratio, p.allRatios[c])
	}
	return p, nil
}

// project maps x (rows of width values) onto the components.
func project(x []float64, width int, mean []float64, comps [][]float64) []float64 {
	n, k := len(x)/width, len(comps)
	out := make([]float64, n*k)
	row := make([]float64, width)
	for i := range n {
		for j := range width {
			row[j] = x[i*width+j] - mean[j]
		}
		for c, comp := range comps {
			var s float64
			for j, v := range comp {
				s += v * row[j]
			}
			out[i*k+c] = s
		}
	}
	return out
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
