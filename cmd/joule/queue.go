package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

// recentlyFinished is how long a finished job stays in the default queue view.
const recentlyFinished = time.Hour

// queuePage is how many jobs joule queue asks for per request.
var queuePage = 1000

var queueCmd = &command{
	name:    "queue",
	summary: "list jobs: queued, deferred and running, and those finished in the last hour",
	help: `Queue lists jobs, oldest first: every job that is queued, deferred, running
or preempted, and those that finished in the last hour. --all lists every job
schedulerd remembers. -o json prints the same jobs as the API's JSON.

--user, --project and --state (a comma list of queued, deferred, running,
preempted, succeeded, failed, cancelled) keep the jobs that match them all;
schedulerd filters, and joule follows its pages until every matching job is
listed. Without --all, jobs that finished over an hour ago stay out even if
they match. --limit N stops after N jobs and says how to list the next ones
(--after ID: the jobs after that one).

ENERGY is what the job's GPUs have drawn so far; AGE is the time since it was
submitted; REASON says why a job waits or how it ended.

Examples:
  $ joule queue
  ID   NAME      USER   PROJECT  STATE    GPUS  NODE    ENERGY    AGE  REASON
  j-6  resnet    bob    vision   running  8     node-a  3.2 MJ    2h   -
  j-7  iris-mlp  alice  default  queued   1     -       0 J       12s  waiting for 1 free GPU
  $ joule queue --user alice --state running          # my running jobs
  $ joule queue --project vision --state queued,deferred
  $ joule queue --all --state failed --limit 20       # the first 20 failed jobs ever
  $ joule queue --all -o json | jq '.[] | select(.state == "failed") | .id'`,
	output: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.all, "all", false, "list every job, including those finished more than an hour ago")
		fs.StringVar(&o.queue.user, "user", "", "only this user's jobs")
		fs.StringVar(&o.queue.project, "project", "", "only this project's jobs")
		fs.StringVar(&o.queue.state, "state", "", "only jobs in these states, a comma list (e.g. queued,running)")
		fs.IntVar(&o.queue.limit, "limit", 0, "list at most this many jobs (0: every matching job)")
		fs.StringVar(&o.queue.after, "after", "", "list the jobs after this job id (from a --limit listing)")
	},
	run: runQueue,
}

// queueOpts are joule queue's filters.
type queueOpts struct {
	user, project, state, after string
	limit                       int
}

func runQueue(ctx context.Context, e *env, c *client.Client, o *opts, _ []string) error {
	qo := o.queue
	if qo.limit < 0 {
		return fmt.Errorf("--limit %d: give the most jobs to list, or 0 for every matching job", qo.limit)
	}
	now := e.now()
	q := client.JobQuery{User: qo.user, Project: qo.project, After: qo.after}
	if qo.state != "" {
		q.States = strings.Split(qo.state, ",")
	}
	if !o.all {
		q.FinishedAfter = now.Add(-recentlyFinished)
	}
	var shown []api.Job
	var p client.JobPage
	for {
		q.Limit = queuePage
		if qo.limit > 0 {
			q.Limit = min(queuePage, qo.limit-len(shown))
		}
		var err error
		if p, err = c.ListJobs(ctx, q); err != nil {
			return err
		}
		shown = append(shown, p.Jobs...)
		if p.Next == "" || qo.limit > 0 && len(shown) >= qo.limit {
			break
		}
		q.After = p.Next
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
	filtered := qo != queueOpts{}
	switch hidden := p.Total - len(shown); {
	case p.Next != "":
		fmt.Fprintf(e.stderr, "(more jobs match; add --after %s for the next ones)\n", p.Next)
	case !filtered && !o.all && hidden > 0:
		fmt.Fprintf(e.stderr, "(%d job(s) that finished over an hour ago not shown; --all lists them)\n", hidden)
	}
	return nil
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
