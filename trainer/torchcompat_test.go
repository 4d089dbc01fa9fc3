package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestSavedModelGolden: testdata/iris_model is a model trained by Run on
// iris.csv, with Go's predictions for every row in predictions.json.
// make_fixtures.py loads the same files with torch (nn.Linear layers from
// the safetensors, z-score from preprocess.json) and checks that PyTorch
// predicts the same probabilities. Here, LoadModel must reproduce them.
// With -update the model is retrained and the files rewritten.
func TestSavedModelGolden(t *testing.T) {
	dir := "testdata/iris_model"
	in, err := os.ReadFile("testdata/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		out := t.TempDir()
		s := irisSpec()
		s.Model.Hidden = []int{8, 6}
		s.Model.Activation = "tanh"
		if _, err := Run(context.Background(), s, Options{OutDir: out}); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(dir, 0o755)
		for _, f := range []string{modelWeightsFile, modelPreprocessFile} {
			b, _ := os.ReadFile(filepath.Join(out, "model", f))
			os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		m, err := LoadModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		preds, err := m.PredictCSV(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(preds, "", " ")
		os.WriteFile(filepath.Join(dir, "predictions.json"), b, 0o644)
	}
	m, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.PredictCSV(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var want []Prediction
	loadJSON(t, filepath.Join(dir, "predictions.json"), &want)
	if len(got) != len(want) {
		t.Fatalf("%d predictions, golden has %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Label != want[i].Label {
			t.Errorf("row %d: %q, golden %q", i, got[i].Label, want[i].Label)
		}
		for k, p := range want[i].Probabilities {
			if math.Abs(got[i].Probabilities[k]-p) > 1e-6 {
				t.Errorf("row %d class %s: %g, golden %g", i, k, got[i].Probabilities[k], p)
			}
		}
	}
}

// TestModelConcurrentPredictions: schedulerd serves predictions from one
// Model on many goroutines; every answer must equal the serial one.
func TestModelConcurrentPredictions(t *testing.T) {
	m, err := LoadModel("testdata/iris_model")
	if err != nil {
		t.Fatal(err)
	}
	in, _ := os.ReadFile("testdata/iris.csv")
	want, _ := m.PredictCSV(bytes.NewReader(in))
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			got, err := m.PredictCSV(bytes.NewReader(in))
			switch {
			case err != nil:
				errs <- err.Error()
			case len(got) != len(want):
				errs <- "wrong length"
			default:
				for i := range got {
					if got[i].Probabilities["setosa"] != want[i].Probabilities["setosa"] {
						errs <- "different probabilities"
						return
					}
				}
				errs <- ""
			}
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
