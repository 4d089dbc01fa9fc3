package main

import (
	"context"
	"fmt"

	"github.com/joulehq/joule/web/client"
)

var cancelCmd = &command{
	name:    "cancel",
	args:    "ID",
	nargs:   1,
	summary: "cancel a job",
	help: `Cancel asks schedulerd to cancel a job: a queued job leaves the queue, a
running one is stopped by its agent. It prints the job's id and state after
the request.

Example:
  $ joule cancel j-7
  j-7 cancelled`,
	run: runCancel,
}

func runCancel(ctx context.Context, e *env, c *client.Client, _ *opts, args []string) error {
	j, err := c.Cancel(ctx, args[0])
	if err != nil {
		return err // the server's message names the job
	}
	if j.Reason != "" {
		_, err = fmt.Fprintf(e.stdout, "%s %s (%s)\n", j.ID, j.State, j.Reason)
	} else {
		_, err = fmt.Fprintf(e.stdout, "%s %s\n", j.ID, j.State)
	}
	return err
}
