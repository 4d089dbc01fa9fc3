package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// checkpointFile is the checkpoint's name under Options.OutDir.
const checkpointFile = "checkpoint.safetensors"

var errNoCheckpoint = errors.New("no checkpoint")

// trainState is the loop's position and bookkeeping: everything besides the
// parameters and optimiser tensors that a resumed run needs to continue
// exactly where the interrupted one stopped.
type trainState struct {
	Epoch int `json:"epoch"` // the epoch to run next (or the one under way), from 0
	Step  int `json:"step"`  // the next step within Epoch
	// RNG is the epoch's PCG state after Step steps (nil at an epoch start).
	RNG []byte `json:"rng,omitempty"`
	// OptimizerStep counts the optimiser's updates.
	OptimizerStep int `json:"optimizer_step"`
	// The running epoch's summed training loss and sample count.
	EpochLossSum float64 `json:"epoch_loss_sum"`
	EpochSamples int     `json:"epoch_samples"`
	// Early stopping: the best validation loss so far, the epochs since,
	// and (with early stopping on) the best epoch's figures; its
	// parameters are the checkpoint's "best." tensors.
	BestValLoss float64    `json:"best_val_loss"`
	BadEpochs   int        `json:"bad_epochs"`
	Best        *bestEpoch `json:"best,omitempty"`
	Done        bool       `json:"done,omitempty"`
	// The last finished epoch's figures.
	TrainLoss   float64 `json:"train_loss"`
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	// Throughput over the whole job, across resumptions.
	TrainSeconds float64 `json:"train_seconds"`
	TrainSamples int64   `json:"train_samples"`
}

// bestEpoch is the epoch with the lowest validation loss.
type bestEpoch struct {
	Epoch       int     `json:"epoch"` // from 1
	TrainLoss   float64 `json:"train_loss"`
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
}

// bestPrefix names the best epoch's parameters in a checkpoint.
const bestPrefix = "best."

// saveCheckpoint writes parameters, optimiser state and the loop state to
// path atomically. The spec is stored too, so that a resume with a
// different spec is refused.
func saveCheckpoint(path string, net *MLP, opt *Optimizer, best []namedTensor, st trainState, specJSON []byte) error {
	params, _ := net.Params()
	names := net.ParamNames()
	tensors := download(net.be, params, names)
	tensors = append(tensors, download(net.be, opt.State, opt.StateNames(names))...)
	for _, b := range best {
		b.Name = bestPrefix + b.Name
		tensors = append(tensors, b)
	}
	sj, err := json.Marshal(st)
	if err != nil {
		return err
	}
	meta := map[string]string{"format": "pt", "joule_state": string(sj), "joule_spec": string(specJSON)}
	if err := writeSafetensors(path, tensors, meta); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// loadCheckpoint restores net and opt from path and returns the loop state
// and the best epoch's parameters (if saved); errNoCheckpoint if there is
// no checkpoint.
func loadCheckpoint(path string, net *MLP, opt *Optimizer, specJSON []byte) (trainState, []namedTensor, error) {
	st, tensors, err := readCheckpoint(path, net, opt, specJSON)
	if err != nil {
		return st, nil, err
	}
	var best []namedTensor
	if st.Best != nil {
		for _, name := range net.ParamNames() {
			b, ok := tensors[bestPrefix+name]
			if !ok {
				return st, nil, fmt.Errorf("resume: %s lacks tensor %q", path, bestPrefix+name)
			}
			b.Name = name
			best = append(best, b)
		}
	}
	return st, best, nil
}

func readCheckpoint(path string, net *MLP, opt *Optimizer, specJSON []byte) (trainState, map[string]namedTensor, error) {
	var st trainState
	tensors, meta, err := readSafetensors(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil, errNoCheckpoint
	}
	if err != nil {
		return st, nil, fmt.Errorf("resume: %w", err)
	}
	if meta["joule_spec"] != string(specJSON) {
		return st, nil, fmt.Errorf("resume: %s was written for a different training spec; resume with the same spec, or delete it to start over", path)
	}
	if err := json.Unmarshal([]byte(meta["joule_state"]), &st); err != nil {
		return st, nil, fmt.Errorf("resume: %s: bad joule_state metadata: %w", path, err)
	}
	params, _ := net.Params()
	names := net.ParamNames()
	if err := upload(net.be, params, names, tensors, path); err != nil {
		return st, nil, fmt.Errorf("resume: %w", err)
	}
	if err := upload(net.be, opt.State, opt.StateNames(names), tensors, path); err != nil {
		return st, nil, fmt.Errorf("resume: %w", err)
	}
	opt.Step = st.OptimizerStep
	return st, tensors, nil
}
