package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
	"github.com/joulehq/joule/web/client"
)

// clock is a settable time for the server under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(s string) {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type liveServer struct {
	*httptest.Server
	srv   *Server
	db    *storage.DB
	dir   string
	clock *clock
	cl    *client.Client
	token string // an admin token, which do sends
}

// newTestServer runs a real Server on a real bbolt file, on loopback.
func newLiveServer(t *testing.T, dir string, start string) *liveServer {
	t.Helper()
	db, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ck := &clock{}
	ck.set(start)
	srv, err := New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), ck.now)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTelemetry(time.Second, DefaultRetention)
	tok, err := srv.EphemeralToken("tester", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	cl, _ := client.New(hs.URL)
	cl.Token = tok
	ts := &liveServer{Server: hs, srv: srv, db: db, dir: dir, clock: ck, cl: cl, token: tok}
	t.Cleanup(ts.close)
	return ts
}

func (ts *liveServer) close() {
	ts.Server.Close()
	ts.srv.Close()
	ts.db.Close()
}

func (ts *liveServer) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ts.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const twoRate = `{"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1.3,
 "windows": [{"name": "peak", "start": "0 8 * * 1-5", "end": "0 20 * * 1-5", "price_per_kwh": 0.20, "gco2_per_kwh": 420}]}`

func hbGPUs(node string, energyJ ...float64) []api.GPU {
	var out []api.GPU
	for i, e := range energyJ {
		out = append(out, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", node, i), Model: "H100", PowerW: 300 + float64(i), LimitW: 700, EnergyJ: e})
	}
	return out
}

func synthetic(name, user, project string) api.JobSpec {
	s := api.JobSpec{Name: name, User: user, Project: project, GPUs: 1,
		Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: 10 * time.Hour}, Utilization: 1}}}
	s.Default()
	return s
}

func TestTariffAPI(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 14:00")
	for _, tc := range []struct{ body, want string }{
		{`{"pue": 0.5}`, "tariff pue"},
		{`{"windows": [{"start": "CRON_TZ=UTC", "end": "0 8 * * *"}]}`, "windows[0].start"},
		{`{"price": 1}`, "unknown field"},
		{`{"carbon_price_per_tonne": -80}`, "carbon_price_per_tonne"},
		{`not json`, "not valid JSON"},
	} {
		code, body := ts.do(t, "PUT", "/api/v1/tariff", tc.body)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("PUT %s: %d %s; want 400 naming %q", tc.body, code, body, tc.want)
		}
	}
	if _, body := ts.do(t, "GET", "/api/v1/tariff", ""); !strings.Contains(body, `"pue": 1,`) {
		t.Errorf("a refused tariff changed the one in force: %s", body)
	}
	if code, body := ts.do(t, "PUT", "/api/v1/tariff", twoRate); code != 200 || !strings.Contains(body, `"name": "peak"`) {
		t.Fatalf("PUT the two-rate tariff: %d %s", code, body)
	}
	_, body := ts.do(t, "GET", "/api/v1/tariff/schedule?hours=24", "")
	var segs []SegmentView
	if err := json.Unmarshal([]byte(body), &segs); err != nil || len(segs) != 3 || segs[1].Name != "default rate" || segs[1].From.Hour() != 20 {
		t.Errorf("schedule from Thu 14:00 for 24 h: %s", body)
	}
	// A carbon price is shown on the tariff page, for the planner uses it.
	if _, page := ts.do(t, "GET", "/tariff", ""); !strings.Contains(page, "deferral plans by price alone") {
		t.Errorf("tariff page without a carbon price:\n%s", page)
	}
	carbon := strings.Replace(twoRate, `"pue"`, `"carbon_price_per_tonne": 80, "pue"`, 1)
	if code, body := ts.do(t, "PUT", "/api/v1/tariff", carbon); code != 200 || !strings.Contains(body, `"carbon_price_per_tonne": 80`) {
		t.Fatalf("PUT a tariff with a carbon price: %d %s", code, body)
	}
	if _, page := ts.do(t, "GET", "/tariff", ""); !strings.Contains(page, "deferral plans CO2 at 80 EUR/t") {
		t.Errorf("tariff page with a carbon price:\n%s", page)
	}
	// It survives a restart.
	dir := ts.dir
	ts.close()
	ts = newLiveServer(t, dir, "2026-11-26 14:00")
	if _, body := ts.do(t, "GET", "/api/v1/tariff", ""); !strings.Contains(body, `"pue": 1.3`) {
		t.Errorf("after a restart the tariff is %s", body)
	}
}

