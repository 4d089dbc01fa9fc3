package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/scheduler/sim"
)

const simulateUsage = `schedulerd simulate: replay a job trace on a virtual cluster through the same
scheduler core and power model schedulerd runs, and compare policies.

Usage:
  schedulerd simulate --trace FILE (--nodes N [--gpu h100|h200|a100] | --cluster FILE) [flags]

The trace is a CSV in the schema of ../shared/traces/README.md (job_id,
submit_time_s, duration_s, num_gpus, ...). Trace time zero maps to --start.
CPU-only rows (num_gpus 0) are skipped. Jobs larger than one node (the ITP
traces have 16-, 32- and 64-GPU jobs; a node has 8) are gang-placed on whole
free nodes, as the clusters that recorded them did; --single-node skips them.

Trace durations count as H100 runtimes (a slower GPU model takes
duration / its relative speed, power.Model.RelSpeed). Every job runs its GPUs
at full utilisation (power.Model at the default
limit); the non-GPU node power (--node-power) and its defaults are printed
with every run. Cost and CO2 price all of the cluster's energy (GPUs and
node baseline) at the tariff in force, PUE on top: schedulerd's default flat
tariff (0.10 EUR/kWh, 300 g CO2/kWh) or --tariff FILE (the JSON that
joule tariff --set takes). Policy energy+cap (run only when named) is energy
with every GPU's power limit set under --budget-kw by the same allocation
schedulerd uses (balanced jobs, the power model's curve, no profiling); jobs
run at the model's pace under their limits and budget_violation_s counts the
seconds the GPUs drew more than the budget (0 for the other policies).
--budget FILE gives a whole budget instead: the JSON that PUT
/api/v1/power/budget and joule power --set take (default_w, node_max_w,
windows of cron pairs with CRON_TZ), in force by its windows on the virtual
clock; the core reallocates at every window edge. A budget below the GPUs'
minimum possible draw is refused as schedulerd refuses it (with idle nodes
suspended: one node's GPUs at their minimum limits). Idle nodes are
suspended as soon as the budget needs their watts. A job that cannot run
under the largest budget even alone, at its GPUs' minimum limits, is
counted in unrunnable_jobs with its reason (unrunnable_reason), not run.

Policy energy+cap+offpeak is energy+cap with off-peak deferral: with
--deferrable-fraction F, a seeded share F of the trace's jobs (the same jobs
on every run and policy) is deferrable with a deadline 24 h after
submission, and waits for the cheapest --tariff window that still lets it
finish by then (the planner's runtime estimate is the job's trace duration,
as a synthetic job's; a job whose deadline leaves no room starts at once).
The core re-plans at every tariff window edge in virtual time, as schedulerd
does on its cron schedule. With F > 0 every policy's result gains an
"offpeak" object about those jobs (under other policies they are not
deferred): deferrable_jobs, deferred (made to wait), deadlines_missed
(finished more than 24 h after submission) and missed_jobs (their trace ids),
deadlines_unmeetable (jobs picked whose trace duration alone is over 24 h:
they are submitted as not deferrable and count with the others),
mean_jct_deferrable_s and mean_jct_nondeferrable_s.

--offpeak-levers picks the off-peak policy's levers beyond deferral, to
measure each one's share: yield (on in the policy: released deferrable jobs
wait behind the others until their deadline nears, then go first, earliest
deadline first, at the performance point), deadline (on in the policy: such
an urgent job that cannot start preempts ordinary jobs too, not only
deferrable ones whose deadline is not near; needs yield) and efficient (off
in the policy: deferrable jobs whose deadline leaves room run at the
efficient operating point); "none" turns them all off. Preempted jobs are
stopped by the virtual agents at once, keep the work they had done less
--preempt-loss (default 2m, an assumption: the stop, a checkpoint written
and read back, the warm-up), and are counted in offpeak.preempted.

Without --policy it runs fifo-firstfit and energy, and with --budget-kw also
energy+cap and energy+cap+offpeak.

Examples:
  schedulerd simulate --trace ../shared/traces/itp_cluster03.csv --nodes 110
  schedulerd simulate --trace ../shared/traces/itp_cluster05.csv --nodes 12 --policy energy -o json
  schedulerd simulate --trace ../shared/traces/itp_cluster05.csv --nodes 12 --policy energy,energy+cap --budget-kw 6
  schedulerd simulate --trace ../shared/traces/itp_cluster05.csv --nodes 12 --policy energy+cap --budget examples/budget-day-night.json
  schedulerd simulate --trace ../shared/traces/itp_cluster05.csv --nodes 12 --policy energy+cap --budget examples/budget-node-cap.json
  schedulerd simulate --trace t.csv --cluster nodes.csv --node-power idle=1200,suspended=30,wake=3m
  schedulerd simulate --trace ../shared/traces/itp_cluster09.csv --nodes 6 --policy fifo-firstfit,energy+cap+offpeak \
      --budget-kw 40 --tariff examples/tariff-two-rate.json --deferrable-fraction 0.3
  schedulerd simulate --trace ../shared/traces/itp_cluster09.csv --nodes 6 --policy energy+cap+offpeak \
      --budget-kw 40 --tariff examples/tariff-two-rate.json --deferrable-fraction 0.3 --offpeak-levers yield,deadline

The cluster file is a CSV with the columns name,gpus,model (model h100, h200
or a100).

Flags:
`

