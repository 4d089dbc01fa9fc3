package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

// powerOpts are joule power's flags.
type powerOpts struct {
	file     string
	defaultW string
	nodeMaxW string
	windows  windowFlags
	clear    bool
}

// windowFlags collects repeated --window "START|END|WATTS" flags.
type windowFlags []api.BudgetWindow

func (w *windowFlags) String() string { return "" }

func (w *windowFlags) Set(s string) error {
	parts := strings.Split(s, "|")
	if len(parts) != 3 {
		return fmt.Errorf(`%q: write "START|END|WATTS", e.g. "0 8 * * 1-5|0 20 * * 1-5|400kW"`, s)
	}
	watts, err := parseWatts(parts[2])
	if err != nil {
		return err
	}
	*w = append(*w, api.BudgetWindow{Start: strings.TrimSpace(parts[0]), End: strings.TrimSpace(parts[1]), Watts: watts})
	return nil
}

// parseWatts reads "400000", "400000W", "400kW" or "0.4MW".
func parseWatts(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	switch u := strings.ToLower(t); {
	case strings.HasSuffix(u, "mw"):
		mult, t = 1e6, t[:len(t)-2]
	case strings.HasSuffix(u, "kw"):
		mult, t = 1e3, t[:len(t)-2]
	case strings.HasSuffix(u, "w"):
		t = t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a power: write watts such as 400000, 400kW or 0.4MW", s)
	}
	return v * mult, nil
}

var powerCmd = &command{
	name:    "power",
	summary: "show or set the facility power budget for the GPUs",
	help: `Power shows the power budget that bounds the GPUs' draw: the watts in force
now (the default, or the window that overrides it), the cluster's measured GPU
power, what the allocated limits allow at most, the least the GPUs can be held
to, and the time spent over budget since schedulerd started.

With --default, --node-max, --window, --set or --clear it replaces the budget
first. Windows are two cron expressions (minute hour day-of-month month
day-of-week, optionally prefixed CRON_TZ=Zone) and the watts in force between
them. A budget below the GPUs' minimum possible draw is refused. One that
the running jobs exceed even at their minimum limits (possible when idle
nodes can be suspended) preempts running jobs, lowest priority and most
recently started first, until the rest fit; they are requeued and wait for
power (train jobs resume from their checkpoint).

Example:
  $ joule power --default 600kW --node-max 6kW \
      --window 'CRON_TZ=Europe/Berlin 0 8 * * 1-5|CRON_TZ=Europe/Berlin 0 20 * * 1-5|400kW'
  $ joule power
  IN FORCE     400.0 kW  (window 1: CRON_TZ=Europe/Berlin 0 8 * * 1-5 -> ...)
  MEASURED     312.4 kW
  ...
  $ joule power --set budget.json      # {"default_w": 600000, "windows": [...]}`,
	output: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.power.file, "set", "", `put in force the budget in a JSON file ("-": stdin) as PUT /api/v1/power/budget takes it`)
		fs.StringVar(&o.power.defaultW, "default", "", "set the cluster's default GPU budget (e.g. 600kW)")
		fs.StringVar(&o.power.nodeMaxW, "node-max", "", "set the most one node's GPUs may draw (e.g. 6kW)")
		fs.Var(&o.power.windows, "window", `add a window "START|END|WATTS" (repeat for more)`)
		fs.BoolVar(&o.power.clear, "clear", false, "remove the budget")
	},
	run: runPower,
}

func runPower(ctx context.Context, e *env, c *client.Client, o *opts, _ []string) error {
	p := o.power
	set := p.file != "" || p.defaultW != "" || p.nodeMaxW != "" || len(p.windows) > 0 || p.clear
	var st api.PowerBudgetStatus
	var err error
	if set {
		var b api.PowerBudget
		if b, err = budgetFromFlags(e, p); err != nil {
			return err
		}
		st, err = c.SetPowerBudget(ctx, b)
	} else {
		st, err = c.PowerBudget(ctx)
	}
	if err != nil {
		return err
	}
	if o.output == "json" {
		return writeJSON(e.stdout, st)
	}
	return renderPower(e.stdout, st)
}

