package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
	"github.com/joulehq/joule/web"
	"github.com/joulehq/joule/web/client"
)

// realServer runs schedulerd's web.Server on a real bbolt file on loopback
// and returns its URL and an admin token.
func realServer(t *testing.T, at time.Time) (string, string) {
	return serverWithJobs(t, at, nil)
}

// serverWithJobs is realServer with jobs already in the bbolt file, as a
// restarted schedulerd finds them.
func serverWithJobs(t *testing.T, at time.Time, jobs []api.Job) (string, string) {
	t.Helper()
	db, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) > 0 {
		if err := db.Apply(storage.Batch{Jobs: jobs}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := web.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.EphemeralToken("tester", web.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close(); db.Close() })
	return hs.URL, tok
}

func TestTariffAndReportCommands(t *testing.T) {
	url, tok := realServer(t, now)
	env := map[string]string{"JOULE_SERVER": url, "JOULE_TOKEN": tok}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	good := write("t.json", `{"currency": "CHF", "price_per_kwh": 0.3, "pue": 1.5}`)
	bad := write("bad.json", `{"currency": "CHF", "pue": 9}`)
	profile := write("c.csv", "time,gco2_per_kwh\n2026-11-28T00:00:00Z,120\n2026-11-28T12:00:00Z,120\n")

	if r := runCLI(t, env, "", "tariff", "--set", bad); r.code != 1 || !strings.Contains(r.stderr, "bad.json: tariff pue: 9") {
		t.Errorf("a bad tariff: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "tariff"); !strings.Contains(r.stdout, `"currency": "EUR"`) {
		t.Errorf("a refused tariff changed the one in force:\n%s", r.stdout)
	}
	if r := runCLI(t, env, "", "tariff", "--carbon-csv", profile); r.code != 1 || !strings.Contains(r.stderr, "goes with --set") {
		t.Errorf("--carbon-csv alone: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "tariff", "--set", good, "--carbon-csv", profile); r.code != 0 || !strings.Contains(r.stdout, `"currency": "CHF"`) || !strings.Contains(r.stdout, "2026-11-28T00:00:00Z,120") {
		t.Errorf("set: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// One job's energy, metered over two heartbeats.
	c, _ := client.New(url)
	c.Token = tok
	ctx := context.Background()
	gpu := func(e float64) []api.GPU { return []api.GPU{{Index: 0, UUID: "GPU-0", Model: "H100", EnergyJ: e}} }
	c.Register(ctx, "n1", api.Heartbeat{GPUs: gpu(0)})
	s := api.JobSpec{Name: "a", User: "alice", GPUs: 1, Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: time.Hour}, Utilization: 1}}}
	s.Default()
	id, err := c.Submit(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	c.Heartbeat(ctx, "n1", api.Heartbeat{GPUs: gpu(3.6e6), Jobs: []api.JobReport{{ID: id, State: api.StateRunning}}})

	r := runCLI(t, env, "", "report", "--by", "user", "-o", "csv")
	// 1 kWh * PUE 1.5 * 0.3 CHF = 0.45 CHF; 1.5 kWh * 120 g = 0.18 kg.
	if r.code != 0 || !strings.Contains(r.stdout, "user,jobs,gpu_energy_kwh,facility_energy_kwh,cost,currency,co2_kg\nalice,1,1.000000,1.500000,0.450000,CHF,0.180000\n") {
		t.Errorf("report -o csv: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, env, "", "report", "--by", "user")
	if r.code != 0 || !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "0.4500 CHF") || !strings.Contains(r.stdout, "total") {
		t.Errorf("report table: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, env, "", "report", "--by", "team"); r.code != 1 || !strings.Contains(r.stderr, "use job, user, project, node or day") {
		t.Errorf("--by team: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "queue", "-o", "csv"); r.code != 2 || !strings.Contains(r.stderr, "use table or json") {
		t.Errorf("queue -o csv: %d %q; csv is report's alone", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "report", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Example:") {
		t.Errorf("report --help: %d %q", r.code, r.stdout)
	}
}
