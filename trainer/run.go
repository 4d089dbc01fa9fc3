package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/joulehq/joule/api"
)

// Options are how a run is hosted: where it writes and whom it tells.
type Options struct {
	// OutDir receives metrics.json, model/ (the model and its
	// preprocessing) and checkpoint.safetensors.
	OutDir string
	// Resume continues from OutDir's checkpoint if there is one.
	Resume bool
	// Progress is called at the end of every epoch and every few seconds
	// within one; Step counts optimiser steps over the whole run.
	Progress func(api.Progress)
	// Log receives human log lines; nil discards them.
	Log io.Writer
	// GPUUUIDs are the GPUs the job was given (NVML UUIDs, from the agent's
	// JOULE_GPU_UUIDS): the CUDA backend trains on the first of them that
	// CUDA sees. Empty means CUDA device 0.
	GPUUUIDs []string
}

// ErrPreempted is returned by Run when its context is cancelled: a
// checkpoint has been written and the run can be resumed with Resume.
var ErrPreempted = errors.New("training preempted: checkpoint written; run again with resume to continue")

// Run trains the model the spec describes and writes its outputs under
// opt.OutDir. The pipeline, in order:
//
//  1. check the spec (defaults filled in) and the options;
//  2. load the data, drop or impute missing values, split train/validation
//     with the seed, fit preprocessing on the training split (prepareData);
//     choose the backend: CUDA when the spec allows it and a GPU is usable,
//     else the CPU (chooseBackend, cuda.go);
//  3. build the MLP and optimiser from the seed, or restore them from the
//     checkpoint when resuming;
//  4. train epoch by epoch (shuffle, mini-batches, optimiser steps),
//     evaluate on validation after each epoch, checkpoint, report progress,
//     stop early when validation loss stops improving; on cancellation,
//     checkpoint and return ErrPreempted;
//  5. evaluate on the test set (else validation, else training set), save
//     the model and metrics.json.
func Run(ctx context.Context, spec api.TrainSpec, opt Options) (api.Metrics, error) {
	started := time.Now()
	logf := func(format string, a ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, format+"\n", a...)
		}
	}
	// 1. Spec and options.
	spec.Default()
	if err := checkSpec(spec, opt); err != nil {
		return api.Metrics{}, err
	}
	act, _ := parseActivation(spec.Model.Activation)
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return api.Metrics{}, fmt.Errorf("output directory: %w", err)
	}

	// 2. Data.
	data, err := prepareData(spec)
	if err != nil {
		return api.Metrics{}, err
	}
	pre, train := data.pre, data.train
	be, err := chooseBackend(spec, opt.GPUUUIDs, logf)
	if err != nil {
		return api.Metrics{}, err
	}
	logf("data: %d training, %d validation, %d test rows; %d inputs; task %s; %d rows dropped, %d imputed",
		train.n, rowsOf(data.val), rowsOf(data.test), train.width, pre.Task, data.rowsDropped, data.rowsImputed)

	// 3. Model and optimiser, fresh from the seed or from the checkpoint.
	sizes := append([]int{train.width}, spec.Model.Hidden...)
	sizes = append(sizes, train.tcols)
	net := NewMLP(be, sizes, act, float32(spec.Model.Dropout), rand.New(rand.NewPCG(uint64(spec.Seed), streamInit)))
	params, _ := net.Params()
	loop := &trainLoop{spec: spec, opt: opt, be: be, net: net, optim: NewOptimizer(be, spec.Optimizer, params),
		data: data, ckpt: filepath.Join(opt.OutDir, checkpointFile), logf: logf,
		st: trainState{BestValLoss: math.MaxFloat64}}
	loop.specJSON, _ = json.Marshal(spec)
	if opt.Resume {
		switch st, best, err := loadCheckpoint(loop.ckpt, net, loop.optim, loop.specJSON); {
		case errors.Is(err, errNoCheckpoint):
			logf("resume: no checkpoint in %s; starting from scratch", opt.OutDir)
		case err != nil:
			return api.Metrics{}, err
		default:
			loop.st, loop.best = st, best
			logf("resume: from epoch %d step %d", st.Epoch+1, st.Step)
		}
	}

	// 4. Training (loop.go).
	if err := loop.run(ctx); err != nil {
		return api.Metrics{}, err
	}
	st := loop.st

	// 5. Final evaluation and outputs.
	m := api.Metrics{EpochsRun: st.Epoch, TrainLoss: st.TrainLoss, ValLoss: st.ValLoss, ValAccuracy: st.ValAccuracy,
		Device: be.Name(), Task: pre.Task, RowsDropped: data.rowsDropped, RowsImputed: data.rowsImputed,
		DurationS: time.Since(started).Seconds()}
	m.SamplesPerS = rate(int(st.TrainSamples), st.TrainSeconds)
	final, which := data.test, "test"
	if final == nil {
		final, which = data.val, "validation"
	}
	if final == nil {
		final, which = train, "training"
	}
	ev := evaluate(be, net, pre, final)
	if pre.Task == "regression" {
		m.MSE, m.R2 = &ev.mse, &ev.r2
	} else {
		m.Precision, m.Recall, m.MacroF1 = &ev.class.precision, &ev.class.recall, &ev.class.macroF1
		m.ConfusionMatrix = ev.class.confusion
		if data.test != nil {
			m.TestAccuracy = &ev.accuracy
		}
	}
	logf("final metrics on the %s set (%d rows): %s", which, final.n, ev)
	if err := backendErr(be); err != nil {
		return m, fmt.Errorf("final evaluation: %w", err)
	}
	if err := saveModel(filepath.Join(opt.OutDir, "model"), net, pre); err != nil {
		return m, err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(filepath.Join(opt.OutDir, "metrics.json"), append(mj, '\n')); err != nil {
		return m, err
	}
	return m, nil
}