// Energy metered through heartbeats is priced by window and reported; each
// group's totals equal the sum of its jobs, over JSON and CSV, and after a
// restart.
func TestEnergyReportOverHTTP(t *testing.T) {
	ctx := context.Background()
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 19:00") // Thursday
	if code, body := ts.do(t, "PUT", "/api/v1/tariff", twoRate); code != 200 {
		t.Fatal(body)
	}
	if _, err := ts.cl.Register(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, s := range []api.JobSpec{synthetic("a", "alice", "p1"), synthetic("b", "bob", "p1"), synthetic("c", "alice", "p2")} {
		id, err := ts.cl.Submit(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		ids[s.Name] = id
	}
	running := func() []api.JobReport {
		var r []api.JobReport
		for _, id := range ids {
			r = append(r, api.JobReport{ID: id, State: api.StateRunning})
		}
		return r
	}
	// Each of the three GPUs draws 1 kWh per hour, 19:00 to 21:00 and on to
	// 01:00 the next day: an hour of peak, then off-peak, across midnight.
	for i, at := range []string{"2026-11-26 20:00", "2026-11-26 21:00", "2026-11-27 01:00"} {
		ts.clock.set(at)
		e := []float64{3.6e6, 7.2e6, 21.6e6}[i]
		if _, err := ts.cl.Heartbeat(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", e, e, e), Jobs: running()}); err != nil {
			t.Fatal(err)
		}
	}
	jobs, _ := ts.cl.Jobs(ctx)
	byUser := map[string]float64{}
	var totalCost float64
	for _, j := range jobs {
		// 1 kWh peak (0.20) + 5 kWh off-peak (0.10), times PUE 1.3 = 0.91.
		if math.Abs(j.Cost-0.91) > 1e-9 || math.Abs(j.EnergyJ-21.6e6) > 1e-3 {
			t.Errorf("job %s: %v J, cost %v; want 21.6 MJ, 0.91", j.ID, j.EnergyJ, j.Cost)
		}
		byUser[j.Spec.User] += j.Cost
		totalCost += j.Cost
	}
	check := func(ts *liveServer) {
		rep, err := ts.cl.EnergyReport(ctx, "2026-11-26", "2026-11-27", "user")
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rows) != 2 || math.Abs(rep.Total.Cost-totalCost) > 1e-9 || rep.Total.Jobs != 3 {
			t.Fatalf("report by user %+v; want alice and bob, total cost %v over 3 jobs", rep, totalCost)
		}
		for _, r := range rep.Rows {
			if math.Abs(r.Cost-byUser[r.Group]) > 1e-9 {
				t.Errorf("user %s costs %v in the report, %v as the sum of their jobs", r.Group, r.Cost, byUser[r.Group])
			}
		}
		days, _ := ts.cl.EnergyReport(ctx, "2026-11-26", "2026-11-27", "day")
		if len(days.Rows) != 2 || math.Abs(days.Rows[1].EnergyJ-3*3.6e6) > 1e-3 {
			t.Errorf("by day %+v; want 3 kWh on 2026-11-27 (00:00-01:00)", days.Rows)
		}
		data, err := ts.cl.EnergyReportCSV(ctx, "2026-11-26", "2026-11-27", "job")
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		if err != nil || len(recs) != 4 || recs[0][0] != "job" || recs[0][4] != "cost" {
			t.Fatalf("CSV by job: %q (%v)", data, err)
		}
		var sum float64
		for _, r := range recs[1:] {
			c, _ := strconv.ParseFloat(r[4], 64)
			sum += c
		}
		if math.Abs(sum-totalCost) > 1e-5 {
			t.Errorf("CSV costs add to %v, want %v", sum, totalCost)
		}
	}
	check(ts)
	dir := ts.dir
	ts.close()
	check(newLiveServer(t, dir, "2026-11-27 02:00"))
}

func TestReportQueryErrors(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 19:00")
	for q, want := range map[string]string{
		"group_by=team":                 "use job, user, project, node or day",
		"format=xml":                    "use json or csv",
		"from=yesterday":                "write YYYY-MM-DD",
		"from=2026-11-27&to=2026-11-01": "swap them",
		"from=1990-01-01&to=2026-01-01": "shorter range",
	} {
		code, body := ts.do(t, "GET", "/api/v1/reports/energy?"+q, "")
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("?%s: %d %s; want 400 with %q", q, code, body, want)
		}
	}
}

