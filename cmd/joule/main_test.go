package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time {
	t := now.Add(-d)
	return &t
}

// result is what one run of the CLI did.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &env{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return vars[k] },
		now:    func() time.Time { return now },
	})
	return result{code, out.String(), errb.String()}
}

// fakeServer answers the API from fixed data and records the requests.
type fakeServer struct {
	*httptest.Server
	jobs     []api.Job
	nodes    []api.Node
	requests []string // "METHOD path"
	bodies   []string
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{
		jobs: []api.Job{
			{ID: "j-1", Spec: api.JobSpec{Name: "old", User: "bob", Project: "default", GPUs: 1}, State: api.StateSucceeded,
				SubmittedAt: *ago(5 * time.Hour), FinishedAt: ago(3 * time.Hour), EnergyJ: 2.5e6},
			{ID: "j-2", Spec: api.JobSpec{Name: "iris", User: "alice", Project: "default", GPUs: 1}, State: api.StateRunning,
				Node: "node-a", GPUIndices: []int{0}, SubmittedAt: *ago(10 * time.Minute), StartedAt: ago(9 * time.Minute), EnergyJ: 41300},
		},
		nodes: []api.Node{{Name: "node-a", State: api.NodeUp, LastHeartbeat: *ago(2 * time.Second),
			GPUs: []api.GPU{{Index: 0, Model: "H100", Utilization: 0.97, PowerW: 612, LimitW: 700, EnergyJ: 81.4e6,
				TemperatureC: 71, MemoryUsedMiB: 61.2 * 1024, MemoryTotalMiB: 80 * 1024}}}},
	}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		if _, err := api.DecodeJobSpec(r.Body); err != nil {
			reply(w, 400, api.Error{Error: err.Error()})
			return
		}
		reply(w, 201, api.SubmitReply{ID: "j-3"})
	})
	mux.HandleFunc("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, f.jobs) })
	mux.HandleFunc("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, j := range f.jobs {
			if j.ID == r.PathValue("id") {
				reply(w, 200, j)
				return
			}
		}
		reply(w, 404, api.Error{Error: "job " + r.PathValue("id") + " not found"})
	})
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		j := f.jobs[1]
		j.State, j.Reason = api.StateCancelled, "cancelled by user"
		reply(w, 200, j)
	})
	mux.HandleFunc("GET /api/v1/nodes", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, f.nodes) })
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		f.bodies = append(f.bodies, string(b))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

const goodSpec = `name: iris
user: alice
gpus: 1
workload:
  synthetic: {duration: 1m, utilization: 0.5}
`

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSubmit(t *testing.T) {
	f := newFakeServer(t)
	file := writeFile(t, "iris.yaml", goodSpec)
	r := runCLI(t, nil, "", "--server", f.URL, "submit", file)
	if r.code != 0 || r.stdout != "j-3\n" || r.stderr != "" {
		t.Fatalf("submit: %+v; want j-3 alone on stdout", r)
	}
	if want := []string{"POST /api/v1/jobs"}; !reflect.DeepEqual(f.requests, want) {
		t.Errorf("requests %v, want %v", f.requests, want)
	}
	// The spec is sent with its defaults filled in.
	var sent api.JobSpec
	if err := json.Unmarshal([]byte(f.bodies[0]), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Name != "iris" || sent.Project != "default" || sent.Priority != 50 || sent.EnergyPolicy != api.PolicyBalanced {
		t.Errorf("sent spec %+v", sent)
	}

	// From standard input, with the server from the environment.
	r = runCLI(t, map[string]string{"JOULE_SERVER": f.URL}, goodSpec, "submit", "-")
	if r.code != 0 || r.stdout != "j-3\n" {
		t.Errorf("submit -: %+v", r)
	}
}

func TestSubmitBadFileSendsNothing(t *testing.T) {
	f := newFakeServer(t)
	bad := writeFile(t, "bad.yaml", strings.Replace(goodSpec, "gpus: 1", "gpus: -1", 1))
	tests := []struct {
		file, want string
	}{
		{bad, bad + ": gpus: -1 is negative; ask for 0 or more GPUs"},
		{writeFile(t, "typo.yaml", goodSpec+"gpu: 2\n"), `typo.yaml: job spec: unknown field "gpu"`},
		{filepath.Join(t.TempDir(), "missing.yaml"), "read job spec: open "},
	}
	for _, tt := range tests {
		r := runCLI(t, nil, "", "submit", tt.file, "--server", f.URL)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "joule: ") {
			t.Errorf("submit %s: %+v; want exit 1 and %q", tt.file, r, tt.want)
		}
	}
	if len(f.requests) != 0 {
		t.Errorf("a bad file made requests: %v", f.requests)
	}
}

func TestStatus(t *testing.T) {
	f := newFakeServer(t)
	r := runCLI(t, nil, "", "status", "j-2", "--server="+f.URL)
	for _, want := range []string{"ID:", "j-2", "State:", "running", "Node:", "node-a (GPUs 0)", "Energy:", "41.3 kJ"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t, nil, "", "status", "-o", "json", "j-2", "--server="+f.URL)
	var j api.Job
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.ID != "j-2" {
		t.Errorf("status -o json: %v %+v", err, r)
	}
	r = runCLI(t, nil, "", "status", "j-9", "--server="+f.URL)
	if r.code != 1 || r.stderr != "joule: job j-9 not found\n" || r.stdout != "" {
		t.Errorf("status of an unknown job: %+v", r)
	}
}

