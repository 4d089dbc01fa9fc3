// Command schedulerd is joule's central scheduler: it queues jobs, places them
// on GPU nodes, meters their energy and keeps every fact in a bbolt file.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/joulehq/joule/agent"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/storage"
	"github.com/joulehq/joule/web"
	"github.com/joulehq/joule/web/client"
)

const usage = `schedulerd: joule's energy-aware GPU scheduler.

Usage:
  schedulerd [flags]            serve the API on --listen, state in --data-dir
  schedulerd --demo             the embedded default: 2 simulated DGX-H100 nodes in this
                                process, runs the jobs in examples/ and prints their energy
  schedulerd token create|list|revoke   manage API tokens (see schedulerd token --help)
  schedulerd backup --out FILE  consistent snapshot of the running database
  schedulerd compact            shrink the database file (offline)
  schedulerd restore --from FILE  put a backup in place of the database (offline, verified)
  schedulerd train ...          run one training workload (used by in-process simulated nodes)
  schedulerd simulate ...       replay a job trace on a virtual cluster and compare policies
                                (schedulerd simulate --help)

Every API route but /healthz needs a bearer token. On first start schedulerd
writes an admin token to DATA_DIR/admin.token (mode 0600); make user and agent
tokens with "schedulerd token create". Plain HTTP is served only on loopback;
any other --listen address needs --tls-cert/--tls-key or --tls-auto (a CA
and a server certificate in DATA_DIR/tls; clients trust DATA_DIR/tls/ca.crt
with --ca or JOULE_CA). /metrics serves Prometheus metrics (any token).
Acknowledged state transitions (submissions, placements, a job's end, a node
registering) are synced before the reply; heartbeats that change only
telemetry are written every --telemetry-flush (5s) and on a clean stop,
together with the nodes' cumulative energy counters, so after a crash the
next heartbeat's counter delta attributes the lost interval again.
Traces go out through OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.

Examples:
  schedulerd --demo
  schedulerd --data-dir /var/lib/joule --listen 0.0.0.0:7070 --tls-auto
  schedulerd --sim-nodes 4 --sim-gpu h200     a simulated cluster on a laptop
  schedulerd --daily-report "CRON_TZ=Europe/Berlin 0 6 * * *" --telemetry-retention 72h
  schedulerd --policy fifo-firstfit            the baseline: FIFO, first fit, nodes stay on
  schedulerd --balanced-slowdown 0.05         balanced jobs at most 5% slower under their power limit
  schedulerd --telemetry-flush 0              sync every heartbeat (the old, slower behaviour)
  schedulerd --gc-percent 100                 Go's default GC target: less memory, more collection

The dashboard is served on the same address: open
http://127.0.0.1:7070/?token=TOKEN once (an admin or user token; the browser
keeps it in a cookie).
The GPUs' power budget is set at run time: joule power --help.

Policies: energy (default: fair share, EASY backfill, marginal-energy and
best-fit placement, idle nodes suspended after --idle-timeout),
fifo-firstfit, energy+cap (energy with every GPU's limit set under the power
budget, joule power) and energy+cap+offpeak (energy+cap; released deferrable
jobs yield to the others and go first, earliest deadline first, when their
deadline nears). Jobs larger than one node are refused at submit.

Flags:
`

type config struct {
	dataDir     string
	listen      string
	simNodes    int
	simGPU      string
	demo        bool
	heartbeat   time.Duration
	nodeTimeout time.Duration
	logFormat   string
	tlsCert     string
	tlsKey      string
	tlsAuto     bool
	tlsHosts    string
	ca          string
	pprof       string
	policy      string
	idleTimeout time.Duration
	dailyReport string
	sampleEvery time.Duration
	// telemetryFlush: how often telemetry-only heartbeat changes are written.
	telemetryFlush time.Duration
	retention      time.Duration
	checkpoint     bool
	power          scheduler.PowerConfig
	gcPercent      int
	minProcs       int
}

// defaultGCPercent is schedulerd's Go GC target (GOGC). On a small machine a
// collection's mark worker takes a whole core (of GOMAXPROCS 2, one), and
// every request waiting for the core's lock waits longer meanwhile. Under
// scripts/load.sh, 400 instead of Go's 100 cut the heartbeats' mean wait for
// that lock from about 12 ms to 3.5 ms (and the handler's share over 50 ms
// from 9% to under 1%, on a busy machine) for more memory (peak RSS 200-370
// MiB instead of 140-190).
const defaultGCPercent = 400

