package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

type fixture struct {
	t     *testing.T
	dir   string
	db    *storage.DB
	srv   *Server
	ts    *httptest.Server
	admin string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.open()
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	db, err := storage.Open(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := EnsureAdminToken(db, func(s string) error { f.admin = s; return nil }); err != nil {
		f.t.Fatal(err)
	}
	srv, err := New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.db, f.srv = db, srv
	f.ts = httptest.NewServer(srv.Handler())
	f.t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.ts == nil {
		return
	}
	f.ts.Close()
	f.srv.Close()
	f.db.Close()
	f.ts = nil
}

// do sends a request with token (none if "") and returns the status and body.
func (f *fixture) do(method, path, token string, body any) (int, string) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, f.ts.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e api.Error
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return resp.StatusCode, e.Error // unescaped, for the messages
	}
	return resp.StatusCode, string(data)
}

func (f *fixture) token(name, role string) string {
	f.t.Helper()
	status, body := f.do("POST", "/api/v1/tokens", f.admin, TokenRequest{Name: name, Role: role})
	var r TokenReply
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &r) != nil || r.Token == "" {
		f.t.Fatalf("create token %s/%s: %d %s", name, role, status, body)
	}
	return r.Token
}

const synthSpec = `{"name":"burn","gpus":1,"workload":{"synthetic":{"duration":"1m","utilization":0.5}}}`

func TestAccess(t *testing.T) {
	f := newFixture(t)
	alice, bob, agent := f.token("alice", RoleUser), f.token("bob", RoleUser), f.token("node-a", RoleAgent)

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		want                      string
	}{
		{"healthz is open", "GET", "/healthz", "", nil, 200, "ok"},
		{"no token", "GET", "/api/v1/jobs", "", nil, 401, "missing token"},
		{"wrong scheme", "GET", "/api/v1/jobs", "", nil, 401, "Authorization: Bearer"},
		{"unknown token", "GET", "/api/v1/jobs", "jt_nope", nil, 401, "invalid or revoked token"},
		{"metrics need a token", "GET", "/metrics", "", nil, 401, "missing token"},
		{"user submits as itself", "POST", "/api/v1/jobs", alice, synthSpec, 201, `"id"`},
		{"user cannot submit as another", "POST", "/api/v1/jobs", alice,
			strings.Replace(synthSpec, `"gpus"`, `"user":"bob","gpus"`, 1), 403, `token "alice" may submit only as user "alice", not "bob"`},
		{"agent cannot submit", "POST", "/api/v1/jobs", agent, synthSpec, 403, "needs role admin or user"},
		{"agent cannot read jobs", "GET", "/api/v1/jobs", agent, nil, 403, "has role agent"},
		{"user cannot make tokens", "POST", "/api/v1/tokens", alice, TokenRequest{Name: "eve", Role: RoleAdmin}, 403, "needs role admin"},
		{"bob cannot cancel alice's job", "POST", "/api/v1/jobs/j-1/cancel", bob, nil, 403, `job j-1 belongs to user "alice"`},
		{"agent heartbeats for itself", "POST", "/api/v1/agents/node-a/heartbeat", agent, api.Heartbeat{}, 200, `"run"`},
		{"agent cannot heartbeat for another node", "POST", "/api/v1/agents/node-b/heartbeat", agent, api.Heartbeat{}, 403, `may heartbeat only for node "node-a"`},
		{"alice cancels her job", "POST", "/api/v1/jobs/j-1/cancel", alice, nil, 200, `"cancelled"`},
		{"bad token role", "POST", "/api/v1/tokens", f.admin, TokenRequest{Name: "x", Role: "root"}, 400, `role: "root": use admin, user or agent`},
		{"last admin cannot be revoked", "DELETE", "/api/v1/tokens/admin", f.admin, nil, 409, "only admin token"},
		{"user reads metrics", "GET", "/metrics", alice, nil, 200, "joule_jobs"},
	}
	for _, tt := range tests {
		status, body := f.do(tt.method, tt.path, tt.token, tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s; want %d containing %q", tt.name, status, body, tt.status, tt.want)
		}
	}
	// Revoked tokens stop working at once, and stay revoked after a restart.
	if status, body := f.do("DELETE", "/api/v1/tokens/bob", f.admin, nil); status != 200 {
		t.Fatalf("revoke bob: %d %s", status, body)
	}
	if status, _ := f.do("GET", "/api/v1/jobs", bob, nil); status != 401 {
		t.Errorf("revoked token: %d, want 401", status)
	}
	f.close()
	f.open()
	if status, _ := f.do("GET", "/api/v1/jobs", bob, nil); status != 401 {
		t.Errorf("revoked token after restart: %d, want 401", status)
	}
	if status, body := f.do("GET", "/api/v1/jobs", alice, nil); status != 200 {
		t.Errorf("alice after restart: %d %s, want 200", status, body)
	}
	// Tokens are stored hashed: the secret is nowhere in the file.
	list, _ := f.db.Tokens()
	for _, tok := range list {
		if tok.Name == "alice" && (tok.HashHex == alice || strings.Contains(tok.HashHex, alice[3:])) {
			t.Errorf("alice's token is stored in clear")
		}
	}
}

func TestBadInputIsRefusedClearlyAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	big := `{"name":"x","user":"admin","gpus":1,"workload":{"synthetic":{"duration":"1m","utilization":0.5}},"project":"` + strings.Repeat("a", 2<<20) + `"}`
	tests := []struct {
		name, path string
		body       string
		want       string
	}{
		{"over 1 MiB", "/api/v1/jobs", big, "request body too large: over 1024 KiB"},
		{"unknown field", "/api/v1/jobs", `{"name":"x","gpu":1}`, `unknown field "gpu"`},
		{"two documents", "/api/v1/jobs", synthSpec + synthSpec, "one job at a time"},
		{"not JSON", "/api/v1/jobs", `name: x`, "job spec: invalid character"},
		{"heartbeat unknown field", "/api/v1/agents/n1/heartbeat", `{"gpus":[],"jobz":[]}`, `heartbeat: unknown field "jobz"`},
		{"heartbeat duplicate GPU", "/api/v1/agents/n1/heartbeat", `{"gpus":[{"index":0,"uuid":"a"},{"index":0,"uuid":"b"}]}`, "gpus[1].index: 0 appears twice"},
		{"heartbeat negative power", "/api/v1/agents/n1/heartbeat", `{"gpus":[{"index":0,"uuid":"a","power_w":-5}]}`, "gpus[0].power_w: -5"},
		{"heartbeat bad state", "/api/v1/agents/n1/heartbeat", `{"gpus":[],"jobs":[{"id":"j-1","state":"exploded"}]}`, `jobs[0].state: "exploded"`},
		{"heartbeat over 1 MiB", "/api/v1/agents/n1/heartbeat", `{"gpus":[],"jobs":[{"id":"` + strings.Repeat("j", 2<<20) + `"}]}`, "too large: over 1024 KiB"},
	}
	for _, tt := range tests {
		status, body := f.do("POST", tt.path, f.admin, tt.body)
		if status != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %.300s; want 400 containing %q", tt.name, status, body, tt.want)
		}
	}
	jobs, _ := f.db.Jobs()
	nodes, _ := f.db.Nodes()
	if len(jobs) != 0 || len(nodes) != 0 {
		t.Errorf("bad input stored %d jobs and %d nodes", len(jobs), len(nodes))
	}
}

