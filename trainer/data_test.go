package trainer

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadSpecsFailBeforeTraining: each error names the problem and the fix.
func TestBadSpecsFailBeforeTraining(t *testing.T) {
	dir := t.TempDir()
	data := writeFile(t, dir, "data.csv", "a,b,c\n1,2,x\n3,4,y\n")
	empty := writeFile(t, dir, "empty.csv", "a,b,c\n")
	blank := writeFile(t, dir, "blank.csv", "")
	allMissing := writeFile(t, dir, "holes.csv", "a,b,c\n1,,x\n,4,y\n")
	for _, c := range []struct {
		name   string
		modify func(*api.TrainSpec)
		want   []string
	}{
		{"unknown activation", func(s *api.TrainSpec) { s.Model.Activation = "swish" }, []string{"activation", "swish", "relu, sigmoid or tanh"}},
		{"label missing", func(s *api.TrainSpec) { s.Dataset.Label = "species" }, []string{`label column "species" not in data.csv`, "columns are: a, b, c"}},
		{"no rows", func(s *api.TrainSpec) { s.Dataset.Path = empty }, []string{"empty.csv", "no data rows"}},
		{"empty file", func(s *api.TrainSpec) { s.Dataset.Path = blank }, []string{"blank.csv is empty"}},
		{"no file", func(s *api.TrainSpec) { s.Dataset.Path = filepath.Join(dir, "nope.csv") }, []string{"nope.csv"}},
		{"all rows incomplete", func(s *api.TrainSpec) { s.Dataset.Path = allMissing }, []string{"none of its 2 rows", "impute"}},
		{"early stopping without validation", func(s *api.TrainSpec) { s.EarlyStopping = 2; s.ValidationSplit = 0 }, []string{"early_stopping", "validation_split"}},
		{"binary with three classes", func(s *api.TrainSpec) {
			s.Dataset.Label = "a"
			s.Model.Task = "binary"
			s.Dataset.Path = writeFile(t, dir, "three.csv", "a,b\n1,1\n2,2\n3,3\n")
		}, []string{"binary", "3 distinct"}},
		{"regression on strings", func(s *api.TrainSpec) { s.Model.Task = "regression" }, []string{"regression", "not all numbers"}},
		{"test set unusable", func(s *api.TrainSpec) { s.Dataset.TestPath = writeFile(t, dir, "t.csv", "c,b,a\n,1,2\n") }, []string{"test set t.csv", "none of its 1 rows"}},
		{"test set without label", func(s *api.TrainSpec) { s.Dataset.TestPath = writeFile(t, dir, "t2.csv", "b,a\n1,2\n") }, []string{`label column "c" not in t2.csv`}},
		{"every row ragged", func(s *api.TrainSpec) { s.Dataset.Path = writeFile(t, dir, "semi.csv", "a;b;c\n1,2;x\n") }, []string{"semi.csv", "none of its 1 data rows", "delimiter"}},
		{"mnist dir missing", func(s *api.TrainSpec) { s.Dataset = api.DatasetSpec{Format: "mnist", Path: dir} }, []string{"train-images-idx3-ubyte", "directory"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := api.TrainSpec{Dataset: api.DatasetSpec{Path: data, Label: "c"}, Epochs: 1}
			c.modify(&s)
			called := false
			_, err := Run(context.Background(), s, Options{OutDir: t.TempDir(), Progress: func(api.Progress) { called = true }})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if called {
				t.Error("training started")
			}
		})
	}
}