func TestCancel(t *testing.T) {
	f := newFakeServer(t)
	r := runCLI(t, nil, "", "cancel", "j-2", "--server", f.URL)
	if r.code != 0 || r.stdout != "j-2 cancelled (cancelled by user)\n" {
		t.Errorf("cancel: %+v", r)
	}
	if want := []string{"POST /api/v1/jobs/j-2/cancel"}; !reflect.DeepEqual(f.requests, want) {
		t.Errorf("requests %v, want %v", f.requests, want)
	}
}

func TestNodesCommand(t *testing.T) {
	f := newFakeServer(t)
	r := runCLI(t, nil, "", "nodes", "--server", f.URL)
	if r.code != 0 || !strings.Contains(r.stdout, "node-a  up     0    H100   97%   612 W  700 W  81.4 MJ  71°C  61.2/80.0 GiB  2s ago") {
		t.Errorf("nodes:\n%s", r.stdout)
	}
	r = runCLI(t, nil, "", "nodes", "-o", "json", "--server", f.URL)
	var nodes []api.Node
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil || len(nodes) != 1 {
		t.Errorf("nodes -o json: %v %+v", err, r)
	}
}

func TestServerUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	r := runCLI(t, map[string]string{"JOULE_SERVER": addr}, "", "queue")
	want := "joule: cannot reach schedulerd at " + addr + ": is it running? (set --server or JOULE_SERVER)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("queue with nothing listening: %+v\nwant stderr %q", r, want)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdout     string // substring; "" means empty
		stderr     string // substring; "" means empty
		noRequests bool
	}{
		{args: nil, code: 2, stderr: "Usage:\n  joule [--server URL] COMMAND"},
		{args: []string{"--help"}, code: 0, stdout: "Commands:\n  submit"},
		{args: []string{"-h"}, code: 0, stdout: "Commands:"},
		{args: []string{"help"}, code: 0, stdout: "Commands:"},
		{args: []string{"help", "queue"}, code: 0, stdout: "Usage: joule queue [flags]\n"},
		{args: []string{"bogus"}, code: 2, stderr: "joule: unknown command \"bogus\"\n\njoule talks to"},
		{args: []string{"--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"submit", "--help"}, code: 0, stdout: "Usage: joule submit [flags] FILE\n"},
		{args: []string{"queue", "-h"}, code: 0, stdout: "--all lists every job"},
		{args: []string{"status", "--help"}, code: 0, stdout: "Example:\n  $ joule status j-7"},
		{args: []string{"cancel", "--help"}, code: 0, stdout: "Example:\n  $ joule cancel j-7"},
		{args: []string{"nodes", "--help"}, code: 0, stdout: "Example:\n  $ joule nodes"},
		{args: []string{"status"}, code: 2, stderr: "joule status: missing ID\nUsage: joule status [flags] ID\n"},
		{args: []string{"status", "j-1", "j-2"}, code: 2, stderr: "unexpected argument(s): j-2"},
		{args: []string{"queue", "extra"}, code: 2, stderr: "unexpected argument(s): extra"},
		{args: []string{"queue", "-o", "yaml"}, code: 2, stderr: `-o "yaml": use table or json`},
		{args: []string{"submit"}, code: 2, stderr: "missing FILE"},
		{args: []string{"cancel", "-o", "json", "j-1"}, code: 2, stderr: "flag provided but not defined: -o"},
		{args: []string{"--server", "foo", "queue"}, code: 2, stderr: `joule: server "foo" is not a URL; use e.g. http://127.0.0.1:7070`},
		{args: []string{"queue", "--server", "localhost:7070"}, code: 2, stderr: `server "localhost:7070" is not a URL`},
	}
	for _, tt := range tests {
		r := runCLI(t, nil, "", tt.args...)
		if r.code != tt.code {
			t.Errorf("joule %q: exit %d, want %d (%+v)", tt.args, r.code, tt.code, r)
		}
		check := func(name, got, want string) {
			if want == "" && got != "" || !strings.Contains(got, want) {
				t.Errorf("joule %q: %s\n%s\nwant it to contain %q", tt.args, name, got, want)
			}
		}
		check("stdout", r.stdout, tt.stdout)
		check("stderr", r.stderr, tt.stderr)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		out  string
		all  bool
	}{
		{[]string{"j-1"}, []string{"j-1"}, "table", false},
		{[]string{"-o", "json", "j-1"}, []string{"j-1"}, "json", false},
		{[]string{"j-1", "-o", "json"}, []string{"j-1"}, "json", false},
		{[]string{"j-1", "--all", "j-2", "-o=json"}, []string{"j-1", "j-2"}, "json", true},
		{[]string{"--", "-o", "json"}, []string{"-o", "json"}, "table", false},
		{[]string{"a", "--", "--all"}, []string{"a", "--all"}, "table", false},
		{[]string{"-"}, []string{"-"}, "table", false},
		{nil, nil, "table", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		out := fs.String("o", "table", "")
		all := fs.Bool("all", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(pos, tt.pos) || *out != tt.out || *all != tt.all {
			t.Errorf("%q: pos %q -o %s --all %v; want %q %s %v", tt.args, pos, *out, *all, tt.pos, tt.out, tt.all)
		}
	}
}
