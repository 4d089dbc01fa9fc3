package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

var statusCmd = &command{
	name:    "status",
	args:    "ID",
	nargs:   1,
	summary: "show one job: state, placement, times, energy, progress and results",
	help: `Status shows everything schedulerd knows about one job: its state and the
reason for it, where it runs, when it was submitted, started and finished,
the energy its GPUs drew, its latest progress while it runs, and its metrics
once it has finished. -o json prints the API's JSON.

Example:
  $ joule status j-7
  ID:         j-7
  Name:       iris-mlp
  State:      running
  Node:       node-a (GPUs 0)
  Energy:     41.3 kJ (0.011 kWh)
  Progress:   epoch 4/20, step 380, loss 0.2131, 5120 samples/s, 20% done
  ...`,
	output: true,
	run:    runStatus,
}

func runStatus(ctx context.Context, e *env, c *client.Client, o *opts, args []string) error {
	j, err := c.Job(ctx, args[0])
	if err != nil {
		return err // the server's message names the job
	}
	if o.output == "json" {
		return writeJSON(e.stdout, j)
	}
	return renderStatus(e.stdout, j, e.now())
}

// renderStatus writes a job as "Field: value" lines, leaving out what does
// not apply (no progress before a job runs, no metrics before it ends).
func renderStatus(w io.Writer, j api.Job, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	line := func(k, format string, a ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, a...))
	}
	s := j.Spec
	line("ID", "%s", j.ID)
	line("Name", "%s", s.Name)
	line("User", "%s", s.User)
	line("Project", "%s", orDash(s.Project))
	line("State", "%s", j.State)
	if j.Reason != "" {
		line("Reason", "%s", j.Reason)
	}
	line("GPUs", "%d", s.GPUs)
	if j.Node != "" {
		if len(j.GPUIndices) > 0 {
			line("Node", "%s (GPUs %s)", j.Node, formatInts(j.GPUIndices))
		} else {
			line("Node", "%s", j.Node)
		}
	}
	line("Priority", "%d", s.Priority)
	line("Energy policy", "%s", orDash(s.EnergyPolicy))
	if j.PowerLimitW > 0 && j.State == api.StateRunning {
		if j.PowerNote != "" {
			line("Power limit", "%.0f W per GPU (%s)", j.PowerLimitW, j.PowerNote)
		} else {
			line("Power limit", "%.0f W per GPU", j.PowerLimitW)
		}
	}
	switch pc := j.PowerCurve; {
	case pc != nil:
		from := "profiled"
		if pc.From != j.ID {
			from = "from " + pc.From
		}
		line("Power curve", "uncapped %.0f W, a=%.2f k=%.2f (%s, %d limits)", pc.UncappedW, pc.A, pc.K, from, pc.Samples)
	case j.ProfileError != "":
		line("Power curve", "the power model's (profiling failed: %s)", j.ProfileError)
	}
	if s.Deferrable {
		line("Deferrable", "yes: may wait for a cheaper or cleaner window")
	}
	if s.Deadline != nil {
		line("Deadline", "%s", formatTime(*s.Deadline, now))
	}
	if s.Walltime != nil {
		line("Walltime", "%s", s.Walltime.Duration)
	}
	line("Workload", "%s", describeWorkload(s.Workload))
	line("Submitted", "%s", formatTime(j.SubmittedAt, now))
	if j.StartedAt != nil {
		line("Started", "%s", formatTime(*j.StartedAt, now))
		end, label := now, "Running for"
		if j.FinishedAt != nil {
			end, label = *j.FinishedAt, "Ran for"
		}
		line(label, "%s", formatAge(end.Sub(*j.StartedAt)))
	} else if !api.Terminal(j.State) {
		line("Waiting for", "%s", formatAge(now.Sub(j.SubmittedAt)))
	}
	if j.FinishedAt != nil {
		line("Finished", "%s", formatTime(*j.FinishedAt, now))
	}
	line("Energy", "%s (%.3g kWh)", formatEnergy(j.EnergyJ), j.EnergyJ/3.6e6)
	if p := j.Progress; p != nil && !api.Terminal(j.State) {
		line("Progress", "%s", describeProgress(p))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p := j.Placement; p != nil && len(p.Candidates) > 0 {
		if err := renderPlacement(w, p); err != nil {
			return err
		}
	}
	if m := j.Metrics; m != nil {
		return renderMetrics(w, m)
	}
	return nil
}