// TestCleaning: missing and unparsable values are dropped or imputed with
// the training split's mean or median, and counted.
func TestCleaning(t *testing.T) {
	dir := t.TempDir()
	// x has one empty and one unparsable cell, colour one missing, one label missing.
	// The line "3,red" is ragged: always dropped.
	csv := "x,colour,y\n1,red,a\n2,blue,b\n,red,a\n4,blue,b\nabc,red,a\n6,,b\n7,red,\n3,red\n8,blue,b\n9,red,a\n10,blue,b\n"
	path := writeFile(t, dir, "d.csv", csv)
	for _, c := range []struct {
		impute           string
		dropped, imputed int
	}{{"drop", 5, 0}, {"mean", 2, 3}, {"median", 2, 3}} {
		s := api.TrainSpec{Dataset: api.DatasetSpec{Path: path, Label: "y"}, Preprocess: api.PreprocessSpec{Impute: c.impute}, Epochs: 1}
		m, err := Run(context.Background(), s, Options{OutDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if m.RowsDropped != c.dropped || m.RowsImputed != c.imputed {
			t.Errorf("%s: dropped %d imputed %d, want %d and %d", c.impute, m.RowsDropped, m.RowsImputed, c.dropped, c.imputed)
		}
	}
	// The fills are the training rows' mean and median.
	s := api.TrainSpec{Dataset: api.DatasetSpec{Path: path, Label: "y"}, Preprocess: api.PreprocessSpec{Impute: "median"}}
	s.Default()
	d, err := prepareData(s)
	if err != nil {
		t.Fatal(err)
	}
	col := d.pre.Columns[0]
	if col.Kind != KindNumeric || col.Fill != 6 { // present x: 1 2 4 6 8 9 10 (7's label is missing) -> median 6
		t.Errorf("x column %+v, want numeric with median fill 6", col)
	}
	colour := d.pre.Columns[1]
	if colour.Kind != KindCategorical || strings.Join(colour.Levels, ",") != "blue,red" || colour.FillLevel != "blue" { // 4 red, 4 blue: a tie goes to the first level
		t.Errorf("colour column %+v", colour)
	}
}

// TestSplitAndNormalization: the split follows the seed, and z-score is
// fitted on the training split only.
func TestSplitAndNormalization(t *testing.T) {
	s := irisSpec()
	s.Default()
	a, err := prepareData(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := prepareData(s)
	if a.val.n != 30 || a.train.n != 120 {
		t.Fatalf("split %d/%d", a.train.n, a.val.n)
	}
	for i := range a.val.x {
		if a.val.x[i] != b.val.x[i] {
			t.Fatal("same seed, different split")
		}
	}
	s.Seed = 99
	c, _ := prepareData(s)
	if slicesEqual(a.val.x, c.val.x) {
		t.Error("different seeds, same split")
	}
	// z-score fitted on training rows: they have mean 0 and std 1, the
	// validation rows (in general) do not.
	w := a.train.width
	for j := range w {
		var sum, sq float64
		for i := range a.train.n {
			v := float64(a.train.x[i*w+j])
			sum += v
			sq += v * v
		}
		m := sum / float64(a.train.n)
		if math.Abs(m) > 1e-5 || math.Abs(sq/float64(a.train.n)-1) > 1e-4 {
			t.Errorf("feature %d on training rows: mean %g, var %g", j, m, sq/float64(a.train.n))
		}
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTaskDetection(t *testing.T) {
	for _, c := range []struct {
		labels []string
		task   string
		n      int
	}{
		{[]string{"a", "b", "a"}, "binary", 2},
		{[]string{"0", "1", "1"}, "binary", 2},
		{[]string{"cat", "dog", "emu"}, "multiclass", 3},
		{[]string{"10", "2", "1"}, "multiclass", 3},
		{[]string{"0.5", "1", "2"}, "regression", 0},
	} {
		task, classes, err := resolveTask("auto", c.labels, "x.csv")
		if err != nil || task != c.task || len(classes) != c.n {
			t.Errorf("%v: %s %v %v", c.labels, task, classes, err)
		}
	}
	_, classes, _ := resolveTask("auto", []string{"10", "2", "1"}, "x.csv")
	if strings.Join(classes, ",") != "1,2,10" {
		t.Errorf("numeric classes sort by value: %v", classes)
	}
}

func TestBinaryAndRegressionRuns(t *testing.T) {
	dir := t.TempDir()
	var bin, reg strings.Builder
	bin.WriteString("u,v,kind,label\n")
	reg.WriteString("u,v,kind,target\n")
	for i := range 200 {
		u, v := float64(i%20)/10-1, float64((i*7)%20)/10-1
		kind := []string{"p", "q"}[i%2]
		lab := "no"
		if u+v > 0 {
			lab = "yes"
		}
		shift := 0.0
		if kind == "q" {
			shift = 1.5
		}
		bin.WriteString(strings.Join([]string{ftoa(u), ftoa(v), kind, lab}, ",") + "\n")
		reg.WriteString(strings.Join([]string{ftoa(u), ftoa(v), kind, ftoa(3*u - 2*v + shift + 100)}, ",") + "\n")
	}
	binPath := writeFile(t, dir, "bin.csv", bin.String())
	regPath := writeFile(t, dir, "reg.csv", reg.String())

	out := t.TempDir()
	s := api.TrainSpec{Dataset: api.DatasetSpec{Path: binPath, TestPath: binPath}, Model: api.ModelSpec{Hidden: []int{8}, Activation: "tanh"},
		Optimizer: api.OptimizerSpec{Name: "sgd", LR: 0.1, Momentum: 0.9}, Epochs: 30, ValidationSplit: 0.2, BatchSize: 16}
	m, err := Run(context.Background(), s, Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if m.Task != "binary" || m.TestAccuracy == nil || *m.TestAccuracy < 0.95 || len(m.ConfusionMatrix) != 2 {
		t.Errorf("binary metrics %+v", m)
	}
	model, err := LoadModel(filepath.Join(out, "model"))
	if err != nil {
		t.Fatal(err)
	}
	preds, err := model.PredictRows([]map[string]any{{"u": 0.9, "v": 0.8, "kind": "p"}, {"u": -0.9, "v": -0.8, "kind": "q"}})
	if err != nil {
		t.Fatal(err)
	}
	if preds[0].Label != "yes" || preds[1].Label != "no" || math.Abs(preds[0].Probabilities["yes"]+preds[0].Probabilities["no"]-1) > 1e-6 {
		t.Errorf("predictions %+v", preds)
	}
	if _, err := model.PredictRows([]map[string]any{{"u": 1}}); err == nil || !strings.Contains(err.Error(), `lacks feature "v"`) {
		t.Errorf("row without a feature: %v", err)
	}

	out = t.TempDir()
	s = api.TrainSpec{Dataset: api.DatasetSpec{Path: regPath, Label: "target"}, Model: api.ModelSpec{Hidden: []int{16}},
		Optimizer: api.OptimizerSpec{LR: 0.01, Schedule: "step", StepEpochs: 20, Gamma: 0.5}, Epochs: 60, ValidationSplit: 0.2, BatchSize: 16}
	m, err = Run(context.Background(), s, Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if m.Task != "regression" || m.R2 == nil || *m.R2 < 0.98 || m.Precision != nil {
		t.Errorf("regression metrics %+v", m)
	}
	model, err = LoadModel(out)
	if err != nil {
		t.Fatal(err)
	}
	preds, err = model.PredictCSV(strings.NewReader("kind,v,u\nq,0,0.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3*0.5 + 1.5 + 100; preds[0].Value == nil || math.Abs(*preds[0].Value-want) > 0.5 {
		t.Errorf("prediction %+v, want about %g", preds[0], want)
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestPCAAndVarianceThresholdInPipeline(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("a,b,c,constant,label\n")
	for i := range 100 {
		a := float64(i%10) / 10
		b.WriteString(strings.Join([]string{ftoa(a), ftoa(2 * a), ftoa(float64(i%3) / 3), "5", []string{"x", "y"}[i%2]}, ",") + "\n")
	}
	path := writeFile(t, dir, "p.csv", b.String())
	s := api.TrainSpec{Dataset: api.DatasetSpec{Path: path}, Preprocess: api.PreprocessSpec{VarianceThreshold: 1e-6, PCAVariance: 0.99}}
	s.Default()
	d, err := prepareData(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.pre.Keep) != 3 { // the constant column goes
		t.Errorf("kept %v", d.pre.Keep)
	}
	if d.train.width != 2 { // a and b are collinear: two components hold all variance
		t.Errorf("PCA kept %d components (ratios %v)", d.train.width, d.pre.PCAExplainedRatio)
	}
	s.Preprocess.PCAVariance, s.Preprocess.PCAComponents = 0, 1
	d, _ = prepareData(s)
	if d.train.width != 1 {
		t.Errorf("pca_components 1 gave %d inputs", d.train.width)
	}
	s.Preprocess.PCAComponents = 9
	if _, err := prepareData(s); err == nil || !strings.Contains(err.Error(), "at most 3") {
		t.Errorf("too many components: %v", err)
	}
}

// TestDivergenceIsAnError: a run whose loss overflows stops with an error
// that says what to change, instead of writing NaN metrics.
func TestDivergenceIsAnError(t *testing.T) {
	var b strings.Builder
	b.WriteString("x,y\n")
	for i := range 50 {
		b.WriteString(ftoa(float64(i)*1e6) + "," + ftoa(float64(i)*3e6) + "\n")
	}
	path := writeFile(t, t.TempDir(), "big.csv", b.String())
	s := api.TrainSpec{Dataset: api.DatasetSpec{Path: path, Label: "y"}, Preprocess: api.PreprocessSpec{Normalize: "none"},
		Model: api.ModelSpec{Hidden: []int{4}, Task: "regression"}, Optimizer: api.OptimizerSpec{Name: "sgd", LR: 10}, Epochs: 5}
	_, err := Run(context.Background(), s, Options{OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "diverged") || !strings.Contains(err.Error(), "optimizer.lr") {
		t.Errorf("error %v, want a divergence error naming optimizer.lr", err)
	}
}
