package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
)

func h100Heartbeat() string {
	hb := api.Heartbeat{GPUs: make([]api.GPU, 8)}
	for i := range hb.GPUs {
		hb.GPUs[i] = api.GPU{Index: i, UUID: "GPU-" + string(rune('a'+i)), Model: "NVIDIA H100 80GB HBM3",
			MinLimitW: 200, MaxLimitW: 700, LimitW: 700, PowerW: 72}
	}
	b, _ := json.Marshal(hb)
	return string(b)
}

func TestPowerBudgetAPI(t *testing.T) {
	dir := t.TempDir()
	ts, db := newTestServer(t, dir)
	if code, body := do(t, ts, "POST", "/api/v1/agents/node-a/register", h100Heartbeat()); code != http.StatusOK {
		t.Fatalf("register: %d %s", code, body)
	}
	for _, c := range []struct{ body, says string }{
		{`{"default_w": 1000}`, "below the GPUs' minimum possible draw of 1600 W"},
		{`{"default_w": 4000, "windows": [{"start": "CRON_TZ=UTC", "end": "0 20 * * *", "watts": 3000}]}`, "windows[0].start"},
		{`{"default_w": 4000, "windows": [{"start": "0 8 * * *", "end": "0 20 * * *", "watts": 1000}]}`, "windows[0].watts"},
		{`{"default_w": 4000, "node_max": 2000}`, `unknown field \"node_max\"`},
		{`{"default_w": "lots"}`, "default_w"},
	} {
		code, body := do(t, ts, "PUT", "/api/v1/power/budget", c.body)
		if code != http.StatusBadRequest || !strings.Contains(body, c.says) {
			t.Errorf("PUT %s: %d %s, want 400 saying %q", c.body, code, body, c.says)
		}
	}
	if _, ok, _ := db.PowerBudget(); ok {
		t.Fatal("a refused budget was stored")
	}
	code, body := do(t, ts, "PUT", "/api/v1/power/budget",
		`{"default_w": 3000, "node_max_w": 2500, "windows": [{"start": "0 0 * * *", "end": "0 6 * * *", "watts": 5000}]}`)
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	var st api.PowerBudgetStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	// t0 is 12:00 UTC: outside the night window.
	if st.WattsNow != 3000 || st.Window != -1 || st.MinDrawW != 1600 || st.MeasuredW != 8*72 {
		t.Errorf("status %+v", st)
	}
	// Stored, synced: a new server on the same file has it.
	if b, ok, err := db.PowerBudget(); !ok || err != nil || b.NodeMaxW != 2500 {
		t.Fatalf("stored %+v %v %v", b, ok, err)
	}
	// The dashboard's budget page shows it.
	if code, page := do(t, ts, "GET", "/tariff", ""); code != http.StatusOK ||
		!strings.Contains(page, "Budget in force: <b>3000 W</b>, at most 2500 W per node") ||
		!strings.Contains(page, "<td>window 1</td><td><code>0 0 * * *</code></td><td><code>0 6 * * *</code></td><td>5000</td>") {
		t.Errorf("GET /tariff: %d, want the budget, its node cap and its window:\n%s", code, page)
	}
	// A job runs; the heartbeat reply gives its GPU a limit and the idle
	// ones their minimum.
	if code, body := do(t, ts, "POST", "/api/v1/jobs", spec(1)); code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	code, body = do(t, ts, "POST", "/api/v1/agents/node-a/heartbeat", h100Heartbeat())
	var reply api.HeartbeatReply
	if err := json.Unmarshal([]byte(body), &reply); code != http.StatusOK || err != nil {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	if len(reply.Run) != 1 || len(reply.LimitsW) != 8 {
		t.Fatalf("reply %+v", reply)
	}
	for i, l := range reply.LimitsW {
		if l < 200 || l > 700 || (i != reply.Run[0].GPUIndices[0] && l != 200) {
			t.Errorf("GPU %d limit %v", i, l)
		}
	}
}

func TestPowerBudgetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ts, db := newTestServer(t, dir)
	if code, body := do(t, ts, "PUT", "/api/v1/power/budget", `{"default_w": 250000}`); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	ts.Close()
	db.Close()
	ts2, _ := newTestServer(t, dir)
	code, body := do(t, ts2, "GET", "/api/v1/power/budget", "")
	if code != http.StatusOK || !strings.Contains(body, `"watts_now": 250000`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
}
