package trainer

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/joulehq/joule/api"
)

// Column kinds.
const (
	KindNumeric     = "numeric"
	KindCategorical = "categorical"
)

// Column is one input column as the model expects it.
type Column struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Fill replaces a missing numeric value (the training mean or median,
	// or the mean under impute: drop, used only when predicting).
	Fill float64 `json:"fill,omitempty"`
	// Levels are a string column's values seen in training, each one
	// feature (one-hot); an unseen value gives all zeros.
	Levels []string `json:"levels,omitempty"`
	// FillLevel replaces a missing string value: the most frequent level
	// in training, the first in order on a tie.
	FillLevel string `json:"fill_level,omitempty"`
}

// Preprocessor turns raw rows into model inputs. It is fitted on the
// training split only and saved with the model.
type Preprocessor struct {
	Label   string   `json:"label,omitempty"`
	Task    string   `json:"task"`              // binary | multiclass | regression
	Classes []string `json:"classes,omitempty"` // class names, in output order
	// Regression targets are trained as (y - TargetMean) / TargetStd.
	TargetMean float64 `json:"target_mean,omitempty"`
	TargetStd  float64 `json:"target_std,omitempty"`

	Columns []Column `json:"columns"`
	Impute  string   `json:"impute"`
	// Keep lists the expanded features kept by variance-threshold
	// selection; nil keeps all.
	Keep []int `json:"keep,omitempty"`
	// Normalisation: x' = (x - Shift) / Scale, per kept feature.
	Normalize string    `json:"normalize"`
	Shift     []float64 `json:"shift,omitempty"`
	Scale     []float64 `json:"scale,omitempty"`
	// PCA projects onto the rows of PCAComponents after subtracting PCAMean.
	PCAMean       []float64   `json:"pca_mean,omitempty"`
	PCAComponents [][]float64 `json:"pca_components,omitempty"`
	// PCAExplainedRatio is each kept component's share of the variance.
	PCAExplainedRatio []float64 `json:"pca_explained_ratio,omitempty"`
}

// Inputs is the number of model inputs.
func (p *Preprocessor) Inputs() int {
	if len(p.PCAComponents) > 0 {
		return len(p.PCAComponents)
	}
	if p.Keep != nil {
		return len(p.Keep)
	}
	return p.expandedWidth()
}

func (p *Preprocessor) expandedWidth() int {
	w := 0
	for _, c := range p.Columns {
		if c.Kind == KindNumeric {
			w++
		} else {
			w += len(c.Levels)
		}
	}
	return w
}

// resolveTask decides the task and the classes from the labels of rows.
// Numeric labels that are all integers with at most 20 distinct values are
// classes; other numeric labels are a regression target.
func resolveTask(task string, labels []string, source string) (string, []string, error) {
	distinct := map[string]bool{}
	numeric, integral := true, true
	for _, l := range labels {
		distinct[l] = true
		v, ok := parseNumber(l)
		if !ok {
			numeric = false
		} else if v != math.Trunc(v) {
			integral = false
		}
	}
	classes := make([]string, 0, len(distinct))
	for l := range distinct {
		classes = append(classes, l)
	}
	if numeric {
		sort.Slice(classes, func(i, j int) bool {
			a, _ := parseNumber(classes[i])
			b, _ := parseNumber(classes[j])
			return a < b
		})
	} else {
		sort.Strings(classes)
	}
	if task == "auto" || task == "" {
		switch {
		case numeric && (!integral || len(classes) > 20):
			task = "regression"
		case len(classes) == 2:
			task = "binary"
		default:
			task = "multiclass"
		}
	}
	switch task {
	case "regression":
		if !numeric {
			return "", nil, fmt.Errorf("model.task is regression but the labels in %s are not all numbers; use task: multiclass or fix the label column", source)
		}
		return task, nil, nil
	case "binary":
		if len(classes) != 2 {
			return "", nil, fmt.Errorf("model.task is binary but the labels in %s have %d distinct values (%s); use task: multiclass or regression", source, len(classes), quoteList(classes, 5))
		}
	case "multiclass":
		if len(classes) < 2 {
			return "", nil, fmt.Errorf("the labels in %s have only %d distinct value; a classifier needs at least 2 classes", source, len(classes))
		}
	}
	return task, classes, nil
}