// renderPlacement shows the placement metrics: the best candidate nodes
// and each scorer's part (score x weight), as Nomad's alloc status does.
func renderPlacement(w io.Writer, p *api.Placement) error {
	fmt.Fprintf(w, "\nPlacement (policy %s, %d nodes evaluated; best first):\n", p.Policy, p.Evaluated)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	var scorers []string
	for _, part := range p.Candidates[0].Parts {
		scorers = append(scorers, part.Scorer)
	}
	fmt.Fprintf(tw, "  NODE\tPOWER\t%s\tSCORE\n", strings.ToUpper(strings.Join(scorers, "\t")))
	for _, c := range p.Candidates {
		cells := []string{c.Node, orDash(c.Power)}
		for _, name := range scorers {
			cell := "-"
			for _, part := range c.Parts {
				if part.Scorer == name {
					cell = fmt.Sprintf("%.3f x%g", part.Score, part.Weight)
				}
			}
			cells = append(cells, cell)
		}
		cells = append(cells, fmt.Sprintf("%.3f", c.Score))
		fmt.Fprintf(tw, "  %s\n", strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func describeWorkload(w api.Workload) string {
	switch {
	case w.Synthetic != nil:
		return fmt.Sprintf("synthetic, %s at %.0f%% utilisation", w.Synthetic.Duration.Duration, w.Synthetic.Utilization*100)
	case w.Train != nil:
		t := w.Train
		var b strings.Builder
		fmt.Fprintf(&b, "train on %s %s", t.Dataset.Format, t.Dataset.Path)
		if t.Dataset.TestPath != "" {
			fmt.Fprintf(&b, " (test %s)", t.Dataset.TestPath)
		}
		if len(t.Model.Hidden) > 0 {
			fmt.Fprintf(&b, ", hidden %s %s", formatInts(t.Model.Hidden), t.Model.Activation)
		}
		fmt.Fprintf(&b, ", %s lr %g, batch %d, %d epochs", t.Optimizer.Name, t.Optimizer.LR, t.BatchSize, t.Epochs)
		return b.String()
	}
	return "-"
}

// describeProgress writes the parts of a progress report that the workload
// fills in: a synthetic job reports only its fraction done.
func describeProgress(p *api.Progress) string {
	var parts []string
	switch {
	case p.Epochs > 0:
		parts = append(parts, fmt.Sprintf("epoch %d/%d", p.Epoch, p.Epochs))
	case p.Epoch > 0:
		parts = append(parts, fmt.Sprintf("epoch %d", p.Epoch))
	}
	if p.Step > 0 {
		parts = append(parts, fmt.Sprintf("step %d", p.Step), fmt.Sprintf("loss %.4g", p.Loss))
	}
	if p.SamplesPerS > 0 {
		parts = append(parts, fmt.Sprintf("%.0f samples/s", p.SamplesPerS))
	}
	parts = append(parts, fmt.Sprintf("%.0f%% done", p.Fraction*100))
	return strings.Join(parts, ", ")
}

// renderMetrics writes a finished job's results under a "Metrics:" heading.
func renderMetrics(w io.Writer, m *api.Metrics) error {
	fmt.Fprintln(w, "Metrics:")
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	line := func(k, format string, a ...any) {
		fmt.Fprintf(tw, "  %s:\t%s\n", k, fmt.Sprintf(format, a...))
	}
	opt := func(k string, v *float64) {
		if v != nil {
			line(k, "%.4g", *v)
		}
	}
	if m.Task != "" {
		line("Task", "%s", m.Task)
	}
	line("Epochs run", "%d", m.EpochsRun)
	line("Train loss", "%.4g", m.TrainLoss)
	line("Validation loss", "%.4g", m.ValLoss)
	if m.Task != "regression" {
		line("Validation accuracy", "%.4g", m.ValAccuracy)
	}
	opt("Test accuracy", m.TestAccuracy)
	opt("Precision", m.Precision)
	opt("Recall", m.Recall)
	opt("Macro F1", m.MacroF1)
	opt("MSE", m.MSE)
	opt("R2", m.R2)
	line("Throughput", "%.0f samples/s", m.SamplesPerS)
	line("Duration", "%s", time.Duration(m.DurationS*float64(time.Second)).Round(time.Millisecond))
	if m.Device != "" {
		line("Device", "%s", m.Device)
	}
	if m.RowsDropped > 0 || m.RowsImputed > 0 {
		line("Rows cleaned", "%d dropped, %d imputed", m.RowsDropped, m.RowsImputed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(m.ConfusionMatrix) > 0 {
		fmt.Fprintln(w, "  Confusion matrix (rows: true class, columns: predicted):")
		width := 1
		for _, row := range m.ConfusionMatrix {
			for _, n := range row {
				width = max(width, len(strconv.Itoa(n)))
			}
		}
		for _, row := range m.ConfusionMatrix {
			fmt.Fprint(w, "   ")
			for _, n := range row {
				fmt.Fprintf(w, " %*d", width, n)
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}
