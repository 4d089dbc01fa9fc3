package trainer

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
)

func irisSpec() api.TrainSpec {
	return api.TrainSpec{
		Dataset:         api.DatasetSpec{Format: "csv", Path: "testdata/iris.csv", Label: "species"},
		Model:           api.ModelSpec{Hidden: []int{16}},
		Optimizer:       api.OptimizerSpec{Name: "adam", LR: 0.01},
		BatchSize:       16,
		Epochs:          30,
		ValidationSplit: 0.2,
		Seed:            1,
		Device:          "cpu", // the tests below check the CPU; cuda_test.go compares CUDA with it
	}
}

func TestRunIris(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	var progress []api.Progress
	m, err := Run(context.Background(), irisSpec(), Options{OutDir: dir, Log: &log, Progress: func(p api.Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(log.String())
	if m.Task != "multiclass" || m.EpochsRun != 30 || m.Device != "cpu" {
		t.Errorf("metrics %+v", m)
	}
	if m.ValAccuracy < 0.9 {
		t.Errorf("val accuracy %.3f, want >= 0.9", m.ValAccuracy)
	}
	if len(progress) < 30 || progress[29].Epoch != 30 || progress[29].Fraction != 1 {
		t.Errorf("progress: %d reports, last %+v", len(progress), progress[len(progress)-1])
	}
	for _, f := range []string{"metrics.json", "checkpoint.safetensors", "model/model.safetensors", "model/preprocess.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	model, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := os.ReadFile("testdata/iris.csv")
	preds, err := model.PredictCSV(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := model.PredictCSV(strings.NewReader("sepal_length,sepal_width,petal_length,petal_width\n1,2,3,4\n1,2,3\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("ragged input: %v, want an error naming line 3", err)
	}
	if _, err := model.PredictCSV(strings.NewReader("sepal_length,petal_width\n1,2\n")); err == nil || !strings.Contains(err.Error(), `"sepal_width", "petal_length"`) {
		t.Errorf("input without features: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(in)), "\n")[1:]
	correct := 0
	for i, l := range lines {
		if strings.HasSuffix(l, ","+preds[i].Label) {
			correct++
		}
	}
	if acc := float64(correct) / float64(len(lines)); acc < 0.9 {
		t.Errorf("predict accuracy on the whole file %.3f", acc)
	}
}

// TestEarlyStopping: with a learning rate far too high the validation loss
// stops improving, the run stops after `early_stopping` bad epochs, and the
// best epoch's parameters are the ones saved.
func TestEarlyStopping(t *testing.T) {
	s := irisSpec()
	s.Epochs = 200
	s.EarlyStopping = 3
	s.Optimizer = api.OptimizerSpec{Name: "sgd", LR: 5, Momentum: 0.9}
	var log bytes.Buffer
	dir := t.TempDir()
	m, err := Run(context.Background(), s, Options{OutDir: dir, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if m.EpochsRun >= 200 || !strings.Contains(log.String(), "early stopping") {
		t.Errorf("ran %d of 200 epochs; log:\n%s", m.EpochsRun, log.String())
	}
	// The saved model is the best epoch's: its validation loss is the
	// lowest of all epochs, and reloading it reproduces that loss.
	best := math.MaxFloat64
	for _, line := range strings.Split(log.String(), "\n") {
		var e, n int
		var train, val float64
		if _, err := fmt.Sscanf(line, "epoch %d/%d: train loss %g, val loss %g", &e, &n, &train, &val); err == nil {
			best = min(best, val)
		}
	}
	if math.Abs(m.ValLoss-best) > 5e-5 {
		t.Errorf("val loss %g, best epoch's %g", m.ValLoss, best)
	}
	model, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Default()
	d, _ := prepareData(s)
	if ev := evaluate(model.be, model.net, model.Pre, d.val); math.Abs(ev.loss-m.ValLoss) > 1e-9 {
		t.Errorf("saved model's val loss %g, metrics say %g", ev.loss, m.ValLoss)
	}
}

// TestProgressWithinEpoch: long epochs report progress between epoch ends,
// with a growing step count and fraction.
func TestProgressWithinEpoch(t *testing.T) {
	saved := progressEvery
	progressEvery = 0
	defer func() { progressEvery = saved }()
	s := irisSpec()
	s.Epochs = 2
	var reports []api.Progress
	if _, err := Run(context.Background(), s, Options{OutDir: t.TempDir(), Progress: func(p api.Progress) { reports = append(reports, p) }}); err != nil {
		t.Fatal(err)
	}
	steps := 2 * 8 // 120 training rows in batches of 16
	if len(reports) < steps {
		t.Fatalf("%d reports, want one per step and epoch", len(reports))
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Step < reports[i-1].Step || reports[i].Fraction < reports[i-1].Fraction {
			t.Errorf("report %d went backwards: %+v after %+v", i, reports[i], reports[i-1])
		}
	}
	last := reports[len(reports)-1]
	if last.Step != steps || last.Fraction != 1 || last.Epoch != 2 || last.SamplesPerS <= 0 || last.Loss <= 0 {
		t.Errorf("last report %+v", last)
	}
}