type simConfig struct {
	budgetKW, deferrable, slowdown                                  float64
	trace, cluster, gpu, policies, output, nodePower, start, tariff string
	budgetFile                                                      string
	levers                                                          string
	nodes                                                           int
	idleTimeout, preemptLoss                                        time.Duration
	singleNode, progress                                            bool
}

func runSimulate(args []string, stdout, stderr io.Writer) int {
	var c simConfig
	fs := flag.NewFlagSet("schedulerd simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.trace, "trace", "", "the trace CSV to replay (required)")
	fs.IntVar(&c.nodes, "nodes", 0, "number of 8-GPU nodes of the virtual cluster")
	fs.StringVar(&c.gpu, "gpu", "h100", "GPU of every node with --nodes: h100, h200 or a100")
	fs.StringVar(&c.cluster, "cluster", "", "a node list CSV (name,gpus,model) instead of --nodes")
	fs.StringVar(&c.tariff, "tariff", "", "a tariff JSON file (as joule tariff --set takes) for cost and CO2; default: the flat default tariff")
	fs.StringVar(&c.policies, "policy", "", "policies to run side by side, comma-separated, of "+strings.Join(scheduler.AllPolicyNames(), ", ")+
		" (default: "+strings.Join(scheduler.PolicyNames(), ",")+", and with --budget-kw "+strings.Join(scheduler.BudgetPolicyNames(), ",")+")")
	fs.Float64Var(&c.deferrable, "deferrable-fraction", 0, "share (0 to 1) of the trace's jobs, picked by a fixed seed, that are deferrable with a 24 h deadline (policy energy+cap+offpeak defers them)")
	fs.StringVar(&c.output, "o", "table", "output: table or json")
	fs.StringVar(&c.start, "start", sim.DefaultStart.Format(time.RFC3339), "the time trace time zero maps to (RFC 3339)")
	def := power.DefaultNodePower
	fs.StringVar(&c.nodePower, "node-power", "", fmt.Sprintf(
		"non-GPU node power, any of idle=W,loaded=W,suspended=W,wake=DURATION (default idle=%g,loaded=%g,suspended=%g,wake=%s)",
		def.IdleW, def.LoadedW, def.SuspendedW, def.WakeDelay))
	fs.DurationVar(&c.idleTimeout, "idle-timeout", scheduler.DefaultIdleTimeout, "how long an empty node stays on before policies that suspend nodes suspend it")
	fs.BoolVar(&c.singleNode, "single-node", false, "skip jobs larger than one node instead of gang-placing them on whole nodes")
	fs.Float64Var(&c.budgetKW, "budget-kw", 0, "the GPUs' power budget in kW for policies energy+cap and energy+cap+offpeak")
	fs.StringVar(&c.budgetFile, "budget", "", "a power budget JSON file instead of --budget-kw: the body PUT /api/v1/power/budget takes (default_w, node_max_w, windows of cron pairs), e.g. examples/budget-day-night.json")
	fs.Float64Var(&c.slowdown, "balanced-slowdown", 0, "under a power cap, how much slower than uncapped a job may run at its balanced limit (0.10 = 10% more time; default 0.10, as schedulerd's)")
	fs.StringVar(&c.levers, "offpeak-levers", "yield,deadline", "the off-peak policy's levers beyond deferral, comma-separated: yield, deadline, efficient, or none")
	fs.DurationVar(&c.preemptLoss, "preempt-loss", sim.DefaultPreemptLoss, "work a preempted job loses (stop, checkpoint, restart), added to what it has left; 0 for none")
	fs.BoolVar(&c.progress, "progress", isTerminal(stderr), "show a progress bar on stderr (default: when stderr is a terminal)")
	if code, ok := parseSub(fs, simulateUsage, args, stderr); !ok {
		return code
	}
	if err := simulate(c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "schedulerd simulate:", err)
		return 1
	}
	return 0
}

