package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

var nodesCmd = &command{
	name:    "nodes",
	summary: "list nodes and the latest telemetry of each GPU",
	help: `Nodes prints one line per GPU with its latest telemetry from the node's agent:
utilisation, power draw, the power limit schedulerd set, the device's energy
counter, temperature and memory. SEEN is the time since the node's last
heartbeat. -o json prints the API's JSON.

Example:
  $ joule nodes
  NODE    STATE  GPU  MODEL  UTIL  POWER  LIMIT  ENERGY    TEMP  MEMORY          SEEN
  node-a  up     0    H100   97%   612 W  700 W  81.4 MJ   71°C  61.2/80.0 GiB   2s ago
  node-a  up     1    H100   0%    71 W   200 W  12.0 MJ   34°C  0.5/80.0 GiB    2s ago`,
	output: true,
	run:    runNodes,
}

func runNodes(ctx context.Context, e *env, c *client.Client, o *opts, _ []string) error {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	if o.output == "json" {
		if nodes == nil {
			nodes = []api.Node{}
		}
		return writeJSON(e.stdout, nodes)
	}
	return renderNodes(e.stdout, nodes, e.now())
}

// renderNodes writes one line per GPU; a node without GPUs gets one line of
// dashes so that it is still seen.
func renderNodes(w io.Writer, nodes []api.Node, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tGPU\tMODEL\tUTIL\tPOWER\tLIMIT\tENERGY\tTEMP\tMEMORY\tSEEN")
	for _, n := range nodes {
		seen := "never"
		if !n.LastHeartbeat.IsZero() {
			seen = formatAge(now.Sub(n.LastHeartbeat)) + " ago"
		}
		if len(n.GPUs) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", n.Name, n.State, seen)
			continue
		}
		for _, g := range n.GPUs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.0f%%\t%.0f W\t%.0f W\t%s\t%.0f°C\t%.1f/%.1f GiB\t%s\n",
				n.Name, n.State, g.Index, orDash(g.Model), g.Utilization*100, g.PowerW, g.LimitW,
				formatEnergy(g.EnergyJ), g.TemperatureC, g.MemoryUsedMiB/1024, g.MemoryTotalMiB/1024, seen)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A limit the GPU refused means the node is not held to the power budget.
	for _, n := range nodes {
		for _, g := range n.GPUs {
			if g.LimitError != "" {
				fmt.Fprintf(w, "warning: %s GPU %d refused its power limit: %s\n", n.Name, g.Index, g.LimitError)
			}
		}
	}
	return nil
}
