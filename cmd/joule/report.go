package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

var reportCmd = &command{
	name:    "report",
	summary: "energy, cost and CO2 per job, user, project, node or day",
	help: `Report adds up the energy schedulerd metered over whole UTC days, --from to
--to (both inclusive, YYYY-MM-DD; by default the last 7 days), grouped by job,
user, project, node or day. Cost and CO2 use the tariff window in force when
the energy was drawn, with the facility overhead (PUE) on top. Idle energy
(GPUs holding no job) is its own group, "(idle)", so the groups add up to the
total. -o csv prints the server's CSV (kWh, kg CO2), -o json the API's JSON.

Example:
  $ joule report --from 2026-11-01 --to 2026-11-30 --by user
  USER     JOBS  GPU kWh  FACILITY kWh  COST        CO2
  alice    12    41.300   53.690        6.1200 EUR  19.3 kg
  bob      3     8.100    10.530        1.0100 EUR  3.9 kg
  (idle)   0     2.400    3.120         0.3900 EUR  1.2 kg
  total    15    51.800   67.340        7.5200 EUR  24.4 kg
  $ joule report --from 2026-11-01 --to 2026-11-30 --by user -o csv > november.csv`,
	output:  true,
	outputs: []string{"csv"},
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.from, "from", "", "first UTC day, YYYY-MM-DD (default: 6 days before --to)")
		fs.StringVar(&o.to, "to", "", "last UTC day, YYYY-MM-DD (default: today)")
		fs.StringVar(&o.by, "by", "day", "group by job, user, project, node or day")
	},
	run: runReport,
}

func runReport(ctx context.Context, e *env, c *client.Client, o *opts, _ []string) error {
	if o.output == "csv" {
		data, err := c.EnergyReportCSV(ctx, o.from, o.to, o.by)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(data)
		return err
	}
	rep, err := c.EnergyReport(ctx, o.from, o.to, o.by)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return writeJSON(e.stdout, rep)
	}
	return renderReport(e.stdout, rep)
}

func renderReport(w io.Writer, rep api.Report) error {
	fmt.Fprintf(w, "%s to %s (UTC), by %s\n", rep.From, rep.To, rep.GroupBy)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	head := map[string]string{"job": "JOB", "user": "USER", "project": "PROJECT", "node": "NODE", "day": "DAY"}[rep.GroupBy]
	fmt.Fprintf(tw, "%s\tJOBS\tGPU kWh\tFACILITY kWh\tCOST\tCO2\n", head)
	line := func(r api.ReportRow) {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.4f %s\t%.2f kg\n", r.Group, r.Jobs, r.EnergyJ/3.6e6, r.FacilityEnergyJ/3.6e6, r.Cost, rep.Currency, r.CO2G/1000)
	}
	for _, r := range rep.Rows {
		line(r)
	}
	line(rep.Total)
	return tw.Flush()
}