func simulate(c simConfig, stdout, stderr io.Writer) error {
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("-o %q: use table or json", c.output)
	}
	if c.trace == "" {
		return errors.New("--trace is required: give a trace CSV, e.g. --trace ../shared/traces/itp_cluster03.csv")
	}
	start, err := time.Parse(time.RFC3339, c.start)
	if err != nil {
		return fmt.Errorf("--start %q: %w (use RFC 3339, e.g. 2021-03-04T00:00:00Z)", c.start, err)
	}
	nodePower, err := power.ParseNodePower(c.nodePower, power.DefaultNodePower)
	if err != nil {
		return fmt.Errorf("--node-power: %w", err)
	}
	if !(c.deferrable >= 0 && c.deferrable <= 1) {
		return fmt.Errorf("--deferrable-fraction %v: give a share from 0 to 1, e.g. 0.3", c.deferrable)
	}
	if c.preemptLoss < 0 || c.preemptLoss > 24*time.Hour {
		return fmt.Errorf("--preempt-loss %s: give the work one preemption loses, 0 to 24h, e.g. 2m", c.preemptLoss)
	}
	if !(c.slowdown >= 0 && c.slowdown <= 10) {
		return fmt.Errorf("--balanced-slowdown %v: give a share of extra time in (0, 10], e.g. 0.10 for 10%%", c.slowdown)
	}
	var budget *api.PowerBudget
	if c.budgetFile != "" {
		if c.budgetKW != 0 {
			return errors.New("give either --budget-kw or --budget FILE, not both")
		}
		b, err := readBudget(c.budgetFile)
		if err != nil {
			return err
		}
		budget = &b
	}
	if c.policies == "" {
		names := scheduler.PolicyNames()
		if c.budgetKW > 0 || budget != nil {
			names = append(names, scheduler.BudgetPolicyNames()...)
		}
		c.policies = strings.Join(names, ",")
	}
	if c.idleTimeout <= 0 {
		return fmt.Errorf("--idle-timeout %s: give a duration > 0, e.g. 15m", c.idleTimeout)
	}
	var cluster []sim.NodeSpec
	switch {
	case c.cluster != "" && c.nodes > 0:
		return errors.New("give either --nodes or --cluster, not both")
	case c.cluster != "":
		f, err := os.Open(c.cluster)
		if err != nil {
			return fmt.Errorf("--cluster: %w", err)
		}
		cluster, err = sim.ReadCluster(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--cluster %s: %w", c.cluster, err)
		}
	case c.nodes > 0:
		if _, err := power.ModelFor(c.gpu); err != nil {
			return fmt.Errorf("--gpu: %w", err)
		}
		cluster = sim.Uniform(c.nodes, c.gpu)
	default:
		return errors.New("give the cluster: --nodes N (8-GPU nodes) or --cluster FILE")
	}
	for _, n := range cluster {
		if _, err := power.ModelFor(n.Kind); err != nil {
			return fmt.Errorf("cluster node %s: %w", n.Name, err)
		}
	}
	plan, err := tariff.Compile(tariff.Default())
	if err != nil {
		return err
	}
	if c.tariff != "" {
		data, err := os.ReadFile(c.tariff)
		if err != nil {
			return fmt.Errorf("--tariff: %w", err)
		}
		if plan, err = tariff.Parse(data); err != nil {
			return fmt.Errorf("--tariff %s: %w", c.tariff, err)
		}
	}
	yield, efficient, deadline, err := parseLevers(c.levers)
	if err != nil {
		return err
	}
	var policies []scheduler.Policy
	for _, name := range strings.Split(c.policies, ",") {
		p, err := scheduler.PolicyByName(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("--policy: %w", err)
		}
		p.Node = nodePower
		if p.SuspendIdle {
			p.IdleTimeout = c.idleTimeout
		}
		p.MultiNode = !c.singleNode
		if p.OffPeak {
			p.DeferrableYield, p.DeferrableEnergyPolicy, p.DeadlineFirst = yield, "", deadline
			if efficient {
				p.DeferrableEnergyPolicy = api.PolicyEfficient
			}
		}
		policies = append(policies, p)
	}
	f, err := os.Open(c.trace)
	if err != nil {
		return fmt.Errorf("--trace: %w", err)
	}
	jobs, err := sim.ReadTrace(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("--trace %s: %w", c.trace, err)
	}

	fmt.Fprintf(stderr, "simulate: %s, %d jobs, %d nodes; node power: idle %g W, loaded %g W, suspended %g W, wake %s; idle timeout %s\n",
		c.trace, len(jobs), len(cluster), nodePower.IdleW, nodePower.LoadedW, nodePower.SuspendedW, nodePower.WakeDelay, c.idleTimeout)
	began := time.Now()
	results := make([]sim.Result, len(policies))
	errs := make([]error, len(policies))
	bar := newProgressBar(stderr, c.progress, len(policies))
	var wg sync.WaitGroup
	for i, p := range policies {
		wg.Go(func() {
			results[i], errs[i] = sim.Run(jobs, sim.Config{Cluster: cluster, Start: start, Policy: p, Tariff: plan, BudgetW: c.budgetKW * 1000, Budget: budget,
				DeferrableFraction: c.deferrable, BalancedSlowdown: c.slowdown, PreemptLoss: preemptLoss(c.preemptLoss),
				Progress: func(done, total int) { bar.update(i, done, total) }})
		})
	}
	wg.Wait()
	bar.finish()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("policy %s: %w", policies[i].Name, err)
		}
	}
	fmt.Fprintf(stderr, "simulate: replayed in %.1f s\n", time.Since(began).Seconds())
	if c.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Results []sim.Result `json:"results"`
		}{results})
	}
	return renderSimTable(stdout, c, cluster, nodePower, plan, results)
}

