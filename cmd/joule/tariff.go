package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/web/client"
)

var tariffCmd = &command{
	name:    "tariff",
	summary: "show or set the energy tariff (prices, carbon, windows, PUE)",
	help: `Tariff prints the tariff in force as JSON; --set FILE replaces it (checked here
first, then by schedulerd, which stores it and re-plans deferred jobs at once).

The defaults apply outside every window. Each window runs from each firing of
its start cron expression to the next firing of its end one (minute hour
day-of-month month day-of-week; prefix "CRON_TZ=Europe/Berlin " for a time
zone; daylight-saving days follow cron). Where windows overlap the first
listed wins. pue scales GPU energy to facility energy for cost and CO2;
idle_energy is keep (idle GPUs' energy stays the node's) or share (it is
shared among the node's running jobs). --carbon-csv FILE adds a carbon
profile (header "time,gco2_per_kwh", RFC 3339 times in order; each value holds
until the next row): inside it, it replaces the windows' carbon intensity.
carbon_price_per_tonne (default 0) is the off-peak planner's internal price
of CO2: deferrable jobs wait for the start with the least price + carbon
price x gCO2 over their run, so clean hours win at one price. Reports
charge the real price only.

Example:
  $ cat tariff.json
  {"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1.3,
   "windows": [{"name": "peak", "start": "0 8 * * 1-5", "end": "0 20 * * 1-5",
                "price_per_kwh": 0.20, "gco2_per_kwh": 420}]}
  $ joule tariff --set tariff.json
  $ joule tariff --set tariff.json --carbon-csv grid-forecast.csv
  $ joule tariff`,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.set, "set", "", "a tariff JSON file to put in force")
		fs.StringVar(&o.carbonCSV, "carbon-csv", "", "with --set: a carbon profile CSV (time,gco2_per_kwh) to put in the tariff's carbon_csv")
	},
	run: runTariff,
}

func runTariff(ctx context.Context, e *env, c *client.Client, o *opts, _ []string) error {
	if o.set == "" && o.carbonCSV != "" {
		return fmt.Errorf("--carbon-csv goes with --set FILE: the profile is part of a tariff")
	}
	if o.set == "" {
		t, err := c.Tariff(ctx)
		if err != nil {
			return err
		}
		return writeJSON(e.stdout, t)
	}
	data, err := os.ReadFile(o.set)
	if err != nil {
		return fmt.Errorf("read tariff: %w", err)
	}
	if o.carbonCSV != "" {
		var t tariff.Tariff
		if err := json.Unmarshal(data, &t); err != nil {
			return fmt.Errorf("%s: %w", o.set, err)
		}
		profile, err := os.ReadFile(o.carbonCSV)
		if err != nil {
			return fmt.Errorf("read carbon profile: %w", err)
		}
		t.CarbonCSV = string(profile)
		if data, err = json.Marshal(t); err != nil {
			return err
		}
	}
	if _, err := tariff.Parse(data); err != nil {
		return fmt.Errorf("%s: %w", o.set, err)
	}
	t, err := c.SetTariff(ctx, json.RawMessage(data))
	if err != nil {
		return err
	}
	return writeJSON(e.stdout, t)
}
