package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/examples"
	"github.com/joulehq/joule/web/client"
)

// runDemo submits the embedded example jobs, prints their progress until they
// finish, then each one's energy. schedulerd keeps serving afterwards.
func runDemo(ctx context.Context, c *client.Client, dataDir string, out io.Writer) error {
	addr := c.BaseURL()
	specs, err := examples.WriteTo(filepath.Join(dataDir, "examples"))
	if err != nil {
		return err
	}
	var ids []string
	for _, path := range specs {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		spec, err := api.ParseJobSpec(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		spec.ResolvePaths(filepath.Dir(path))
		id, err := c.Submit(ctx, spec)
		if err != nil {
			return fmt.Errorf("submit %s: %w", filepath.Base(path), err)
		}
		fmt.Fprintf(out, "demo: submitted %s as %s (%d GPUs)\n", spec.Name, id, spec.GPUs)
		ids = append(ids, id)
	}
	last := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
		jobs := make([]api.Job, 0, len(ids))
		done := 0
		for _, id := range ids {
			j, err := c.Job(ctx, id)
			if err != nil {
				return err
			}
			jobs = append(jobs, j)
			if api.Terminal(j.State) {
				done++
			}
			// Print on a change of state or every 25% of progress.
			key := j.State
			if j.Progress != nil {
				key += fmt.Sprint(int(4 * j.Progress.Fraction))
			}
			if key != last[id] {
				fmt.Fprintln(out, "demo:", progressLine(j))
				last[id] = key
			}
		}
		if done == len(ids) {
			printEnergy(out, jobs)
			fmt.Fprintf(out, "demo: all jobs finished. schedulerd keeps serving at %s "+
				"(try: JOULE_TOKEN=$(cat %s) go run ./cmd/joule queue). Ctrl-C stops it.\n",
				addr, filepath.Join(dataDir, AdminTokenFile))
			return nil
		}
	}
}

func progressLine(j api.Job) string {
	s := fmt.Sprintf("%-5s %-10s %-9s", j.ID, j.Spec.Name, j.State)
	if j.Node != "" {
		s += fmt.Sprintf(" on %s GPUs %v", j.Node, j.GPUIndices)
	}
	if p := j.Progress; p != nil && j.State == api.StateRunning {
		s += fmt.Sprintf(" %3.0f%%", 100*p.Fraction)
		if p.Epochs > 0 {
			s += fmt.Sprintf(" epoch %d/%d loss %.4f", p.Epoch, p.Epochs, p.Loss)
		}
	}
	if j.Reason != "" {
		s += " (" + j.Reason + ")"
	}
	return s
}

func printEnergy(out io.Writer, jobs []api.Job) {
	fmt.Fprintln(out, "\ndemo: finished jobs and their energy")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tNODE\tGPUS\tRUNTIME\tENERGY\tRESULT")
	for _, j := range jobs {
		runtime := "-"
		if j.StartedAt != nil && j.FinishedAt != nil {
			runtime = j.FinishedAt.Sub(*j.StartedAt).Round(time.Second).String()
		}
		result := j.Reason
		if m := j.Metrics; m != nil {
			var parts []string
			if m.TestAccuracy != nil {
				parts = append(parts, fmt.Sprintf("test accuracy %.3f", *m.TestAccuracy))
			}
			parts = append(parts, fmt.Sprintf("%d epochs on %s", m.EpochsRun, m.Device))
			result = strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%.1f kJ\t%s\n",
			j.ID, j.Spec.Name, j.State, j.Node, j.Spec.GPUs, runtime, j.EnergyJ/1000, result)
	}
	tw.Flush()
	fmt.Fprintln(out)
}