// defaultMinProcs is the fewest Go schedulers (GOMAXPROCS) schedulerd runs
// with, even on fewer cores. Go runs each P's goroutines in FIFO order with
// 10 ms time slices, so on a 2-core machine a heartbeat woken behind a burst
// of submission replies waits its turn on one of 2 Ps; with 4, Linux
// time-slices the threads far more finely and it runs sooner. Under
// scripts/load.sh on 2 cores, 4 instead of 2 halved the heartbeats' p50
// (9 to 4.5 ms) and brought the median p99 of 5 runs from 58 to 41 ms, at
// the same submission rate.
const defaultMinProcs = 4

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "train":
			os.Exit(agent.TrainMain(os.Args[2:], os.Stdout, os.Stderr))
		case "token":
			os.Exit(runToken(os.Args[2:], os.Stdout, os.Stderr))
		case "backup":
			os.Exit(runBackup(os.Args[2:], os.Stdout, os.Stderr))
		case "compact":
			os.Exit(runCompact(os.Args[2:], os.Stdout, os.Stderr))
		case "restore":
			os.Exit(runRestore(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	if len(os.Args) > 1 && os.Args[1] == "simulate" {
		os.Exit(runSimulate(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("schedulerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.dataDir, "data-dir", "./joule-data", "directory of the bbolt database and the simulated nodes' job files")
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:7070", "address to serve the API on")
	fs.IntVar(&cfg.simNodes, "sim-nodes", 0, "number of simulated GPU nodes to run inside this process (--demo: 2)")
	fs.StringVar(&cfg.simGPU, "sim-gpu", "h100", "GPU of the simulated nodes: h100, h200 or a100 (8 per node)")
	fs.BoolVar(&cfg.demo, "demo", false, "run the embedded demo: simulated nodes, the example jobs, their energy")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", 2*time.Second, "heartbeat interval of the simulated nodes")
	fs.DurationVar(&cfg.nodeTimeout, "node-timeout", 30*time.Second, "a node silent this long is marked down and its jobs requeued")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.policy, "policy", scheduler.DefaultPolicy, "scheduling policy: "+strings.Join(scheduler.AllPolicyNames(), ", "))
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", scheduler.DefaultIdleTimeout, "an empty node stays on this long before policy energy suspends it")
	cfg.power = scheduler.DefaultPowerConfig()
	fs.Float64Var(&cfg.power.MaxSlowdown, "balanced-slowdown", cfg.power.MaxSlowdown, "power capping: how much slower than uncapped a balanced job may run (0.10 = 10% more time)")
	fs.Float64Var(&cfg.power.AdmitRel, "admit-speed", cfg.power.AdmitRel, "power capping: a queued job starts only if every running job keeps this share of its operating speed under the budget")
	fs.BoolVar(&cfg.power.Profile, "profile", cfg.power.Profile, "power capping: have agents profile each new job's power limits (false: use the power model's curve)")
	fs.StringVar(&cfg.dailyReport, "daily-report", web.DefaultDailyReport, "cron schedule of the daily energy report of the previous UTC day (\"\" turns it off)")
	fs.DurationVar(&cfg.sampleEvery, "telemetry-every", web.DefaultSampleEvery, "store a power sample per node and per running job at most this often (0 stores none)")
	fs.DurationVar(&cfg.telemetryFlush, "telemetry-flush", web.DefaultTelemetryFlush, "write heartbeats that change only telemetry (energy, progress, counters) this often, in one synced transaction with the nodes' energy counters; a crash loses no energy, the next heartbeat's counter delta attributes it (0 syncs every heartbeat)")
	fs.BoolVar(&cfg.checkpoint, "checkpoint-at-peak", false, "at each tariff window edge, checkpoint running deferrable train jobs whose remaining work is cheaper later (deadline kept) and resume them then")
	fs.DurationVar(&cfg.retention, "telemetry-retention", web.DefaultRetention, "delete power samples older than this (0 keeps them forever)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM); needs --tls-key")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "the certificate's private key (PEM)")
	fs.BoolVar(&cfg.tlsAuto, "tls-auto", false, "serve HTTPS with a CA and server certificate made (once) in DATA_DIR/tls")
	fs.StringVar(&cfg.tlsHosts, "tls-hosts", "", "extra comma-separated host names or IPs for the --tls-auto certificate")
	fs.StringVar(&cfg.pprof, "pprof", "", "serve Go's profiler (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060")
	fs.IntVar(&cfg.gcPercent, "gc-percent", defaultGCPercent, "Go's garbage collection target (as GOGC, which wins when set): the heap grows this many percent over the live data before a collection; higher trades memory for less collection work competing with requests (at least 25)")
	fs.IntVar(&cfg.minProcs, "min-procs", defaultMinProcs, "run at least this many Go schedulers (GOMAXPROCS, which wins when set) even on fewer cores: more than the cores shortens the wait of a request woken behind others (1 or more)")
	fs.StringVar(&cfg.ca, "ca", "", "CA the in-process simulated agents trust with --tls-cert (default: the system's)")
	if code, ok := parseSub(fs, usage, args, stderr); !ok {
		return code
	}
	if err := cfg.power.Validate(); err != nil {
		fmt.Fprintf(stderr, "schedulerd: %v (see schedulerd --help)\n", err)
		return 2
	}
	if cfg.gcPercent < 25 {
		fmt.Fprintf(stderr, "schedulerd: --gc-percent %d: give 25 or more (100 is Go's default; %d is schedulerd's)\n", cfg.gcPercent, defaultGCPercent)
		return 2
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.gcPercent)
	}
	if cfg.minProcs < 1 {
		fmt.Fprintf(stderr, "schedulerd: --min-procs %d: give 1 or more (%d is schedulerd's default)\n", cfg.minProcs, defaultMinProcs)
		return 2
	}
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < cfg.minProcs {
		runtime.GOMAXPROCS(cfg.minProcs)
	}
	if cfg.demo && cfg.simNodes == 0 {
		cfg.simNodes = 2
	}
	log, err := newLogger(stderr, cfg.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "schedulerd:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, stdout); err != nil {
		fmt.Fprintln(stderr, "schedulerd:", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

func serve(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	if cfg.simNodes < 0 || cfg.simNodes > 1000 {
		return fmt.Errorf("--sim-nodes %d: give 0..1000", cfg.simNodes)
	}
	simKind := "dgx" + cfg.simGPU
	if cfg.simNodes > 0 {
		if _, err := power.ModelFor(cfg.simGPU); err != nil {
			return fmt.Errorf("--sim-gpu: %w", err)
		}
	}
	useTLS := cfg.tlsAuto || cfg.tlsCert != "" || cfg.tlsKey != ""
	switch {
	case (cfg.tlsCert == "") != (cfg.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together; give both, or --tls-auto")
	case cfg.tlsAuto && cfg.tlsCert != "":
		return errors.New("--tls-auto makes its own certificate; drop --tls-cert/--tls-key, or --tls-auto")
	case !useTLS && !isLoopback(cfg.listen):
		return fmt.Errorf("--listen %s is not a loopback address: plain HTTP would send tokens in clear; "+
			"add --tls-auto (or --tls-cert/--tls-key), or listen on 127.0.0.1", cfg.listen)
	}
	if cfg.pprof != "" {
		if !isLoopback(cfg.pprof) {
			return fmt.Errorf("--pprof %s: give a loopback address such as 127.0.0.1:6060 (the profiler has no auth)", cfg.pprof)
		}
		pl, err := net.Listen("tcp", cfg.pprof)
		if err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go http.Serve(pl, mux)
	}
	shutdownTracing, err := setupTracing(ctx, log)
	if err != nil {
		return err
	}
	defer shutdownTracing()
	policy, err := scheduler.PolicyByName(cfg.policy)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	if cfg.idleTimeout <= 0 {
		return fmt.Errorf("--idle-timeout %s: give a duration > 0, e.g. 15m", cfg.idleTimeout)
	}
	if policy.SuspendIdle {
		policy.IdleTimeout = cfg.idleTimeout
	}
	if cfg.telemetryFlush < 0 {
		return fmt.Errorf("--telemetry-flush %s: give 0 (sync every heartbeat) or a positive duration, e.g. 5s", cfg.telemetryFlush)
	}
	db, err := storage.Open(cfg.dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	tokenPath := filepath.Join(cfg.dataDir, AdminTokenFile)
	created, err := web.EnsureAdminToken(db, func(secret string) error {
		return os.WriteFile(tokenPath, []byte(secret+"\n"), 0o600)
	})
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if created {
		log.Info("wrote the first admin token", "file", tokenPath)
	}
	srv, err := web.NewWithPolicy(db, log, time.Now, policy)
	if err != nil {
		return err
	}
	srv.SetNodeTimeout(cfg.nodeTimeout)
	if cfg.sampleEvery < 0 || cfg.retention < 0 {
		return fmt.Errorf("--telemetry-every %s, --telemetry-retention %s: give 0 or a positive duration", cfg.sampleEvery, cfg.retention)
	}
	srv.SetTelemetry(cfg.sampleEvery, cfg.retention)
	srv.SetTelemetryFlush(cfg.telemetryFlush)
	srv.SetCheckpointAtPeak(cfg.checkpoint)
	if cfg.dailyReport != "" {
		if _, err := tariff.ParseSchedule(cfg.dailyReport); err != nil {
			return fmt.Errorf("--daily-report: %w", err)
		}
	}
	caFile := cfg.ca
	if cfg.tlsAuto {
		var hosts []string
		if cfg.tlsHosts != "" {
			hosts = strings.Split(cfg.tlsHosts, ",")
		}
		cfg.tlsCert, cfg.tlsKey, caFile, err = autoTLS(cfg.dataDir, hosts)
		if err != nil {
			return err
		}
	}
	srv.SetPowerConfig(cfg.power)
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another schedulerd running? use --listen)", cfg.listen, err)
	}
	scheme := "http"
	if useTLS {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS certificate: %w; check --tls-cert and --tls-key", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	// In-process clients dial loopback even when listening on every address.
	tcp := ln.Addr().(*net.TCPAddr)
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	addr := scheme + "://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("schedulerd serving", "addr", addr, "dashboard", addr+"/?token=TOKEN", "data", db.Path(), "tls", useTLS, "ca", caFile)
	newClient := func(name, role string) (*client.Client, error) {
		c, err := client.New(addr)
		if err != nil {
			return nil, err
		}
		if c.Token, err = srv.EphemeralToken(name, role); err != nil {
			return nil, err
		}
		if caFile != "" {
			err = c.UseCA(caFile)
		}
		return c, err
	}

	var wg sync.WaitGroup
	tickCtx, stopTick := context.WithCancel(context.Background())
	defer stopTick()
	wg.Go(func() { srv.Run(tickCtx, time.Second) })
	wg.Go(func() { _ = srv.RunSchedules(tickCtx, cfg.dailyReport) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	agentCtx, stopAgents := context.WithCancel(context.Background())
	var agents sync.WaitGroup
	for i := range cfg.simNodes {
		name := fmt.Sprintf("sim-%s-%d", cfg.simGPU, i+1)
		c, err := newClient(name, web.RoleAgent)
		if err != nil {
			stopAgents()
			return err
		}
		a, err := newSimAgent(name, simKind, c, cfg, log)
		if err != nil {
			stopAgents()
			return err
		}
		agents.Go(func() {
			if err := a.Run(agentCtx); err != nil && agentCtx.Err() == nil {
				log.Error("simulated node stopped", "node", name, "err", err)
			}
		})
	}
	if cfg.demo {
		c, err := newClient("demo", web.RoleAdmin)
		if err != nil {
			stopAgents()
			return err
		}
		go func() {
			if err := runDemo(ctx, c, cfg.dataDir, stdout); err != nil && ctx.Err() == nil {
				log.Error("demo", "err", err)
			}
		}()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		stopAgents()
		return fmt.Errorf("serve: %w", err)
	}
	// Agents first, so their last heartbeat (jobs checkpointed) is stored.
	stopAgents()
	agents.Wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(shutCtx)
	stopTick()
	wg.Wait()
	srv.Close()
	return nil
}

func newSimAgent(name, kind string, c *client.Client, cfg config, log *slog.Logger) (*agent.Agent, error) {
	sim, err := power.NewSimNode(kind, time.Now, power.WithNodeName(name))
	if err != nil {
		return nil, err
	}
	return agent.New(agent.Config{
		Name:     name,
		Client:   c,
		NVML:     sim.NVML(),
		Sim:      sim,
		Interval: cfg.heartbeat,
		DataDir:  filepath.Join(cfg.dataDir, "agents", name),
		// The in-process nodes share one machine: job directories (and so
		// checkpoints) are shared, and a requeued train job resumes on
		// whichever node takes it. They read datasets under the data dir.
		JobsDir:  filepath.Join(cfg.dataDir, "jobs"),
		DataRoot: cfg.dataDir,
		Log:      log,
	})
}
