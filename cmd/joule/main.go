package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/joulehq/joule/web/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		now:    time.Now,
	}))
}

// env is the world a command sees; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// opts are the flags every command may read.
type opts struct {
	server string
	ca     string
	output string // table | json (| a command's own outputs)
	all    bool
	// report
	from, to, by string
	// tariff
	set, carbonCSV string
	// power
	power powerOpts
	// queue
	queue queueOpts
}

// command is one subcommand: its help and what it runs.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	nargs   int    // how many positional arguments it takes
	summary string
	help    string   // what it does, how to read it, an example
	output  bool     // takes -o table|json
	outputs []string // further -o formats it takes
	flags   func(fs *flag.FlagSet, o *opts)
	run     func(ctx context.Context, e *env, c *client.Client, o *opts, args []string) error
}

var commands = []*command{submitCmd, queueCmd, statusCmd, cancelCmd, nodesCmd, reportCmd, tariffCmd, powerCmd}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const serverHelp = "schedulerd's URL; JOULE_SERVER sets the default"

func usage(w io.Writer) {
	fmt.Fprintf(w, `joule talks to the joule scheduler (schedulerd).

Usage:
  joule [--server URL] COMMAND [flags] [args]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Flags:
  --server URL   schedulerd's URL (default $JOULE_SERVER, else %s)
  --ca FILE      CA certificate to trust for https (default $JOULE_CA)

Every request carries the token in $JOULE_TOKEN (an admin makes one with
"schedulerd token create --role user --name NAME"); jobs are submitted as
the token's user.

Run "joule COMMAND --help" for a command's flags and an example.
Example:
  joule submit iris.yaml && joule queue
`, client.DefaultServer)
}

func usageLine(c *command) string {
	return strings.TrimSpace("joule " + c.name + " [flags] " + c.args)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", usageLine(c), strings.TrimSpace(c.help))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// run is the whole CLI; it returns the exit status: 0 done, 1 the request
// failed, 2 the command line was wrong.
func run(ctx context.Context, args []string, e *env) int {
	server := e.getenv("JOULE_SERVER")
	if server == "" {
		server = client.DefaultServer
	}
	global := flag.NewFlagSet("joule", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.StringVar(&server, "server", server, serverHelp)
	ca := e.getenv("JOULE_CA")
	global.StringVar(&ca, "ca", ca, "CA certificate for https; JOULE_CA sets the default")
	switch err := global.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		usage(e.stdout)
		return 0
	case err != nil:
		fmt.Fprintf(e.stderr, "joule: %v\n\n", err)
		usage(e.stderr)
		return 2
	}
	args = global.Args()
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	name := args[0]
	if name == "help" {
		if len(args) > 1 && lookup(args[1]) != nil {
			return run(ctx, []string{args[1], "--help"}, e)
		}
		usage(e.stdout)
		return 0
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "joule: unknown command %q\n\n", name)
		usage(e.stderr)
		return 2
	}

	o := &opts{server: server, ca: ca, output: "table"}
	fs := flag.NewFlagSet("joule "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, help to stdout
	fs.StringVar(&o.server, "server", server, serverHelp)
	fs.StringVar(&o.ca, "ca", ca, "CA certificate for https; JOULE_CA sets the default")
	if c.output {
		help := "output format: table or json (the API's JSON)"
		for _, f := range c.outputs {
			help += " or " + f
		}
		fs.StringVar(&o.output, "o", "table", help)
	}
	if c.flags != nil {
		c.flags(fs, o)
	}
	pos, err := parseInterspersed(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(e.stdout, c, fs)
		return 0
	case err != nil:
		return badUsage(e, c, err.Error())
	case len(pos) != c.nargs:
		if len(pos) < c.nargs {
			return badUsage(e, c, "missing "+c.args)
		}
		return badUsage(e, c, fmt.Sprintf("unexpected argument(s): %s", strings.Join(pos[c.nargs:], " ")))
	case o.output != "table" && o.output != "json" && !slices.Contains(c.outputs, o.output):
		return badUsage(e, c, fmt.Sprintf("-o %q: use %s", o.output, strings.Join(append([]string{"table", "json"}, c.outputs...), " or ")))
	}
	cl, err := client.New(o.server)
	if err != nil {
		fmt.Fprintf(e.stderr, "joule: %v\n", err)
		return 2
	}
	cl.Token = strings.TrimSpace(e.getenv("JOULE_TOKEN"))
	if o.ca != "" {
		if err := cl.UseCA(o.ca); err != nil {
			fmt.Fprintf(e.stderr, "joule: %v\n", err)
			return 2
		}
	}
	if err := c.run(ctx, e, cl, o, pos); err != nil {
		fmt.Fprintf(e.stderr, "joule: %v\n", err)
		return 1
	}
	return 0
}

// badUsage reports a wrong command line briefly: the problem, the usage line
// and where the full help is.
func badUsage(e *env, c *command, msg string) int {
	fmt.Fprintf(e.stderr, "joule %s: %s\nUsage: %s\nRun \"joule %s --help\" for more.\n", c.name, msg, usageLine(c), c.name)
	return 2
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments ("joule status j-7 -o json" as well as "joule status -o json
// j-7"); everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