func renderSimTable(w io.Writer, c simConfig, cluster []sim.NodeSpec, np power.NodePower, plan *tariff.Plan, results []sim.Result) error {
	gpus := 0
	for _, n := range cluster {
		gpus += n.GPUs
	}
	fmt.Fprintf(w, "trace %s on %d nodes (%d GPUs)\n", c.trace, len(cluster), gpus)
	fmt.Fprintf(w, "node power (non-GPU): idle %g W, loaded %g W, suspended %g W (whole node), wake-up %s; idle timeout %s\n",
		np.IdleW, np.LoadedW, np.SuspendedW, np.WakeDelay, c.idleTimeout)
	t := plan.Tariff()
	fmt.Fprintf(w, "tariff: %s, default %.3f %s/kWh and %g g CO2/kWh, %d windows, PUE %g\n\n",
		orDefault(c.tariff, "schedulerd's default"), t.PricePerKWh, t.Currency, t.GCO2PerKWh, len(t.Windows), t.PUE)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tjobs\tskipped\tenergy kWh\tGPU kWh\tcost\tCO2 kg\tmean JCT s\tp95 JCT s\tmean wait s\tmakespan s\tGPU util\tsuspends\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f%%\t%d\t\n",
			r.Policy, r.Jobs, r.Skipped, r.EnergyKWh, r.GPUEnergyKWh, r.Cost, r.CO2Kg, r.MeanJCTS, r.P95JCTS,
			r.MeanWaitS, r.MakespanS, 100*r.GPUUtilization, r.Suspends)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.Unrunnable > 0 {
			fmt.Fprintf(w, "\n%s: %d job(s) never ran: %s\n", r.Policy, r.Unrunnable, r.UnrunnableReason)
		}
	}
	if c.deferrable > 0 {
		fmt.Fprintf(w, "\ndeferrable fraction %g (deadline 24 h after submission; only off-peak policies defer):\n", c.deferrable)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "policy\tdeferrable\tdeferred\tdeadlines missed\tof them unmeetable\tmean JCT deferrable s\tmean JCT others s\t")
		for _, r := range results {
			if o := r.OffPeak; o != nil {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t\n", r.Policy, o.DeferrableJobs, o.Deferred,
					o.DeadlinesMissed, o.DeadlinesUnmeetable, o.MeanJCTDeferrableS, o.MeanJCTNonDeferrableS)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(results) > 1 {
		base := results[0]
		fmt.Fprintln(w)
		for _, r := range results[1:] {
			fmt.Fprintf(w, "%s vs %s: energy %+.1f%%, cost %+.1f%%, mean JCT %+.1f%%", r.Policy, base.Policy,
				pct(r.EnergyKWh, base.EnergyKWh), pct(r.Cost, base.Cost), pct(r.MeanJCTS, base.MeanJCTS))
			if r.OffPeak != nil && base.OffPeak != nil {
				fmt.Fprintf(w, ", mean JCT of non-deferrable jobs %+.1f%%", pct(r.OffPeak.MeanJCTNonDeferrableS, base.OffPeak.MeanJCTNonDeferrableS))
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

// readBudget reads a power budget file: the JSON body of PUT
// /api/v1/power/budget, strictly (unknown fields are refused). Its values are
// checked by power.CompileBudget and the core's floor when a run sets it.
func readBudget(path string) (api.PowerBudget, error) {
	var b api.PowerBudget
	data, err := os.ReadFile(path)
	if err != nil {
		return b, fmt.Errorf("--budget: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, fmt.Errorf(`--budget %s: %w; write {"default_w": W, "node_max_w": W, "windows": [{"start": CRON, "end": CRON, "watts": W}]}`, path, err)
	}
	if dec.More() {
		return b, fmt.Errorf("--budget %s: more than one JSON value; write one budget object", path)
	}
	if _, err := power.CompileBudget(b); err != nil {
		return b, fmt.Errorf("--budget %s: %w", path, err)
	}
	return b, nil
}

func pct(x, base float64) float64 {
	if base == 0 {
		return 0
	}
	return 100 * (x/base - 1)
}

// progressBar draws one line on stderr for all policies running at once.
type progressBar struct {
	mu   sync.Mutex
	w    io.Writer
	on   bool
	done []float64
}

func newProgressBar(w io.Writer, on bool, n int) *progressBar {
	return &progressBar{w: w, on: on, done: make([]float64, n)}
}

func (b *progressBar) update(i, done, total int) {
	if !b.on || total == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done[i] = float64(done) / float64(total)
	sum := 0.0
	for _, d := range b.done {
		sum += d
	}
	frac := sum / float64(len(b.done))
	const width = 40
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac)
}

func (b *progressBar) finish() {
	if b.on {
		fmt.Fprintln(b.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseLevers reads --offpeak-levers: yield, efficient, deadline, none.
func parseLevers(list string) (yield, efficient, deadline bool, err error) {
	for _, l := range strings.Split(list, ",") {
		switch strings.TrimSpace(l) {
		case "yield":
			yield = true
		case "efficient":
			efficient = true
		case "deadline":
			deadline = true
		case "none", "":
		default:
			return false, false, false, fmt.Errorf("--offpeak-levers: unknown lever %q: use yield, efficient, deadline or none, e.g. --offpeak-levers yield,deadline", l)
		}
	}
	return yield, efficient, deadline, nil
}

// preemptLoss maps the flag (0 = none) onto sim.Config's (0 = default,
// negative = none).
func preemptLoss(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
