package trainer

import (
	"bytes"
	"context"
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
