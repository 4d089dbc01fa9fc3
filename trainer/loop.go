package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/joulehq/joule/api"
)

// progressEvery is how often Progress is called within an epoch (a var
// for tests).
var progressEvery = 3 * time.Second

// testHookStep, when set by a test, is called after every training step.
var testHookStep func(epoch, step int)

// trainLoop is step 4 of Run: epochs of shuffled mini-batches, validation,
// checkpoints, progress and early stopping. Its state st is all a resumed
// run needs besides the parameters and the optimiser's tensors.
type trainLoop struct {
	spec     api.TrainSpec
	opt      Options
	be       Backend
	net      *MLP
	optim    *Optimizer
	data     *prepared
	ckpt     string // checkpoint path
	specJSON []byte // stored in checkpoints to refuse resuming another spec
	logf     func(format string, a ...any)
	st       trainState
	// best holds the best epoch's parameters when early stopping is on.
	best []namedTensor

	params, grads []*Tensor
	lastProgress  time.Time
	batch         map[int]*batch // by row count: full batches and the last one
}

// batch holds one mini-batch's inputs, targets and loss gradient.
type batch struct {
	x, t, dlogits *Tensor
	xHost, tHost  []float32
}

// run trains until the last epoch, early stopping, or cancellation (then
// it checkpoints and returns ErrPreempted).
func (l *trainLoop) run(ctx context.Context) error {
	l.lastProgress = time.Now()
	l.params, l.grads = l.net.Params()
	for l.st.Epoch < l.spec.Epochs && !l.st.Done {
		if err := l.epoch(ctx); err != nil {
			return err
		}
	}
	if b := l.st.Best; b != nil && l.best != nil {
		l.logf("restoring the parameters of epoch %d, the best validation loss (%.4f)", b.Epoch, b.ValLoss)
		if err := upload(l.be, l.params, l.net.ParamNames(), byName(l.best), "best epoch"); err != nil {
			return err
		}
		l.st.TrainLoss, l.st.ValLoss, l.st.ValAccuracy = b.TrainLoss, b.ValLoss, b.ValAccuracy
	}
	return nil
}