func budgetFromFlags(e *env, p powerOpts) (api.PowerBudget, error) {
	var b api.PowerBudget
	if p.file != "" {
		if p.defaultW != "" || p.nodeMaxW != "" || len(p.windows) > 0 || p.clear {
			return b, errors.New("--set replaces the whole budget: give it alone, without --default, --node-max, --window or --clear")
		}
		var r io.Reader = e.stdin
		if p.file != "-" {
			f, err := os.Open(p.file)
			if err != nil {
				return b, fmt.Errorf("read budget: %w", err)
			}
			defer f.Close()
			r = f
		}
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return b, fmt.Errorf("read budget %s: %v; write {\"default_w\": W, \"node_max_w\": W, \"windows\": [{\"start\", \"end\", \"watts\"}]}", p.file, err)
		}
		return b, nil
	}
	if p.clear {
		if p.defaultW != "" || p.nodeMaxW != "" || len(p.windows) > 0 {
			return b, errors.New("--clear removes the budget: give it alone")
		}
		return b, nil
	}
	var err error
	if p.defaultW != "" {
		if b.DefaultW, err = parseWatts(p.defaultW); err != nil {
			return b, fmt.Errorf("--default: %w", err)
		}
	}
	if p.nodeMaxW != "" {
		if b.NodeMaxW, err = parseWatts(p.nodeMaxW); err != nil {
			return b, fmt.Errorf("--node-max: %w", err)
		}
	}
	b.Windows = p.windows
	return b, nil
}

func formatPower(w float64) string {
	switch {
	case w >= 1e6:
		return fmt.Sprintf("%.2f MW", w/1e6)
	case w >= 1e4:
		return fmt.Sprintf("%.1f kW", w/1e3)
	default:
		return fmt.Sprintf("%.0f W", w)
	}
}

func renderPower(w io.Writer, st api.PowerBudgetStatus) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	b := st.Budget
	switch {
	case st.WattsNow == 0 && b.NodeMaxW > 0:
		fmt.Fprintf(tw, "IN FORCE\tnone for the cluster\t(each node's GPUs at most %s)\n", formatPower(b.NodeMaxW))
	case st.WattsNow == 0:
		fmt.Fprintln(tw, "IN FORCE\tnone\t(no budget: every job runs at its policy's operating point)")
	case st.Window >= 0 && st.Window < len(b.Windows):
		win := b.Windows[st.Window]
		fmt.Fprintf(tw, "IN FORCE\t%s\t(window %d: %s -> %s)\n", formatPower(st.WattsNow), st.Window+1, win.Start, win.End)
	default:
		fmt.Fprintf(tw, "IN FORCE\t%s\t(default)\n", formatPower(st.WattsNow))
	}
	fmt.Fprintf(tw, "MEASURED\t%s\t(the GPUs' draw at their last heartbeats)\n", formatPower(st.MeasuredW))
	fmt.Fprintf(tw, "ALLOCATED\t%s\t(busy GPUs' limits + idle GPUs' draw)\n", formatPower(st.AllocatedW))
	fmt.Fprintf(tw, "MIN DRAW\t%s\t(the least the GPUs can be held to: a budget below it is refused)\n", formatPower(st.MinDrawW))
	fmt.Fprintf(tw, "OVER BUDGET\t%s\t(since schedulerd started)\n", formatAge(secondsDuration(st.OverBudgetS)))
	if b.DefaultW > 0 {
		fmt.Fprintf(tw, "DEFAULT\t%s\n", formatPower(b.DefaultW))
	}
	if b.NodeMaxW > 0 {
		fmt.Fprintf(tw, "NODE MAX\t%s\n", formatPower(b.NodeMaxW))
	}
	for i, win := range b.Windows {
		fmt.Fprintf(tw, "WINDOW %d\t%s\t%s -> %s\n", i+1, formatPower(win.Watts), win.Start, win.End)
	}
	return tw.Flush()
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