// Many concurrent submissions share synced writes, and every acknowledged id
// is on disk exactly once.
func TestGroupCommitStoresEveryAcknowledgedSubmission(t *testing.T) {
	f := newFixture(t)
	const n = 400
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			status, body := f.do("POST", "/api/v1/jobs", f.admin, synthSpec)
			var r api.SubmitReply
			if status != 201 || json.Unmarshal([]byte(body), &r) != nil {
				t.Errorf("submit: %d %s", status, body)
				return
			}
			ids <- r.ID
		})
	}
	wg.Wait()
	close(ids)
	commits := f.srv.metrics.commits.Load()
	f.close()
	db, err := storage.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	jobs, _ := db.Jobs()
	stored := map[string]int{}
	for _, j := range jobs {
		stored[j.ID]++
	}
	acked := 0
	for id := range ids {
		acked++
		if stored[id] != 1 {
			t.Errorf("acknowledged %s is stored %d times", id, stored[id])
		}
	}
	if acked != n || len(jobs) != n {
		t.Errorf("%d acknowledged, %d stored; want %d each", acked, len(jobs), n)
	}
	// 400 concurrent requests need fewer writes than requests (batches).
	if commits >= n {
		t.Errorf("%d synced writes for %d submissions: no group commit", commits, n)
	}
	t.Logf("%d submissions in %d synced writes", n, commits)
}