// checkSpec rejects, before any data is read, specs that cannot run.
func checkSpec(spec api.TrainSpec, opt Options) error {
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("bad training spec: %w", err)
	}
	if opt.OutDir == "" {
		return errors.New("trainer: Options.OutDir is empty; give the directory for the model, metrics and checkpoint")
	}
	if spec.EarlyStopping > 0 && spec.ValidationSplit == 0 {
		return errors.New("bad training spec: early_stopping needs a validation set; set validation_split, e.g. 0.1")
	}
	if spec.Dataset.Format == "mnist" && spec.Dataset.TestPath != "" {
		return errors.New("bad training spec: dataset.test_path is for CSV; MNIST's test set is the t10k files in dataset.path")
	}
	return nil
}

// rate is samples per second, 0 when no time was measured.
func rate(samples int, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(samples) / seconds
}

func rowsOf(d *dataset) int {
	if d == nil {
		return 0
	}
	return d.n
}

// evaluation is a model's performance on one split.
type evaluation struct {
	task     string
	loss     float64
	accuracy float64
	class    classMetrics
	mse, r2  float64
}

func (e evaluation) String() string {
	if e.task == "regression" {
		return fmt.Sprintf("loss %.4f, mse %.4g, r2 %.4f", e.loss, e.mse, e.r2)
	}
	return fmt.Sprintf("loss %.4f, accuracy %.4f, macro precision %.4f, recall %.4f, F1 %.4f",
		e.loss, e.accuracy, e.class.precision, e.class.recall, e.class.macroF1)
}

func evaluate(be Backend, net *MLP, pre *Preprocessor, d *dataset) evaluation {
	ev := evaluation{task: pre.Task}
	out := forwardAll(be, net, lossKind(pre.Task), d.x, d.n, d.width, d.t, &ev.loss)
	ev.loss /= float64(max(d.n, 1))
	if pre.Task == "regression" {
		pred := make([]float64, d.n)
		for i := range pred {
			pred[i] = float64(out[i])*pre.TargetStd + pre.TargetMean
		}
		ev.mse, ev.r2 = regression(d.value, pred)
		return ev
	}
	ev.class = classification(d.class, classesOf(pre.Task, out, d.n), len(pre.Classes))
	ev.accuracy = ev.class.accuracy
	return ev
}
