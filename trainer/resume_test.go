package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
)

func modelWeights(t *testing.T, dir string) map[string]namedTensor {
	t.Helper()
	w, _, err := readSafetensors(filepath.Join(dir, "model", modelWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func sameWeights(t *testing.T, a, b map[string]namedTensor) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d vs %d tensors", len(a), len(b))
	}
	for name, ta := range a {
		if !slices.Equal(ta.Data, b[name].Data) {
			t.Errorf("%s differs", name)
		}
	}
}

func resumeSpec() api.TrainSpec {
	s := irisSpec()
	s.Epochs = 6
	s.Model.Dropout = 0.2 // the RNG state must survive the checkpoint
	s.Optimizer.Schedule = "cosine"
	s.EarlyStopping = 4 // the best epoch's parameters travel in the checkpoint
	return s
}

// TestSameSeedSameModel: two runs with one seed give identical parameters.
func TestSameSeedSameModel(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if _, err := Run(context.Background(), resumeSpec(), Options{OutDir: dir}); err != nil {
			t.Fatal(err)
		}
	}
	sameWeights(t, modelWeights(t, a), modelWeights(t, b))
}

// TestPreemptAndResume cancels a run in the middle of an epoch, checks that
// Run returns ErrPreempted after writing a checkpoint, resumes it, and
// compares the final parameters with an uninterrupted run's, bit for bit.
func TestPreemptAndResume(t *testing.T) {
	full := t.TempDir()
	want, err := Run(context.Background(), resumeSpec(), Options{OutDir: full})
	if err != nil {
		t.Fatal(err)
	}

	for _, stopAt := range [][2]int{{2, 3}, {3, 0}} { // mid-epoch, and right after an epoch's first step
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		testHookStep = func(epoch, step int) {
			if epoch == stopAt[0] && step == stopAt[1] {
				cancel()
			}
		}
		_, err := Run(ctx, resumeSpec(), Options{OutDir: dir})
		testHookStep = nil
		cancel()
		if !errors.Is(err, ErrPreempted) {
			t.Fatalf("cancelled run returned %v, want ErrPreempted", err)
		}
		if _, err := os.Stat(filepath.Join(dir, checkpointFile)); err != nil {
			t.Fatalf("no checkpoint after preemption: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "metrics.json")); err == nil {
			t.Errorf("metrics.json written by a preempted run")
		}
		got, err := Run(context.Background(), resumeSpec(), Options{OutDir: dir, Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		sameWeights(t, modelWeights(t, full), modelWeights(t, dir))
		if got.EpochsRun != want.EpochsRun || got.TrainLoss != want.TrainLoss || got.ValLoss != want.ValLoss {
			t.Errorf("resumed metrics %+v, uninterrupted %+v", got, want)
		}
	}
}

func TestResumeRefusesAnotherSpec(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), resumeSpec(), Options{OutDir: dir}); err != nil {
		t.Fatal(err)
	}
	other := resumeSpec()
	other.Optimizer.LR = 0.05
	if _, err := Run(context.Background(), other, Options{OutDir: dir, Resume: true}); err == nil {
		t.Error("resume with a different spec: no error")
	}
}

// TestResumeFinishedRun: resuming a finished run trains no further.
func TestResumeFinishedRun(t *testing.T) {
	dir := t.TempDir()
	first, err := Run(context.Background(), resumeSpec(), Options{OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	w := modelWeights(t, dir)
	again, err := Run(context.Background(), resumeSpec(), Options{OutDir: dir, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	sameWeights(t, w, modelWeights(t, dir))
	if again.EpochsRun != first.EpochsRun {
		t.Errorf("epochs run %d then %d", first.EpochsRun, again.EpochsRun)
	}
}

// TestSameModelWhateverTheCores: a checkpoint may be resumed on a node with
// another core count, so results must not depend on GOMAXPROCS. The layers
// are big enough for the GEMM and the optimiser to split work across cores.
func TestSameModelWhateverTheCores(t *testing.T) {
	var b strings.Builder
	for j := range 64 {
		fmt.Fprintf(&b, "f%d,", j)
	}
	b.WriteString("label\n")
	rng := rand.New(rand.NewPCG(4, 4))
	for range 600 {
		sum := 0.0
		for range 64 {
			v := rng.NormFloat64()
			sum += v
			fmt.Fprintf(&b, "%.4f,", v)
		}
		fmt.Fprintf(&b, "c%d\n", int(math.Abs(sum))%3)
	}
	path := filepath.Join(t.TempDir(), "wide.csv")
	os.WriteFile(path, []byte(b.String()), 0o644)
	s := api.TrainSpec{Dataset: api.DatasetSpec{Path: path}, Model: api.ModelSpec{Hidden: []int{512, 256}, Dropout: 0.1},
		BatchSize: 200, Epochs: 2, ValidationSplit: 0.1}
	var dirs []string
	for _, procs := range []int{1, 2, 4} {
		old := runtime.GOMAXPROCS(procs)
		dir := t.TempDir()
		_, err := Run(context.Background(), s, Options{OutDir: dir})
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	for _, d := range dirs[1:] {
		sameWeights(t, modelWeights(t, dirs[0]), modelWeights(t, d))
	}
}
