package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

var submitCmd = &command{
	name:    "submit",
	args:    "FILE",
	nargs:   1,
	summary: "submit a job spec (YAML or JSON); prints the new job's id",
	help: `Submit reads a job spec from FILE ("-" for standard input), checks it
locally, and sends it to schedulerd. It prints the new job's id alone on one
line, so scripts can keep it. A spec with a mistake fails before anything is
sent, naming the file and the field.

Example:
  $ cat iris.yaml
  name: iris-mlp
  user: alice
  gpus: 1
  workload:
    train:
      dataset: {format: csv, path: /data/iris.csv, label: species}
      model: {hidden: [32, 16]}
      epochs: 20
  $ joule submit iris.yaml
  j-7
  $ id=$(joule submit iris.yaml) && joule status "$id"`,
	run: runSubmit,
}

func runSubmit(ctx context.Context, e *env, c *client.Client, _ *opts, args []string) error {
	file := args[0]
	var data []byte
	var err error
	baseDir := "."
	if file == "-" {
		file = "standard input"
		data, err = io.ReadAll(e.stdin)
	} else {
		baseDir = filepath.Dir(file)
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read job spec: %w", err)
	}
	spec, err := api.ParseJobSpec(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	// Relative dataset paths are relative to the spec file, as written.
	spec.ResolvePaths(baseDir)
	id, err := c.Submit(ctx, spec)
	if err != nil {
		return fmt.Errorf("submit %s: %w", file, err)
	}
	_, err = fmt.Fprintln(e.stdout, id)
	return err
}