// fitPreprocessor fits imputation, one-hot levels, variance threshold,
// normalisation and PCA on the rows train of f, in that order.
func fitPreprocessor(spec api.TrainSpec, f *frame, train []int, task string, classes []string) (*Preprocessor, error) {
	pp := spec.Preprocess
	p := &Preprocessor{Label: spec.Dataset.Label, Task: task, Classes: classes, Impute: pp.Impute, Normalize: pp.Normalize}
	if spec.Dataset.Format == "mnist" {
		p.Label = ""
	}
	for c, name := range f.names {
		col := Column{Name: name}
		if f.num[c] != nil {
			col.Kind = KindNumeric
			var vals []float64
			for _, i := range train {
				if v := f.num[c][i]; !math.IsNaN(v) {
					vals = append(vals, v)
				}
			}
			if pp.Impute == "median" {
				col.Fill = median(vals)
			} else {
				col.Fill = mean(vals)
			}
		} else {
			col.Kind = KindCategorical
			count := map[string]int{}
			for _, i := range train {
				if v := f.cat[c][i]; v != "" {
					count[v]++
				}
			}
			for l := range count {
				col.Levels = append(col.Levels, l)
			}
			sort.Strings(col.Levels)
			for _, l := range col.Levels {
				if count[l] > count[col.FillLevel] {
					col.FillLevel = l
				}
			}
		}
		p.Columns = append(p.Columns, col)
	}
	if task == "regression" {
		var ys []float64
		for _, i := range train {
			y, _ := parseNumber(f.label[i])
			ys = append(ys, y)
		}
		p.TargetMean, p.TargetStd = mean(ys), stddev(ys)
		if p.TargetStd == 0 {
			p.TargetStd = 1
		}
	}

	x, _ := p.expand(f, train)
	width := p.expandedWidth()
	if pp.VarianceThreshold > 0 {
		keep := varianceKeep(x, width, pp.VarianceThreshold)
		if len(keep) == 0 {
			return nil, fmt.Errorf("preprocess.variance_threshold %g removes every feature; lower it", pp.VarianceThreshold)
		}
		p.Keep = keep
		x = selectColumns(x, width, keep)
		width = len(keep)
	}
	p.Shift, p.Scale = fitNormalization(pp.Normalize, x, width)
	normalize(x, width, p.Shift, p.Scale)
	if pp.PCAComponents > 0 || pp.PCAVariance > 0 {
		k := pp.PCAComponents
		if k > width {
			return nil, fmt.Errorf("preprocess.pca_components %d is more than the %d features; give at most %d", k, width, width)
		}
		pca, err := fitPCA(x, width, k, pp.PCAVariance)
		if err != nil {
			return nil, err
		}
		p.PCAMean, p.PCAComponents, p.PCAExplainedRatio = pca.mean, pca.components, pca.ratio
	}
	return p, nil
}

// expand turns rows of f into expanded features (numeric values and one-hot
// levels), row-major, imputing missing values with the fitted fills. It
// returns how many rows needed imputation. Rows go in blocks, column by
// column within a block, so that the column-major frame is read in order.
func (p *Preprocessor) expand(f *frame, rows []int) ([]float64, int) {
	width := p.expandedWidth()
	x := make([]float64, len(rows)*width)
	filled := make([]bool, len(rows))
	const block = 64
	for r0 := 0; r0 < len(rows); r0 += block {
		r1 := min(r0+block, len(rows))
		j := 0
		for c, col := range p.Columns {
			if col.Kind == KindNumeric {
				num := f.num[c]
				for r := r0; r < r1; r++ {
					v := num[rows[r]]
					if v != v { // NaN: missing
						v, filled[r] = col.Fill, true
					}
					x[r*width+j] = v
				}
				j++
				continue
			}
			for r := r0; r < r1; r++ {
				v := f.cat[c][rows[r]]
				if v == "" {
					v, filled[r] = col.FillLevel, true
				}
				if k, ok := slices.BinarySearch(col.Levels, v); ok {
					x[r*width+j+k] = 1
				}
			}
			j += len(col.Levels)
		}
	}
	imputed := 0
	for _, b := range filled {
		if b {
			imputed++
		}
	}
	return x, imputed
}

