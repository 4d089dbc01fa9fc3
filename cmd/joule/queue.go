package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

// recentlyFinished is how long a finished job stays in the default queue view.
const recentlyFinished = time.Hour

var queueCmd = &command{
	name:    "queue",
	summary: "list jobs: queued, deferred and running, and those finished in the last hour",
	help: `Queue lists jobs, oldest first: every job that is queued, deferred, running
or preempted, and those that finished in the last hour. --all lists every job
schedulerd remembers. -o json prints the same jobs as the API's JSON.

ENERGY is what the job's GPUs have drawn so far; AGE is the time since it was
submitted; REASON says why a job waits or how it ended.

Example:
  $ joule queue
  ID   NAME      USER   PROJECT  STATE    GPUS  NODE    ENERGY    AGE  REASON
  j-6  resnet    bob    vision   running  8     node-a  3.2 MJ    2h   -
  j-7  iris-mlp  alice  default  queued   1     -       0 J       12s  waiting for 1 free GPU
  $ joule queue --all -o json | jq '.[] | select(.state == "failed") | .id'`,
	output: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.all, "all", false, "list every job, including those finished more than an hour ago")
	},
	run: runQueue,
}

func runQueue(ctx context.Context, e *env, c *client.Client, o *opts, _ []string) error {
	jobs, err := c.Jobs(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	shown := jobs
	if !o.all {
		shown = visibleJobs(jobs, now)
	}
	if o.output == "json" {
		if shown == nil {
			shown = []api.Job{}
		}
		return writeJSON(e.stdout, shown)
	}
	if err := renderQueue(e.stdout, shown, now); err != nil {
		return err
	}
	if hidden := len(jobs) - len(shown); hidden > 0 {
		fmt.Fprintf(e.stderr, "(%d job(s) that finished over an hour ago not shown; --all lists them)\n", hidden)
	}
	return nil
}

// visibleJobs keeps the jobs that are not finished and those that finished
// within recentlyFinished of now.
func visibleJobs(jobs []api.Job, now time.Time) []api.Job {
	var out []api.Job
	for _, j := range jobs {
		if !api.Terminal(j.State) {
			out = append(out, j)
			continue
		}
		end := j.SubmittedAt
		if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		if now.Sub(end) < recentlyFinished {
			out = append(out, j)
		}
	}
	return out
}

// renderQueue writes jobs as a table, one line each, in the given order.
func renderQueue(w io.Writer, jobs []api.Job, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tUSER\tPROJECT\tSTATE\tGPUS\tNODE\tENERGY\tAGE\tREASON")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			j.ID, j.Spec.Name, j.Spec.User, orDash(j.Spec.Project), j.State,
			strconv.Itoa(j.Spec.GPUs), orDash(j.Node), formatEnergy(j.EnergyJ),
			formatAge(now.Sub(j.SubmittedAt)), orDash(j.Reason))
	}
	return tw.Flush()
}