func byName(ts []namedTensor) map[string]namedTensor {
	m := make(map[string]namedTensor, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func (l *trainLoop) steps() int {
	return (l.data.train.n + l.spec.BatchSize - 1) / l.spec.BatchSize
}

// epoch runs (the rest of) epoch st.Epoch. Epoch e draws its shuffle and
// its dropout masks from PCG stream e of the seed, so a resumed epoch
// rebuilds the same order and continues the stream from the checkpoint.
func (l *trainLoop) epoch(ctx context.Context) error {
	st, train := &l.st, l.data.train
	epoch, steps := st.Epoch, l.steps()
	lr := LearningRate(l.spec.Optimizer, epoch, l.spec.Epochs)
	pcg := rand.NewPCG(uint64(l.spec.Seed), uint64(epoch))
	rng := rand.New(pcg)
	perm := rng.Perm(train.n)
	if st.Step > 0 && st.RNG != nil {
		if err := pcg.UnmarshalBinary(st.RNG); err != nil {
			return fmt.Errorf("resume: bad RNG state in the checkpoint: %w", err)
		}
	}
	start, samples := time.Now(), 0
	for ; st.Step < steps; st.Step++ {
		if ctx.Err() != nil {
			st.RNG, _ = pcg.MarshalBinary()
			st.TrainSeconds += time.Since(start).Seconds()
			st.TrainSamples += int64(samples)
			if err := l.checkpoint(); err != nil {
				return err
			}
			l.logf("preempted at epoch %d step %d; checkpoint written", epoch+1, st.Step)
			return ErrPreempted
		}
		lo := st.Step * l.spec.BatchSize
		rows := perm[lo:min(lo+l.spec.BatchSize, train.n)]
		loss := l.step(rows, rng, lr)
		if err := backendErr(l.be); err != nil {
			return fmt.Errorf("training failed at epoch %d step %d: %w", epoch+1, st.Step+1, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fmt.Errorf("training diverged at epoch %d step %d (loss %g); lower optimizer.lr (now %g) or normalise the features", epoch+1, st.Step+1, loss, lr)
		}
		st.EpochLossSum += loss * float64(len(rows))
		st.EpochSamples += len(rows)
		samples += len(rows)
		if testHookStep != nil {
			testHookStep(epoch, st.Step)
		}
		if time.Since(l.lastProgress) >= progressEvery {
			l.lastProgress = time.Now()
			l.report(st.Step+1, st.EpochLossSum/float64(st.EpochSamples), rate(samples, time.Since(start).Seconds()))
		}
	}
	trainS := time.Since(start).Seconds()
	st.TrainSeconds += trainS
	st.TrainSamples += int64(samples)
	st.TrainLoss = st.EpochLossSum / float64(max(st.EpochSamples, 1))
	if val := l.data.val; val != nil {
		ev := evaluate(l.be, l.net, l.data.pre, val)
		if err := backendErr(l.be); err != nil {
			return fmt.Errorf("validation in epoch %d failed: %w", epoch+1, err)
		}
		if math.IsNaN(ev.loss) || math.IsInf(ev.loss, 0) {
			return fmt.Errorf("training diverged in epoch %d (validation loss %g); lower optimizer.lr (now %g) or normalise the features", epoch+1, ev.loss, lr)
		}
		st.ValLoss, st.ValAccuracy = ev.loss, ev.accuracy
		if ev.loss < st.BestValLoss {
			st.BestValLoss, st.BadEpochs = ev.loss, 0
			if l.spec.EarlyStopping > 0 {
				st.Best = &bestEpoch{Epoch: epoch + 1, TrainLoss: st.TrainLoss, ValLoss: ev.loss, ValAccuracy: ev.accuracy}
				l.best = download(l.be, l.params, l.net.ParamNames())
			}
		} else {
			st.BadEpochs++
		}
	}
	l.logf("epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f, lr %.3g, %.0f samples/s",
		epoch+1, l.spec.Epochs, st.TrainLoss, st.ValLoss, st.ValAccuracy, lr, rate(samples, trainS))
	l.report(steps, st.TrainLoss, rate(samples, trainS))
	if l.spec.EarlyStopping > 0 && st.BadEpochs >= l.spec.EarlyStopping {
		l.logf("early stopping: validation loss has not improved for %d epochs", st.BadEpochs)
		st.Done = true
	}
	st.Epoch, st.Step, st.RNG, st.EpochLossSum, st.EpochSamples = epoch+1, 0, nil, 0, 0
	return l.checkpoint()
}

// step trains on the given training rows: forward, loss, backward, update.
// It returns the batch's mean loss.
func (l *trainLoop) step(rows []int, rng *rand.Rand, lr float64) float64 {
	be, train := l.be, l.data.train
	b := l.batch[len(rows)]
	if b == nil {
		b = &batch{x: be.New(len(rows), train.width), t: be.New(len(rows), train.tcols), dlogits: be.New(len(rows), train.tcols),
			xHost: make([]float32, len(rows)*train.width), tHost: make([]float32, len(rows)*train.tcols)}
		if l.batch == nil {
			l.batch = map[int]*batch{}
		}
		l.batch[len(rows)] = b
	}
	w, c := train.width, train.tcols
	for r, i := range rows {
		copy(b.xHost[r*w:(r+1)*w], train.x[i*w:(i+1)*w])
		copy(b.tHost[r*c:(r+1)*c], train.t[i*c:(i+1)*c])
	}
	be.Upload(b.x, b.xHost)
	be.Upload(b.t, b.tHost)
	logits := l.net.Forward(b.x, true, rng)
	loss := be.Loss(lossKind(l.data.pre.Task), logits, b.t, b.dlogits)
	l.net.Backward(b.dlogits, true)
	l.optim.Update(l.params, l.grads, lr)
	return loss
}

func (l *trainLoop) checkpoint() error {
	if err := backendErr(l.be); err != nil {
		return fmt.Errorf("no checkpoint written: %w", err)
	}
	l.st.OptimizerStep = l.optim.Step
	return saveCheckpoint(l.ckpt, l.net, l.optim, l.best, l.st, l.specJSON)
}

// report calls Progress; step is within the current epoch.
func (l *trainLoop) report(step int, loss, samplesPerS float64) {
	if l.opt.Progress == nil {
		return
	}
	l.opt.Progress(api.Progress{Epoch: l.st.Epoch + 1, Epochs: l.spec.Epochs, Step: l.optim.Step, Loss: loss, SamplesPerS: samplesPerS,
		Fraction: (float64(l.st.Epoch) + float64(step)/float64(l.steps())) / float64(l.spec.Epochs)})
}
