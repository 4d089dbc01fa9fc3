package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// call is one request as the test server saw it.
type call struct {
	Method, Path, ContentType string
	Body                      string
}

// server answers every request with status and reply and records it.
func server(t *testing.T, status int, reply string) (*Client, *call) {
	t.Helper()
	got := &call{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = call{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(ts.Close)
	c, err := New(ts.URL + "/") // a trailing slash is fine
	if err != nil {
		t.Fatal(err)
	}
	return c, got
}

func TestNew(t *testing.T) {
	tests := []struct {
		in, base string // base "" means an error
	}{
		{"http://127.0.0.1:7070", "http://127.0.0.1:7070"},
		{"http://127.0.0.1:7070/", "http://127.0.0.1:7070"},
		{"https://joule.example.com/prefix/", "https://joule.example.com/prefix"},
		{"foo", ""},
		{"127.0.0.1:7070", ""},
		{"localhost:7070", ""},
		{"ftp://host", ""},
		{"http://", ""},
		{"", ""},
		{"http://host:7070?x=1", ""},
	}
	for _, tt := range tests {
		c, err := New(tt.in)
		if tt.base == "" {
			if err == nil {
				t.Errorf("New(%q) succeeded; want an error", tt.in)
				continue
			}
			want := `server "` + tt.in + `" is not a URL; use e.g. http://127.0.0.1:7070`
			if err.Error() != want {
				t.Errorf("New(%q) error %q, want %q", tt.in, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if c.BaseURL() != tt.base {
			t.Errorf("New(%q).BaseURL() = %q, want %q", tt.in, c.BaseURL(), tt.base)
		}
		if c.HTTP == nil || c.HTTP.Timeout != 10*time.Second {
			t.Errorf("New(%q): HTTP client %+v, want a 10s timeout", tt.in, c.HTTP)
		}
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	hb := api.Heartbeat{
		GPUs: []api.GPU{{Index: 0, UUID: "GPU-1", PowerW: 250}},
		Jobs: []api.JobReport{{ID: "j-1", State: api.StateRunning}},
	}
	hbJSON, _ := json.Marshal(hb)
	spec := api.JobSpec{Name: "iris", User: "alice", GPUs: 1, Priority: 50,
		Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: time.Minute}, Utilization: 0.5}}}
	specJSON, _ := json.Marshal(spec)
	jobJSON := `{"id":"j-7","spec":{"name":"iris","user":"alice","gpus":1,"priority":50,"workload":{}},"state":"cancelled","submitted_at":"2026-11-28T12:00:00Z","energy_j":12.5}`
	wantJob := api.Job{ID: "j-7", Spec: api.JobSpec{Name: "iris", User: "alice", GPUs: 1, Priority: 50},
		State: api.StateCancelled, SubmittedAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), EnergyJ: 12.5}
	replyJSON := `{"run":[{"id":"j-1","spec":{"name":"x","user":"u","gpus":1,"priority":0,"workload":{}},"gpu_indices":[0],"gpu_uuids":["GPU-1"]}],"stop":["j-2"],"limits_w":{"0":300}}`
	wantReply := api.HeartbeatReply{
		Run:     []api.Assignment{{ID: "j-1", Spec: api.JobSpec{Name: "x", User: "u", GPUs: 1}, GPUIndices: []int{0}, GPUUUIDs: []string{"GPU-1"}}},
		Stop:    []string{"j-2"},
		LimitsW: map[int]float64{0: 300},
	}

	tests := []struct {
		name   string
		status int
		reply  string
		call   func(c *Client) (any, error)
		want   any
		req    call
	}{
		{"submit", 201, `{"id":"j-7"}`,
			func(c *Client) (any, error) { return c.Submit(ctx, spec) },
			"j-7", call{"POST", "/api/v1/jobs", "application/json", string(specJSON)}},
		{"jobs", 200, `[` + jobJSON + `]`,
			func(c *Client) (any, error) { return c.Jobs(ctx) },
			[]api.Job{wantJob}, call{"GET", "/api/v1/jobs", "", ""}},
		{"no jobs", 200, `[]`,
			func(c *Client) (any, error) { return c.Jobs(ctx) },
			[]api.Job{}, call{"GET", "/api/v1/jobs", "", ""}},
		{"job", 200, jobJSON,
			func(c *Client) (any, error) { return c.Job(ctx, "j-7") },
			wantJob, call{"GET", "/api/v1/jobs/j-7", "", ""}},
		{"job id escaped", 200, jobJSON,
			func(c *Client) (any, error) { return c.Job(ctx, "a/b?c") },
			wantJob, call{"GET", "/api/v1/jobs/a%2Fb%3Fc", "", ""}},
		{"cancel", 200, jobJSON,
			func(c *Client) (any, error) { return c.Cancel(ctx, "j-7") },
			wantJob, call{"POST", "/api/v1/jobs/j-7/cancel", "", ""}},
		{"nodes", 200, `[{"name":"node-a","state":"up","last_heartbeat":"2026-11-28T12:00:00Z","gpus":[{"index":0,"uuid":"GPU-1","model":"H100","utilization":0.5,"power_w":300,"limit_w":700,"min_limit_w":200,"max_limit_w":700,"energy_j":1,"temperature_c":40,"memory_used_mib":1,"memory_total_mib":80}],"idle_energy_j":3}]`,
			func(c *Client) (any, error) { return c.Nodes(ctx) },
			[]api.Node{{Name: "node-a", State: "up", LastHeartbeat: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
				GPUs: []api.GPU{{Index: 0, UUID: "GPU-1", Model: "H100", Utilization: 0.5, PowerW: 300, LimitW: 700, MinLimitW: 200,
					MaxLimitW: 700, EnergyJ: 1, TemperatureC: 40, MemoryUsedMiB: 1, MemoryTotalMiB: 80}}, IdleEnergyJ: 3}},
			call{"GET", "/api/v1/nodes", "", ""}},
		{"register", 200, replyJSON,
			func(c *Client) (any, error) { return c.Register(ctx, "node-a", hb) },
			wantReply, call{"POST", "/api/v1/agents/node-a/register", "application/json", string(hbJSON)}},
		{"heartbeat", 200, replyJSON,
			func(c *Client) (any, error) { return c.Heartbeat(ctx, "node-a", hb) },
			wantReply, call{"POST", "/api/v1/agents/node-a/heartbeat", "application/json", string(hbJSON)}},
		{"health", 200, `{"status":"ok"}`,
			func(c *Client) (any, error) { return nil, c.Health(ctx) },
			nil, call{"GET", "/healthz", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, req := server(t, tt.status, tt.reply)
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tt.want)
			}
			if *req != tt.req {
				t.Errorf("request\n%+v\nwant\n%+v", *req, tt.req)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		status int
		reply  string
		call   func(c *Client) error
		want   string
		apiErr int // the APIError status expected; 0 means not an APIError
	}{
		{"not found", 404, `{"error":"job j-7 not found"}`,
			func(c *Client) error { _, err := c.Job(ctx, "j-7"); return err },
			"job j-7 not found", 404},
		{"bad spec", 400, `{"error":"gpus: -1 is negative; ask for 0 or more GPUs"}`,
			func(c *Client) error { _, err := c.Submit(ctx, api.JobSpec{}); return err },
			"gpus: -1 is negative; ask for 0 or more GPUs", 400},
		{"conflict", 409, `{"error":"job j-1 already succeeded"}`,
			func(c *Client) error { _, err := c.Cancel(ctx, "j-1"); return err },
			"job j-1 already succeeded", 409},
		{"not json", 502, "<html>Bad Gateway</html>",
			func(c *Client) error { _, err := c.Jobs(ctx); return err },
			"schedulerd answered 502 Bad Gateway: <html>Bad Gateway</html>", 502},
		{"empty body", 500, "",
			func(c *Client) error { _, err := c.Nodes(ctx); return err },
			"schedulerd answered 500 Internal Server Error", 500},
		{"submit without id", 201, `{}`,
			func(c *Client) error { _, err := c.Submit(ctx, api.JobSpec{}); return err },
			"the reply has no job id", 0},
		{"garbled reply", 200, `{"id":`,
			func(c *Client) error { _, err := c.Job(ctx, "j-1"); return err },
			"GET /api/v1/jobs/j-1: the reply from", 0},
		{"unhealthy", 200, `{"status":"starting"}`,
			func(c *Client) error { return c.Health(ctx) },
			`not healthy: status "starting"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := server(t, tt.status, tt.reply)
			err := tt.call(c)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.apiErr != 0 {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != tt.apiErr {
					t.Fatalf("error %#v is not an APIError with status %d", err, tt.apiErr)
				}
				if err.Error() != tt.want {
					t.Errorf("error %q, want %q", err, tt.want)
				}
				if got := IsNotFound(err); got != (tt.apiErr == 404) {
					t.Errorf("IsNotFound = %v", got)
				}
				return
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	// Take a free port and close it, so nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()

	c, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Jobs(context.Background())
	want := "cannot reach schedulerd at " + addr + ": is it running? (set --server or JOULE_SERVER)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %#v should be an UnreachableError wrapping ECONNREFUSED", err)
	}
}

func TestContextCancelled(t *testing.T) {
	block := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(block)
	c, _ := New(ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Jobs(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want one wrapping context.DeadlineExceeded", err)
	}
}

func TestTimeout(t *testing.T) {
	block := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(block)
	c, _ := New(ts.URL)
	c.HTTP.Timeout = 50 * time.Millisecond
	_, err := c.Nodes(context.Background())
	want := "schedulerd at " + ts.URL + " did not answer GET /api/v1/nodes within 50ms"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}
