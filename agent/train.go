package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/trainer"
)

// TrainMain is `agent train`: it runs one training workload in this process
// and writes DIR/metrics.json. The agent starts it as a child per job; a user
// can run it alone. Progress goes to stdout as JSON lines, the log to stderr.
// SIGTERM makes it checkpoint and exit with ExitPreempted.
func TrainMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "", "job spec file (YAML or JSON) with a train workload")
	out := fs.String("out", "", "output directory: metrics.json, the model, the checkpoint")
	resume := fs.Bool("resume", false, "continue from the checkpoint in --out if there is one")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: agent train --spec FILE --out DIR [--resume]\n\n"+
			"Runs the train workload of a job spec alone and writes DIR/metrics.json.\n"+
			"Relative dataset paths are read relative to the spec file.\n"+
			"It trains on a CUDA GPU when one is usable (the job spec's device: auto|cpu|cuda),\n"+
			"the first of $JOULE_GPU_UUIDS when the agent sets it, and says which in its log.\n\n"+
			"Example:\n  agent train --spec examples/iris-mlp.yaml --out /tmp/iris-run\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *specPath == "" || *out == "" {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, err)
		return 1
	}
	spec, err := readTrainSpec(*specPath)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(*out, 0o750); err != nil {
		return fail(fmt.Errorf("output dir: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	enc := json.NewEncoder(stdout)
	m, err := trainer.Run(ctx, spec, trainer.Options{
		OutDir:   *out,
		Resume:   *resume,
		Progress: func(p api.Progress) { _ = enc.Encode(trainLine{Progress: &p}) },
		Log:      stderr,
		GPUUUIDs: gpuUUIDs(os.Getenv("JOULE_GPU_UUIDS")),
	})
	switch {
	case errors.Is(err, trainer.ErrPreempted):
		fmt.Fprintln(stderr, "checkpointed; exiting to be resumed later")
		return ExitPreempted
	case err != nil:
		return fail(err)
	}
	fmt.Fprintf(stderr, "done: %d epochs, val accuracy %.4f, %.0f samples/s on %s\n",
		m.EpochsRun, m.ValAccuracy, m.SamplesPerS, m.Device)
	return 0
}

// gpuUUIDs splits the agent's JOULE_GPU_UUIDS (the job's GPUs, comma-separated).
func gpuUUIDs(env string) []string {
	var out []string
	for _, u := range strings.Split(env, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// readTrainSpec reads a job spec file, or failing that a bare train spec, and
// makes its dataset paths absolute relative to the file.
func readTrainSpec(path string) (api.TrainSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return api.TrainSpec{}, fmt.Errorf("read spec: %w", err)
	}
	spec, err := api.ParseJobSpec(data)
	if err != nil {
		return api.TrainSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	if spec.Workload.Train == nil {
		return api.TrainSpec{}, fmt.Errorf("%s: the job has no train workload", path)
	}
	spec.ResolvePaths(filepath.Dir(path))
	return *spec.Workload.Train, nil
}
