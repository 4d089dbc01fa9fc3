package web

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// newTestServer serves a real bbolt file on loopback.
func newTestServer(t *testing.T, dir string) (*httptest.Server, *storage.DB) {
	t.Helper()
	db, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.EphemeralToken("admin", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	adminTokens.Store(ts, tok)
	t.Cleanup(func() { ts.Close(); s.Close(); db.Close() })
	return ts, db
}

// adminTokens holds each test server's admin token, which do sends.
var adminTokens sync.Map

func do(t *testing.T, ts *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if tok, ok := adminTokens.Load(ts); ok {
		req.Header.Set("Authorization", "Bearer "+tok.(string))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const synth = `{"name":"a","user":"bob","gpus":%d,"workload":{"synthetic":{"duration":"1m","utilization":0.5}}}`

func spec(gpus int) string { return strings.Replace(synth, "%d", string(rune('0'+gpus)), 1) }

func TestSubmitStoresBeforeReplying(t *testing.T) {
	dir := t.TempDir()
	ts, db := newTestServer(t, dir)
	code, body := do(t, ts, "POST", "/api/v1/jobs", spec(1))
	if code != http.StatusCreated || !strings.Contains(body, `"id": "j-1"`) {
		t.Fatalf("submit: %d %s", code, body)
	}
	jobs, err := db.Jobs()
	if err != nil || len(jobs) != 1 || jobs[0].State != api.StateQueued || jobs[0].Spec.Priority != 50 {
		t.Fatalf("stored: %+v %v", jobs, err)
	}
	code, body = do(t, ts, "GET", "/api/v1/jobs/j-1", "")
	if code != http.StatusOK || !strings.Contains(body, `"reason": "no node is up; waiting for an agent to register"`) {
		t.Fatalf("get: %d %s", code, body)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	ts, db := newTestServer(t, t.TempDir())
	// One node of 8 GPUs registers.
	hb := api.Heartbeat{GPUs: make([]api.GPU, 8)}
	for i := range hb.GPUs {
		hb.GPUs[i] = api.GPU{Index: i, UUID: "GPU-" + string(rune('a'+i))}
	}
	b, _ := json.Marshal(hb)
	if code, body := do(t, ts, "POST", "/api/v1/agents/node-a/register", string(b)); code != http.StatusOK {
		t.Fatalf("register: %d %s", code, body)
	}
	big := `{"name":"big","user":"bob","gpus":16,"workload":{"synthetic":{"duration":"1m","utilization":0.5}}}`
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"malformed", "POST", "/api/v1/jobs", `{"name":`, 400, "job spec:"},
		{"unknown field", "POST", "/api/v1/jobs", `{"name":"a","user":"b","gpu":1}`, 400, `unknown field \"gpu\"`},
		{"negative gpus", "POST", "/api/v1/jobs", strings.Replace(synth, "%d", "-1", 1), 400, "gpus: -1 is negative"},
		{"no node fits", "POST", "/api/v1/jobs", big, 400, "no node has 16 GPUs; the largest has 8 (node-a)"},
		{"too large", "POST", "/api/v1/jobs", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 400, "too large"},
		{"unknown job", "GET", "/api/v1/jobs/j-77", "", 404, "job j-77 not found"},
		{"cancel unknown", "POST", "/api/v1/jobs/j-77/cancel", "", 404, "job j-77 not found"},
		{"bad node name", "POST", "/api/v1/agents/bad%20name/heartbeat", `{}`, 400, "node:"},
		{"heartbeat unknown field", "POST", "/api/v1/agents/node-a/heartbeat", `{"gpus":[],"cpu":1}`, 400, `unknown field \"cpu\"`},
		{"no route", "GET", "/api/v2/things", "", 404, "no route for GET /api/v2/things"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, ts, tt.method, tt.path, tt.body)
			var e api.Error
			if code != tt.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(body, tt.want) {
				t.Fatalf("%s %s: %d %s; want %d with %q", tt.method, tt.path, code, body, tt.code, tt.want)
			}
		})
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Fatalf("refused requests stored %d jobs", len(jobs))
	}
}

func TestCancelTwiceConflicts(t *testing.T) {
	ts, _ := newTestServer(t, t.TempDir())
	do(t, ts, "POST", "/api/v1/jobs", spec(0))
	if code, body := do(t, ts, "POST", "/api/v1/jobs/j-1/cancel", ""); code != 200 || !strings.Contains(body, `"state": "cancelled"`) {
		t.Fatalf("cancel: %d %s", code, body)
	}
	if code, body := do(t, ts, "POST", "/api/v1/jobs/j-1/cancel", ""); code != http.StatusConflict || !strings.Contains(body, "already cancelled") {
		t.Fatalf("second cancel: %d %s", code, body)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ts, db := newTestServer(t, dir)
	do(t, ts, "POST", "/api/v1/jobs", spec(1))
	do(t, ts, "POST", "/api/v1/jobs", spec(2))
	do(t, ts, "POST", "/api/v1/jobs/j-1/cancel", "")
	ts.Close()
	db.Close()

	ts2, _ := newTestServer(t, dir)
	_, body := do(t, ts2, "GET", "/api/v1/jobs", "")
	var jobs []api.Job
	if err := json.Unmarshal([]byte(body), &jobs); err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].State != api.StateCancelled || jobs[1].State != api.StateQueued {
		t.Fatalf("after restart: %+v", jobs)
	}
	// New ids continue after the stored ones.
	_, body = do(t, ts2, "POST", "/api/v1/jobs", spec(1))
	if !bytes.Contains([]byte(body), []byte(`"j-3"`)) {
		t.Fatalf("next id: %s", body)
	}
}

func TestHealthz(t *testing.T) {
	ts, _ := newTestServer(t, t.TempDir())
	if code, body := do(t, ts, "GET", "/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
}
