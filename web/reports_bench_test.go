package web

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

// BenchmarkEnergyReport reads reports over 1, 30 and 365 days from a bbolt
// file holding a year of per-day usage: 200 jobs a day on 8 nodes (each job
// a row per day; each node an idle row). scripts/bench-reports.sh prints the
// medians and the year/day ratio.
func BenchmarkEnergyReport(b *testing.B) {
	db, err := storage.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const jobsPerDay, nodes = 200, 8
	for d := range 365 {
		day := day0.AddDate(0, 0, d).Format(time.DateOnly)
		var rows []api.Usage
		for j := range jobsPerDay {
			rows = append(rows, api.Usage{Day: day, JobID: fmt.Sprintf("j-%d", d*jobsPerDay+j), User: fmt.Sprintf("u%d", j%37),
				Project: fmt.Sprintf("p%d", j%11), Node: fmt.Sprintf("n%d", j%nodes), EnergyJ: 3.6e6, FacilityEnergyJ: 4.68e6, Cost: 0.5, CO2G: 1400})
		}
		for n := range nodes {
			rows = append(rows, api.Usage{Day: day, Node: fmt.Sprintf("n%d", n), EnergyJ: 1e6, FacilityEnergyJ: 1.3e6, Cost: 0.1, CO2G: 300})
		}
		if err := db.Apply(storage.Batch{Usage: rows}); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return day0.AddDate(1, 0, 0) })
	if err != nil {
		b.Fatal(err)
	}
	for _, days := range []int{1, 30, 365} {
		for _, by := range []string{"user", "job"} {
			b.Run(fmt.Sprintf("days=%d/by=%s", days, by), func(b *testing.B) {
				rq := reportQuery{from: day0.Format(time.DateOnly), to: day0.AddDate(0, 0, days-1).Format(time.DateOnly), groupBy: by}
				for b.Loop() {
					rep, err := srv.EnergyReport(rq)
					if err != nil {
						b.Fatal(err)
					}
					if want := days * jobsPerDay; rep.Total.Jobs != want {
						b.Fatalf("%d jobs in the report, want %d", rep.Total.Jobs, want)
					}
				}
			})
		}
	}
}
