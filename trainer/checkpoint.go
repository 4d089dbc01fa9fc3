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
	// Early stopping.
	BestValLoss float64 `json:"best_val_loss"`
	BadEpochs   int     `json:"bad_epochs"`
	Done        bool    `json:"done,omitempty"`
	// The last finished epoch's figures.
	TrainLoss   float64 `json:"train_loss"`
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	// Throughput over the whole job, across resumptions.
	TrainSeconds float64 `json:"train_seconds"`
	TrainSamples int64   `json:"train_samples"`
}

// saveCheckpoint writes parameters, optimiser state and the loop state to
// path atomically. The spec is stored too, so that a resume with a
// different spec is refused.
func saveCheckpoint(path string, net *MLP, opt *Optimizer, st trainState, specJSON []byte) error {
	params, _ := net.Params()
	names := net.ParamNames()
	tensors := download(net.be, params, names)
	tensors = append(tensors, download(net.be, opt.State, opt.StateNames(names))...)
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

// loadCheckpoint restores net and opt from path and returns the loop state;
// errNoCheckpoint if there is none.
func loadCheckpoint(path string, net *MLP, opt *Optimizer, specJSON []byte) (trainState, error) {
	var st trainState
	tensors, meta, err := readSafetensors(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, errNoCheckpoint
	}
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	if meta["joule_spec"] != string(specJSON) {
		return st, fmt.Errorf("resume: %s was written for a different training spec; resume with the same spec, or delete it to start over", path)
	}
	if err := json.Unmarshal([]byte(meta["joule_state"]), &st); err != nil {
		return st, fmt.Errorf("resume: %s: bad joule_state metadata: %w", path, err)
	}
	params, _ := net.Params()
	names := net.ParamNames()
	if err := upload(net.be, params, names, tensors, path); err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	if err := upload(net.be, opt.State, opt.StateNames(names), tensors, path); err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	opt.Step = st.OptimizerStep
	return st, nil
}
