package storage

import (
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// Usage rows add up per day and key across batches and across a reopen, and
// a range reads exactly its days.
func TestUsageAddsUpPerDay(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	u := func(day, job string, e float64) api.Usage {
		return api.Usage{Day: day, JobID: job, User: "alice", Node: "n1", EnergyJ: e, FacilityEnergyJ: 1.5 * e, Cost: e / 100, CO2G: e / 10}
	}
	batches := [][]api.Usage{
		{u("2026-11-25", "j-1", 10), u("2026-11-26", "j-1", 1)},
		{u("2026-11-26", "j-1", 2), u("2026-11-26", "", 5), u("2026-11-27", "j-2", 7)},
		{u("2026-11-26", "j-1", 3)},
	}
	for _, b := range batches {
		if err := db.Apply(Batch{Usage: b}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = openT(t, dir)
	defer db.Close()
	rows, err := db.Usage("2026-11-26", "2026-11-26")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range rows {
		got[r.Key()] = r.EnergyJ
	}
	want := map[string]float64{"2026-11-26/job/j-1": 6, "2026-11-26/idle/n1": 5}
	if len(got) != len(want) || got["2026-11-26/job/j-1"] != 6 || got["2026-11-26/idle/n1"] != 5 {
		t.Errorf("usage of 2026-11-26 = %v, want %v", got, want)
	}
	all, _ := db.Usage("2026-01-01", "2026-12-31")
	if len(all) != 4 {
		t.Errorf("the whole range has %d rows, want 4", len(all))
	}
	if err := db.Apply(Batch{Usage: []api.Usage{{Day: "yesterday", JobID: "j-1"}}, Jobs: []api.Job{job(9)}}); err == nil {
		t.Error("a usage row with a bad day was stored")
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Errorf("a failed batch stored %d jobs", len(jobs))
	}
}

func TestSamplesAndPrune(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := range 10 {
		ts := t0.Add(time.Duration(i) * time.Minute)
		b := Batch{
			NodeSamples: map[string]api.NodeSample{"n1": {T: ts, GPUs: []api.GPUSample{{Index: 0, PowerW: float64(100 + i)}}}},
			JobSamples:  map[string]api.JobSample{"j-1": {T: ts, PowerW: float64(i), EnergyJ: float64(60 * i)}},
		}
		if i >= 5 {
			b.JobSamples = nil
		}
		if err := db.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	ns, _ := db.NodeSamples("n1", t0.Add(3*time.Minute))
	if len(ns) != 7 || ns[0].GPUs[0].PowerW != 103 {
		t.Fatalf("node samples from 10:03: %d, first %+v; want 7 starting at 103 W", len(ns), ns)
	}
	n, err := db.PruneSamples(t0.Add(6 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 6+5 {
		t.Errorf("pruned %d samples, want 11 (6 node, 5 job)", n)
	}
	ns, _ = db.NodeSamples("n1", time.Time{})
	js, _ := db.JobSamples("j-1", time.Time{})
	if len(ns) != 4 || len(js) != 0 {
		t.Errorf("after pruning: %d node and %d job samples, want 4 and 0", len(ns), len(js))
	}
}

func TestTariffAndDailyReports(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	if v, _ := db.Tariff(); v != nil {
		t.Errorf("a new database has a tariff: %s", v)
	}
	if err := db.PutTariff([]byte(`{"currency":"EUR"}`)); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 28, 0, 5, 0, 0, time.UTC)
	for _, d := range []string{"2026-11-26", "2026-11-27"} {
		if err := db.PutDailyReport(d, created, 3, []byte("group\n"+d+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = openT(t, dir)
	defer db.Close()
	if v, _ := db.Tariff(); string(v) != `{"currency":"EUR"}` {
		t.Errorf("tariff after reopen %q", v)
	}
	list, _ := db.DailyReports()
	if len(list) != 2 || list[0].Day != "2026-11-27" || list[0].Rows != 3 || !list[0].CreatedAt.Equal(created) {
		t.Errorf("daily reports %+v; want two, newest first", list)
	}
	csv, ok, _ := db.DailyReport("2026-11-26")
	if !ok || string(csv) != "group\n2026-11-26\n" {
		t.Errorf("report 2026-11-26 = %q, %v", csv, ok)
	}
	if _, ok, _ := db.DailyReport("2026-11-01"); ok {
		t.Error("a report that was never made was found")
	}
}

func TestUsageEncoding(t *testing.T) {
	u := api.Usage{Day: "2026-11-28", JobID: "j-12", User: "alice", Project: "réseau", Node: "node-a", EnergyJ: 1.5, FacilityEnergyJ: 1.95, Cost: 1e-9, CO2G: 3}
	b := encodeUsage(u)
	got, err := decodeUsage(b)
	if err != nil || got != u {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, u)
	}
	for i := range len(b) { // every truncation is an error, never a panic
		if _, err := decodeUsage(b[:i]); err == nil {
			t.Errorf("decoding %d of %d bytes succeeded", i, len(b))
		}
	}
}

// Rows written as JSON (by development builds) still read.
func TestUsageJSONRowsStillRead(t *testing.T) {
	u, err := decodeUsage([]byte(`{"day":"2026-11-28","node":"n1","energy_j":5,"cost":0.1}`))
	if err != nil || u.Node != "n1" || u.EnergyJ != 5 || u.Cost != 0.1 {
		t.Errorf("JSON row: %+v, %v", u, err)
	}
}
