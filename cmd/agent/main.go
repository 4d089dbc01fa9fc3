// Command agent runs on every GPU node: it reports the GPUs' utilisation,
// power and energy to schedulerd and runs the jobs placed on the node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/joulehq/joule/agent"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/web/client"
)

const usage = `agent: joule's node agent. It reports this node's GPUs to schedulerd and runs
the jobs placed on it.

Usage:
  agent [flags]                          run the agent (real GPUs through NVML)
  agent --sim dgxh100 [flags]            run a simulated 8-GPU node (no GPU needed)
  agent train --spec FILE --out DIR      run one training workload alone
  agent predict --model DIR --input F    print a trained model's predictions for a CSV file

The agent authenticates with an agent token named after its node:
  schedulerd token create --role agent --name gpu-node-01 > agent.token
It reads datasets only under --data-root; a job whose dataset lies outside
(or behind a symlink that leads outside) fails with a reason that says so.
Job directories (spec, log, checkpoint, metrics) live in --jobs-dir: give
nodes a shared one so that a train job requeued to another node resumes from
its checkpoint.

When schedulerd suspends an idle node (policy energy), the agent first sets
every GPU to its minimum power limit, then runs --suspend-program NODE-NAME;
to wake it, --resume-program NODE-NAME, and only then starts the node's jobs.
Like Slurm's SuspendProgram/ResumeProgram. The agent keeps heartbeating, so
the programs must leave its host reachable. A simulated node models the
suspended state (its GPUs draw nothing) with or without programs.

schedulerd sends a power limit for every GPU with each heartbeat reply; the
agent sets it through NVML (on real GPUs that needs root: a refusal is logged
and shown by "joule nodes -o json" as the GPU's limit_error). The agent records
each GPU's default limit on start and restores it when it exits cleanly. When
schedulerd asks, a new job's GPUs are stepped through a few limits (the
--profile-* flags) to learn its throughput-versus-limit curve.

Examples:
  agent --scheduler https://10.0.0.5:7070 --ca ca.crt --token-file agent.token --name gpu-node-01 --data-root /datasets
  agent --sim dgxh100 --name sim-1 --data-dir /tmp/sim-1 --token-file sim-1.token
  agent --sim dgxh100 --token-file sim-1.token --profile-step 50 --profile-measure 2s
  agent --name gpu-node-01 --token-file agent.token --suspend-program /usr/local/sbin/node-suspend \
        --resume-program /usr/local/sbin/node-resume

Flags:
`

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "train":
			os.Exit(agent.TrainMain(os.Args[2:], os.Stdout, os.Stderr))
		case "predict":
			os.Exit(agent.PredictMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("scheduler", envOr("JOULE_SERVER", "http://127.0.0.1:7070"), "schedulerd's URL (env JOULE_SERVER)")
	name := fs.String("name", host, "this node's name, unique in the cluster")
	sim := fs.String("sim", "", "simulate a node instead of using NVML: dgxh100, dgxh200 or dgxa100")
	dataDir := fs.String("data-dir", "./joule-agent", "directory for job files, checkpoints and models")
	interval := fs.Duration("heartbeat", 2*time.Second, "heartbeat interval")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	suspendProg := fs.String("suspend-program", "", "run as `PROGRAM NODE-NAME` when schedulerd suspends this idle node")
	resumeProg := fs.String("resume-program", "", "run as `PROGRAM NODE-NAME` when schedulerd wakes this node")
	prof := power.DefaultProfileSettings()
	fs.Float64Var(&prof.StepW, "profile-step", prof.StepW, "power profiling: watts between the limits a new job is profiled at")
	fs.IntVar(&prof.MaxSteps, "profile-steps", prof.MaxSteps, "power profiling: how many limits below the job's uncapped draw")
	fs.DurationVar(&prof.Warmup, "profile-warmup", prof.Warmup, "power profiling: settling time at each limit before measuring")
	fs.DurationVar(&prof.Measure, "profile-measure", prof.Measure, "power profiling: how long throughput and power are averaged at each limit")
	tokenFile := fs.String("token-file", "", "file holding this node's agent token (env JOULE_TOKEN otherwise)")
	caFile := fs.String("ca", os.Getenv("JOULE_CA"), "CA certificate to trust for an https scheduler (env JOULE_CA)")
	dataRoot := fs.String("data-root", "", "the only directory jobs may read datasets from (default --data-dir)")
	jobsDir := fs.String("jobs-dir", "", "directory of the job directories; share it between nodes to resume requeued jobs (default DATA_DIR/jobs)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent: unknown argument %q (see agent --help)\n", fs.Arg(0))
		return 2
	}
	var log *slog.Logger
	switch *logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		fmt.Fprintf(stderr, "agent: --log-format %q: use text or json\n", *logFormat)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "agent:", err)
		return 1
	}
	c, err := client.New(*server)
	if err != nil {
		return fail(err)
	}
	c.Token = os.Getenv("JOULE_TOKEN")
	if *tokenFile != "" {
		if c.Token, err = client.ReadTokenFile(*tokenFile); err != nil {
			return fail(fmt.Errorf("--token-file: %w", err))
		}
	}
	if c.Token == "" {
		return fail(fmt.Errorf("no token: give --token-file with this node's agent token "+
			"(an admin makes it: schedulerd token create --role agent --name %s)", *name))
	}
	if *caFile != "" {
		if err := c.UseCA(*caFile); err != nil {
			return fail(err)
		}
	}
	if err := prof.Validate(); err != nil {
		fmt.Fprintf(stderr, "agent: %v (see agent --help)\n", err)
		return 2
	}
	cfg := agent.Config{Name: *name, Client: c, Interval: *interval, DataDir: *dataDir, Log: log, Profile: prof,
		SuspendProgram: *suspendProg, ResumeProgram: *resumeProg,
		DataRoot: *dataRoot, JobsDir: *jobsDir}
	var lib nvml.Interface
	if *sim != "" {
		s, err := power.NewSimNode(*sim, time.Now, power.WithNodeName(*name))
		if err != nil {
			return fail(fmt.Errorf("--sim: %w", err))
		}
		cfg.Sim, lib = s, s.NVML()
	} else {
		l, shutdown, err := power.OpenNVML()
		if err != nil {
			return fail(err)
		}
		defer shutdown()
		lib = l
	}
	cfg.NVML = lib
	a, err := agent.New(cfg)
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("agent starting", "node", *name, "scheduler", *server, "sim", *sim)
	if err := a.Run(ctx); err != nil && ctx.Err() == nil {
		return fail(err)
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