func TestDeferredOverHTTP(t *testing.T) {
	ctx := context.Background()
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 14:00")
	ts.do(t, "PUT", "/api/v1/tariff", twoRate)
	ts.cl.Register(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", 0, 0)})
	s := synthetic("night", "alice", "p1")
	s.Deferrable, s.Walltime = true, &api.Duration{Duration: 2 * time.Hour}
	id, err := ts.cl.Submit(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := ts.cl.Job(ctx, id)
	if j.State != api.StateDeferred || !strings.HasPrefix(j.Reason, "deferred until 20:00 UTC: default rate 0.10 EUR/kWh") {
		t.Fatalf("job %s: %s %q", id, j.State, j.Reason)
	}
	// At the window edge the cron's re-plan starts it.
	ts.clock.set("2026-11-26 20:00")
	ts.cl.Heartbeat(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", 0, 0)})
	ts.srv.replan()
	if j, _ := ts.cl.Job(ctx, id); j.State != api.StateRunning {
		t.Fatalf("at 20:00 the job is %s (%s)", j.State, j.Reason)
	}
}

func TestDailyReportAndSamples(t *testing.T) {
	ctx := context.Background()
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	ts.cl.Register(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", 0, 0)})
	id, _ := ts.cl.Submit(ctx, synthetic("a", "alice", "p1"))
	for i := 1; i <= 3; i++ {
		ts.clock.set(fmt.Sprintf("2026-11-26 10:%02d", i))
		ts.cl.Heartbeat(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", float64(i)*1e5, float64(i)*1e4), Jobs: []api.JobReport{{ID: id, State: api.StateRunning}}})
	}
	ts.clock.set("2026-11-27 00:05")
	n, err := ts.srv.MakeDailyReport(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	if err != nil || n != 2 {
		t.Fatalf("daily report: %d rows, %v; want 2 (the job, the idle GPU)", n, err)
	}
	_, list := ts.do(t, "GET", "/api/v1/reports/daily", "")
	if !strings.Contains(list, `"day": "2026-11-26"`) {
		t.Errorf("daily list %s", list)
	}
	code, body := ts.do(t, "GET", "/api/v1/reports/daily/2026-11-26", "")
	if code != 200 || !strings.Contains(body, "2026-11-26,"+id+",alice,p1,n1,") || !strings.Contains(body, "(idle)") {
		t.Errorf("daily CSV %d %q", code, body)
	}
	if code, _ := ts.do(t, "GET", "/api/v1/reports/daily/2026-11-01", ""); code != 404 {
		t.Errorf("a missing daily report: %d, want 404", code)
	}
	_, body = ts.do(t, "GET", "/api/v1/jobs/"+id+"/samples", "")
	var js []api.JobSample
	json.Unmarshal([]byte(body), &js)
	if len(js) != 3 || js[2].PowerW != 300 || js[2].EnergyJ != 3e5 {
		t.Errorf("job samples %s; want 3, the last at 300 W and 0.3 MJ", body)
	}
}

// Every page renders whole and as the live-refresh partial, in any order
// (a full page after a partial once failed: html/template will not clone a
// set that has run).
func TestPagesRender(t *testing.T) {
	ctx := context.Background()
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	ts.cl.Register(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", 0)})
	id, _ := ts.cl.Submit(ctx, synthetic("a", "alice", "p1"))
	for range 2 {
		for _, path := range []string{"/", "/queue", "/jobs/" + id, "/reports", "/tariff"} {
			for _, partial := range []bool{true, false} {
				req, _ := http.NewRequest("GET", ts.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+ts.token)
				if partial {
					req.Header.Set("X-Partial", "1")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				hasLayout := strings.Contains(string(body), `<main id="live"`)
				if resp.StatusCode != 200 || hasLayout == partial || !strings.Contains(string(body), "<h1>") {
					t.Errorf("GET %s (partial %v): %d, layout %v:\n%.300s", path, partial, resp.StatusCode, hasLayout, body)
				}
			}
		}
	}
	if code, _ := ts.do(t, "GET", "/jobs/j-99", ""); code != 404 {
		t.Errorf("an unknown job's page: %d, want 404", code)
	}
}

// RunSchedules makes yesterday's missing daily report at once, and stops
// with its context.
func TestRunSchedulesCatchesUpDailyReport(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-27 09:00")
	if err := ts.srv.RunSchedules(context.Background(), "CRON_TZ=UTC"); err == nil || !strings.Contains(err.Error(), "no schedule") {
		t.Errorf("a daily schedule without a schedule: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ts.srv.RunSchedules(ctx, "CRON_TZ=UTC 5 0 * * *") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, _ := ts.db.DailyReports()
		if len(list) == 1 && list[0].Day == "2026-11-26" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no daily report for 2026-11-26 was made: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunSchedules: %v", err)
	}
}