func TestMetricsExposeGPUPowerAndEnergyByUser(t *testing.T) {
	f := newFixture(t)
	agent := f.token("node-a", RoleAgent)
	hb := api.Heartbeat{GPUs: []api.GPU{
		{Index: 0, UUID: "GPU-0", PowerW: 312.5, LimitW: 700, Utilization: 0.9, EnergyJ: 1000},
		{Index: 1, UUID: "GPU-1", PowerW: 80, LimitW: 700, EnergyJ: 500},
	}}
	if status, body := f.do("POST", "/api/v1/agents/node-a/register", agent, hb); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	if status, body := f.do("POST", "/api/v1/jobs", f.admin, strings.Replace(synthSpec, `"gpus"`, `"user":"carol","project":"vision","gpus"`, 1)); status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	// The next heartbeat places the job on GPU 0 (best fit, first index);
	// the one after brings 250 J more on GPU 0, which go to the job.
	if status, body := f.do("POST", "/api/v1/agents/node-a/heartbeat", agent, hb); status != 200 || !strings.Contains(body, `"j-1"`) {
		t.Fatalf("heartbeat: %d %s; want j-1 placed on node-a", status, body)
	}
	hb.GPUs[0].EnergyJ += 250
	hb.Jobs = []api.JobReport{{ID: "j-1", State: api.StateRunning}}
	if status, body := f.do("POST", "/api/v1/agents/node-a/heartbeat", agent, hb); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, body)
	}
	status, body := f.do("GET", "/metrics", f.admin, nil)
	if status != 200 {
		t.Fatalf("/metrics: %d %s", status, body)
	}
	if strings.Contains(body, "joule_power_budget_watts ") {
		t.Errorf("/metrics shows a budget while none is set")
	}
	if status, b := f.do("PUT", "/api/v1/power/budget", f.admin, `{"default_w": 5000}`); status != 200 {
		t.Fatalf("set budget: %d %s", status, b)
	}
	if _, b := f.do("GET", "/metrics", f.admin, nil); !strings.Contains(b, "joule_power_budget_watts 5000") {
		t.Errorf("/metrics lacks joule_power_budget_watts 5000 after setting the budget")
	}
	for _, want := range []string{
		`joule_gpu_power_watts{gpu="0",node="node-a"} 312.5`,
		`joule_gpu_power_watts{gpu="1",node="node-a"} 80`,
		`joule_gpu_power_limit_watts{gpu="0",node="node-a"} 700`,
		`joule_gpu_utilization_ratio{gpu="0",node="node-a"} 0.9`,
		`joule_gpu_energy_joules_total{gpu="0",node="node-a"} 1250`,
		`joule_cluster_power_watts 392.5`,
		`joule_jobs{state="running"} 1`,
		`joule_nodes{state="up"} 1`,
		`joule_user_energy_joules_total{user="carol"} 250`,
		`joule_project_energy_joules_total{project="vision"} 250`,
		`joule_schedule_duration_seconds_bucket{event="heartbeat"`,
		`joule_lock_wait_seconds_count{event="heartbeat"} `,
		`joule_heartbeat_duration_seconds_count `,
		`joule_power_allocated_watts `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// A failed write fails every request in its batch (and those queued after)
// and rebuilds the core from disk: nothing unacknowledged stays in memory.
func TestFailedWriteReloadsFromDisk(t *testing.T) {
	f := newFixture(t)
	if status, body := f.do("POST", "/api/v1/jobs", f.admin, synthSpec); status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var mu sync.Mutex
	failing := true
	f.srv.save = func(b storage.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errors.New("disk full")
		}
		return f.db.Apply(b)
	}
	status, body := f.do("POST", "/api/v1/jobs", f.admin, synthSpec)
	if status != 500 || !strings.Contains(body, "store: disk full") {
		t.Fatalf("submit during a failing write: %d %s; want 500 naming the store error", status, body)
	}
	if status, body := f.do("GET", "/api/v1/jobs/j-2", f.admin, nil); status != 404 {
		t.Errorf("the unstored job is still in memory: %d %s", status, body)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	status, body = f.do("POST", "/api/v1/jobs", f.admin, synthSpec)
	if status != 201 || !strings.Contains(body, `"j-2"`) {
		t.Fatalf("submit after the disk recovered: %d %s; want 201 j-2", status, body)
	}
	jobs, _ := f.db.Jobs()
	if len(jobs) != 2 {
		t.Errorf("stored %d jobs; want 2", len(jobs))
	}
}

// Submissions are applied in groups (submitgroup.go); one the core refuses
// fails alone and the rest of its group is stored.
func TestSubmissionGroupRefusesOnlyTheBadJob(t *testing.T) {
	f := newFixture(t)
	hb := api.Heartbeat{GPUs: []api.GPU{{Index: 0, UUID: "GPU-0"}, {Index: 1, UUID: "GPU-1"}}}
	if status, body := f.do("POST", "/api/v1/agents/node-a/register", f.token("node-a", RoleAgent), hb); status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	tooBig := strings.Replace(synthSpec, `"gpus":1`, `"gpus":4`, 1)
	if tooBig == synthSpec {
		t.Fatal("synthSpec no longer asks for 1 GPU")
	}
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range n {
		wg.Go(func() {
			body := synthSpec
			if i%4 == 0 {
				body = tooBig
			}
			status, reply := f.do("POST", "/api/v1/jobs", f.admin, body)
			if i%4 == 0 && (status != 400 || !strings.Contains(reply, "no node has 4 GPUs")) {
				t.Errorf("too big: %d %s", status, reply)
			}
			mu.Lock()
			codes[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[201] != n*3/4 || codes[400] != n/4 {
		t.Errorf("replies by status %v; want %d created and %d refused", codes, n*3/4, n/4)
	}
	f.close()
	db, err := storage.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if jobs, _ := db.Jobs(); len(jobs) != n*3/4 {
		t.Errorf("%d jobs stored; want the %d accepted", len(jobs), n*3/4)
	}
}

// Every GPU of a cluster past the OTel SDK's default cardinality limit (2000
// series per instrument) has its own series; none is folded into overflow.
func TestMetricsExposeEveryGPUOfABigCluster(t *testing.T) {
	f := newFixture(t)
	const nodes = 300 // 2,400 GPUs
	f.srv.mu.Lock()
	for n := range nodes {
		name := fmt.Sprintf("node-%03d", n)
		hb := api.Heartbeat{}
		for i := range 8 {
			hb.GPUs = append(hb.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", name, i), PowerW: float64(100 + i), LimitW: 700})
		}
		f.srv.core.Heartbeat(name, hb, time.Now())
	}
	f.srv.mu.Unlock()
	status, body := f.do("GET", "/metrics", f.admin, nil)
	if status != 200 {
		t.Fatalf("metrics: %d %.300s", status, body)
	}
	if strings.Contains(body, "otel_metric_overflow") {
		t.Errorf("some series were folded into otel_metric_overflow")
	}
	if n := strings.Count(body, "\njoule_gpu_power_watts{"); n != nodes*8 {
		t.Errorf("%d GPU power series, want %d", n, nodes*8)
	}
	if want := `joule_gpu_power_watts{gpu="7",node="node-299"} 107`; !strings.Contains(body, want) {
		t.Errorf("no %s", want)
	}
}