// transform turns rows of f into model inputs (float32, row-major) and
// says how many rows needed imputation.
func (p *Preprocessor) transform(f *frame, rows []int) ([]float32, int) {
	x, imputed := p.expand(f, rows)
	width := p.expandedWidth()
	if p.Keep != nil {
		x = selectColumns(x, width, p.Keep)
		width = len(p.Keep)
	}
	normalize(x, width, p.Shift, p.Scale)
	if len(p.PCAComponents) > 0 {
		x = project(x, width, p.PCAMean, p.PCAComponents)
	}
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out, imputed
}

// targets encodes the labels of rows as the loss expects them: one-hot rows
// (multiclass), 0/1 (binary) or standardised values (regression). It also
// returns the class index of each row (classification) or the raw value.
func (p *Preprocessor) targets(f *frame, rows []int) (t []float32, cols int, class []int, value []float64) {
	switch p.Task {
	case "multiclass":
		cols = len(p.Classes)
	default:
		cols = 1
	}
	t = make([]float32, len(rows)*cols)
	for r, i := range rows {
		if p.Task == "regression" {
			y, _ := parseNumber(f.label[i])
			value = append(value, y)
			t[r] = float32((y - p.TargetMean) / p.TargetStd)
			continue
		}
		k := p.classIndex(f.label[i])
		class = append(class, k)
		if p.Task == "multiclass" {
			if k >= 0 {
				t[r*cols+k] = 1
			}
		} else if k == 1 {
			t[r] = 1
		}
	}
	return t, cols, class, value
}

// classIndex finds a label among the classes, comparing numbers by value
// ("1.0" is class "1"); -1 if unknown.
func (p *Preprocessor) classIndex(label string) int {
	for k, c := range p.Classes {
		if c == label {
			return k
		}
	}
	if v, ok := parseNumber(label); ok {
		for k, c := range p.Classes {
			if w, ok := parseNumber(c); ok && w == v {
				return k
			}
		}
	}
	return -1
}

func varianceKeep(x []float64, width int, threshold float64) []int {
	keep := []int{}
	n := len(x) / width
	for j := range width {
		var s, s2 float64
		for i := range n {
			v := x[i*width+j]
			s += v
			s2 += v * v
		}
		m := s / float64(n)
		if s2/float64(n)-m*m > threshold {
			keep = append(keep, j)
		}
	}
	return keep
}

func selectColumns(x []float64, width int, keep []int) []float64 {
	n := len(x) / width
	out := make([]float64, n*len(keep))
	for i := range n {
		for k, j := range keep {
			out[i*len(keep)+k] = x[i*width+j]
		}
	}
	return out
}

// fitNormalization returns shift and scale per feature; a constant feature
// gets scale 1 so that it maps to 0 (z-score) or stays put.
func fitNormalization(kind string, x []float64, width int) (shift, scale []float64) {
	if kind == "none" || width == 0 {
		return nil, nil
	}
	n := len(x) / width
	shift, scale = make([]float64, width), make([]float64, width)
	for j := range width {
		col := make([]float64, n)
		for i := range n {
			col[i] = x[i*width+j]
		}
		if kind == "minmax" {
			lo, hi := slices.Min(col), slices.Max(col)
			shift[j], scale[j] = lo, hi-lo
		} else {
			shift[j], scale[j] = mean(col), stddev(col)
		}
		if scale[j] == 0 {
			scale[j] = 1
		}
	}
	return shift, scale
}

func normalize(x []float64, width int, shift, scale []float64) {
	if shift == nil {
		return
	}
	for i := 0; i < len(x); i += width {
		for j := range width {
			x[i+j] = (x[i+j] - shift[j]) / scale[j]
		}
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// stddev is the population standard deviation (as sklearn's StandardScaler).
func stddev(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	m := mean(v)
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
