package trainer

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/joulehq/joule/api"
)

// Reference numbers from scikit-learn and PyTorch, made by
// testdata/make_fixtures.py.

type sklearnFixtures struct {
	PCARatios  []float64 `json:"pca_explained_variance_ratio"`
	PCAFor09   int       `json:"pca_components_for_0.9"`
	ZMean      []float64 `json:"zscore_mean"`
	ZScale     []float64 `json:"zscore_scale"`
	MinMaxMin  []float64 `json:"minmax_min"`
	MinMaxMax  []float64 `json:"minmax_max"`
	Multiclass clsFixture
	Binary     clsFixture
	Regression struct {
		YTrue []float64 `json:"y_true"`
		YPred []float64 `json:"y_pred"`
		MSE   float64   `json:"mse"`
		R2    float64   `json:"r2"`
	}
}

type clsFixture struct {
	YTrue     []int   `json:"y_true"`
	YPred     []int   `json:"y_pred"`
	Accuracy  float64 `json:"accuracy"`
	Precision float64 `json:"precision_macro"`
	Recall    float64 `json:"recall_macro"`
	F1        float64 `json:"f1_macro"`
	Confusion [][]int `json:"confusion_matrix"`
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// pcaFrame reads testdata/pca.csv through the trainer's own CSV path.
func pcaMatrix(t *testing.T) ([]float64, int) {
	header, rows, _, err := readCSV("testdata/pca.csv")
	if err != nil {
		t.Fatal(err)
	}
	w := len(header)
	x := make([]float64, 0, len(rows)*w)
	for _, r := range rows {
		for _, c := range r {
			v, ok := parseNumber(c)
			if !ok {
				t.Fatalf("bad number %q", c)
			}
			x = append(x, v)
		}
	}
	return x, w
}

func TestPCAMatchesSklearn(t *testing.T) {
	var fx sklearnFixtures
	loadJSON(t, "testdata/fixtures_sklearn.json", &fx)
	x, w := pcaMatrix(t)
	p, err := fitPCA(x, w, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range fx.PCARatios {
		if !near(p.ratio[i], want, 1e-9) {
			t.Errorf("explained variance ratio %d: %.12g, sklearn %.12g", i, p.ratio[i], want)
		}
	}
	p, err = fitPCA(x, w, 0, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.components) != fx.PCAFor09 {
		t.Errorf("components for 90%% variance: %d, sklearn %d", len(p.components), fx.PCAFor09)
	}
	// Projected training data has the component variances, uncorrelated.
	proj := project(x, w, p.mean, p.components)
	n := len(x) / w
	var cov float64
	for i := range n {
		cov += proj[i*2] * proj[i*2+1]
	}
	if math.Abs(cov/float64(n-1)) > 1e-9 {
		t.Errorf("projections on components 0 and 1 correlate: %g", cov)
	}
}

func TestScalersMatchSklearn(t *testing.T) {
	var fx sklearnFixtures
	loadJSON(t, "testdata/fixtures_sklearn.json", &fx)
	x, w := pcaMatrix(t)
	shift, scale := fitNormalization("zscore", x, w)
	for j := range w {
		if !near(shift[j], fx.ZMean[j], 1e-12) || !near(scale[j], fx.ZScale[j], 1e-12) {
			t.Errorf("zscore feature %d: (%g, %g), sklearn (%g, %g)", j, shift[j], scale[j], fx.ZMean[j], fx.ZScale[j])
		}
	}
	shift, scale = fitNormalization("minmax", x, w)
	for j := range w {
		if shift[j] != fx.MinMaxMin[j] || !near(shift[j]+scale[j], fx.MinMaxMax[j], 1e-12) {
			t.Errorf("minmax feature %d: [%g, %g], sklearn [%g, %g]", j, shift[j], shift[j]+scale[j], fx.MinMaxMin[j], fx.MinMaxMax[j])
		}
	}
}

func TestClassificationMetricsMatchSklearn(t *testing.T) {
	var fx sklearnFixtures
	loadJSON(t, "testdata/fixtures_sklearn.json", &fx)
	for name, c := range map[string]clsFixture{"multiclass": fx.Multiclass, "binary": fx.Binary} {
		got := classification(c.YTrue, c.YPred, len(c.Confusion))
		for _, v := range []struct {
			what      string
			got, want float64
		}{{"accuracy", got.accuracy, c.Accuracy}, {"precision", got.precision, c.Precision},
			{"recall", got.recall, c.Recall}, {"macro F1", got.macroF1, c.F1}} {
			if !near(v.got, v.want, 1e-12) {
				t.Errorf("%s %s: %.15g, sklearn %.15g", name, v.what, v.got, v.want)
			}
		}
		for i := range c.Confusion {
			for j := range c.Confusion[i] {
				if got.confusion[i][j] != c.Confusion[i][j] {
					t.Errorf("%s confusion: %v, sklearn %v", name, got.confusion, c.Confusion)
					break
				}
			}
		}
	}
}

func TestRegressionMetricsMatchSklearn(t *testing.T) {
	var fx sklearnFixtures
	loadJSON(t, "testdata/fixtures_sklearn.json", &fx)
	r := fx.Regression
	mse, r2 := regression(r.YTrue, r.YPred)
	if !near(mse, r.MSE, 1e-12) || !near(r2, r.R2, 1e-12) {
		t.Errorf("mse %.15g r2 %.15g; sklearn %.15g %.15g", mse, r2, r.MSE, r.R2)
	}
}

type torchFixtures struct {
	Logits       [][]float64 `json:"logits"`
	CrossEntropy struct {
		Target []int       `json:"target"`
		Loss   float64     `json:"loss"`
		Grad   [][]float64 `json:"grad"`
	} `json:"cross_entropy"`
	BCE   lossFixture `json:"bce_with_logits"`
	MSE   lossFixture `json:"mse"`
	Optim struct {
		P0          []float64   `json:"p0"`
		Grads       [][]float64 `json:"grads"`
		Adam        [][]float64 `json:"adam"`
		SGDMomentum [][]float64 `json:"sgd_momentum"`
	} `json:"optim"`
	Schedules struct {
		LR     float64   `json:"lr"`
		Epochs int       `json:"epochs"`
		Step   []float64 `json:"step_3_0.5"`
		Cosine []float64 `json:"cosine"`
	} `json:"schedules"`
}

type lossFixture struct {
	Target [][]float64 `json:"target"`
	Loss   float64     `json:"loss"`
	Grad   [][]float64 `json:"grad"`
}

func tensorOf(rows [][]float64) *Tensor {
	t := CPU{}.New(len(rows), len(rows[0]))
	for i, r := range rows {
		for j, v := range r {
			t.data[i*t.Cols+j] = float32(v)
		}
	}
	return t
}

func TestLossesMatchTorch(t *testing.T) {
	var fx torchFixtures
	loadJSON(t, "testdata/fixtures_torch.json", &fx)
	onehot := make([][]float64, len(fx.Logits))
	for i, k := range fx.CrossEntropy.Target {
		onehot[i] = make([]float64, len(fx.Logits[0]))
		onehot[i][k] = 1
	}
	for _, c := range []struct {
		name string
		kind LossKind
		fx   lossFixture
	}{
		{"cross_entropy", SoftmaxCrossEntropy, lossFixture{onehot, fx.CrossEntropy.Loss, fx.CrossEntropy.Grad}},
		{"bce_with_logits", BCEWithLogits, fx.BCE},
		{"mse", MeanSquaredError, fx.MSE},
	} {
		z, target := tensorOf(fx.Logits), tensorOf(c.fx.Target)
		grad := CPU{}.New(z.Rows, z.Cols)
		loss := CPU{}.Loss(c.kind, z, target, grad)
		if !near(loss, c.fx.Loss, 1e-6) {
			t.Errorf("%s: loss %.9g, torch %.9g", c.name, loss, c.fx.Loss)
		}
		for i, row := range c.fx.Grad {
			for j, want := range row {
				if got := float64(grad.data[i*z.Cols+j]); math.Abs(got-want) > 1e-6 {
					t.Errorf("%s: grad[%d][%d] %.9g, torch %.9g", c.name, i, j, got, want)
				}
			}
		}
	}
}

func TestOptimizersMatchTorch(t *testing.T) {
	var fx torchFixtures
	loadJSON(t, "testdata/fixtures_torch.json", &fx)
	o := fx.Optim
	for _, c := range []struct {
		spec api.OptimizerSpec
		want [][]float64
	}{
		{api.OptimizerSpec{Name: "adam", LR: 0.01, WeightDecay: 0.1}, o.Adam},
		{api.OptimizerSpec{Name: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 0.01}, o.SGDMomentum},
	} {
		p := tensorOf([][]float64{o.P0})
		opt := NewOptimizer(CPU{}, c.spec, []*Tensor{p})
		for s, g := range o.Grads {
			opt.Update([]*Tensor{p}, []*Tensor{tensorOf([][]float64{g})}, c.spec.LR)
			for j, want := range c.want[s] {
				if got := float64(p.data[j]); math.Abs(got-want) > 2e-6 {
					t.Errorf("%s step %d: p[%d] = %.9g, torch %.9g", c.spec.Name, s+1, j, got, want)
				}
			}
		}
	}
}

func TestSchedulesMatchTorch(t *testing.T) {
	var fx torchFixtures
	loadJSON(t, "testdata/fixtures_torch.json", &fx)
	s := fx.Schedules
	for e := range s.Epochs {
		step := LearningRate(api.OptimizerSpec{LR: s.LR, Schedule: "step", StepEpochs: 3, Gamma: 0.5}, e, s.Epochs)
		cos := LearningRate(api.OptimizerSpec{LR: s.LR, Schedule: "cosine"}, e, s.Epochs)
		if !near(step, s.Step[e], 1e-12) || !near(cos, s.Cosine[e], 1e-9) {
			t.Errorf("epoch %d: step %g cosine %g; torch %g %g", e, step, cos, s.Step[e], s.Cosine[e])
		}
	}
}
