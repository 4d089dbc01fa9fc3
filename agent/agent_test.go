package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/storage"
	"github.com/joulehq/joule/web"
	"github.com/joulehq/joule/web/client"
)

// The test binary doubles as the trainer child: `agent.test train ...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "train" {
		os.Exit(TrainMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// examplesRoot is the repository's examples/, the fixture agent's data root
// (absolute: some tests change directory).
var examplesRoot, _ = filepath.Abs("../examples")

type fixture struct {
	t     *testing.T
	c     *client.Client
	agent *Agent
	sim   *power.SimNode
	stop  func()
}

// newFixture runs a real schedulerd server (bbolt file, loopback HTTP) and one
// agent on a simulated DGX-H100 heartbeating every 100 ms.
func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(db, quiet, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	c, err := client.New(ts.URL) // the test's, with an admin token
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := client.New(ts.URL) // the agent's, with its own agent token
	if c.Token, err = srv.EphemeralToken("tester", web.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if ac.Token, err = srv.EphemeralToken("node-a", web.RoleAgent); err != nil {
		t.Fatal(err)
	}
	sim, err := power.NewSimNode("dgxh100", time.Now, power.WithNodeName("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Name: "node-a", Client: ac, NVML: sim.NVML(), Sim: sim,
		Interval: 100 * time.Millisecond, DataDir: t.TempDir(), Exe: os.Args[0], Log: quiet,
		DataRoot: examplesRoot}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	f := &fixture{t: t, c: c, agent: a, sim: sim, stop: func() { cancel(); <-done }}
	t.Cleanup(func() { f.stop(); ts.Close(); srv.Close(); db.Close() })
	return f
}

func (f *fixture) submit(body string) string {
	f.t.Helper()
	spec, err := api.ParseJobSpec([]byte(body))
	if err != nil {
		f.t.Fatal(err)
	}
	id, err := f.c.Submit(context.Background(), spec)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) waitState(id string, want string, timeout time.Duration) api.Job {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j, err := f.c.Job(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		if j.State == want {
			return j
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s is %s (%s) after %s; want %s", id, j.State, j.Reason, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSyntheticJobLoadsItsGPUsAndIsMetered(t *testing.T) {
	f := newFixture(t)
	id := f.submit("name: s\nuser: u\ngpus: 2\nworkload: {synthetic: {duration: 1s, utilization: 1}}")
	j := f.waitState(id, api.StateRunning, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	gpus, err := power.ReadGPUs(f.sim.NVML())
	if err != nil {
		t.Fatal(err)
	}
	busy := 0
	for _, g := range gpus {
		if g.Utilization > 0.9 {
			busy++
			if !contains(j.GPUIndices, g.Index) {
				t.Errorf("GPU %d is busy but not the job's %v", g.Index, j.GPUIndices)
			}
		}
	}
	if busy != 2 {
		t.Errorf("%d GPUs busy, want the job's 2", busy)
	}
	j = f.waitState(id, api.StateSucceeded, 10*time.Second)
	// Two GPUs near 490 W for about a second: a few hundred joules at least.
	if j.EnergyJ < 300 || j.Progress == nil || j.Progress.Fraction != 1 {
		t.Errorf("energy %.0f J, progress %+v", j.EnergyJ, j.Progress)
	}
	// Finished jobs are forgotten once schedulerd has stored them.
	time.Sleep(300 * time.Millisecond)
	f.agent.mu.Lock()
	held := len(f.agent.tasks)
	f.agent.mu.Unlock()
	if held != 0 {
		t.Errorf("agent still holds %d tasks after they were acknowledged", held)
	}
}

func TestCancelStopsARunningJob(t *testing.T) {
	f := newFixture(t)
	id := f.submit("name: s\nuser: u\ngpus: 8\nworkload: {synthetic: {duration: 1h, utilization: 1}}")
	f.waitState(id, api.StateRunning, 5*time.Second)
	if _, err := f.c.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// The next job needs all 8 GPUs: it starts only once the agent stopped the first.
	next := f.submit("name: t\nuser: u\ngpus: 8\nworkload: {synthetic: {duration: 1h, utilization: 1}}")
	f.waitState(next, api.StateRunning, 5*time.Second)
	if j, _ := f.c.Job(context.Background(), id); j.State != api.StateCancelled {
		t.Fatalf("cancelled job is %s", j.State)
	}
}

func TestTrainChildSucceedsAndFailuresCarryTheReason(t *testing.T) {
	f := newFixture(t)
	data, _ := filepath.Abs("../examples/data")
	ok := f.submit(fmt.Sprintf(`name: iris
user: u
gpus: 1
workload: {train: {dataset: {path: %s/iris.csv, test_path: %s/iris_test.csv, label: species}, model: {hidden: [8]}, optimizer: {name: adam, lr: 0.01}, epochs: 30, batch_size: 16}}`, data, data))
	bad := f.submit(fmt.Sprintf(`name: bad-label
user: u
gpus: 1
workload: {train: {dataset: {path: %s/iris.csv, label: colour}}}`, data))
	j := f.waitState(ok, api.StateSucceeded, time.Minute)
	if j.Metrics == nil || j.Metrics.EpochsRun != 30 || j.Metrics.TestAccuracy == nil || j.EnergyJ <= 0 {
		t.Fatalf("metrics %+v, energy %v", j.Metrics, j.EnergyJ)
	}
	// The agent uploaded the model: schedulerd serves predictions from it.
	reply, err := f.c.Predict(context.Background(), ok, []map[string]any{
		{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
		{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Predictions) != 2 || reply.Predictions[0].Label != "setosa" || reply.Predictions[1].Label != "virginica" {
		t.Fatalf("predictions = %+v", reply.Predictions)
	}
	if _, err := f.c.Predict(context.Background(), ok, []map[string]any{{"sepal_length": 5.1}}); err == nil {
		t.Fatal("a row missing features must be refused")
	}
	j = f.waitState(bad, api.StateFailed, time.Minute)
	if _, err := f.c.Predict(context.Background(), bad, []map[string]any{{"a": 1}}); err == nil ||
		!strings.Contains(err.Error(), "no model stored for job "+bad) {
		t.Fatalf("predict on a failed job: %v", err)
	}
	if want := `"colour"`; !containsStr(j.Reason, want) {
		t.Fatalf("reason %q should name the missing label column %s", j.Reason, want)
	}
}

func TestTrainMainUsage(t *testing.T) {
	if code := TrainMain([]string{"--out", t.TempDir()}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("missing --spec: exit %d, want 2", code)
	}
	p := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(p, []byte("name: s\nuser: u\nworkload: {synthetic: {duration: 1s, utilization: 1}}"), 0o644)
	if code := TrainMain([]string{"--spec", p, "--out", t.TempDir()}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("spec without train workload: exit %d, want 1", code)
	}
}

func contains(s []int, v int) bool { return slices.Contains(s, v) }

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }

func TestPredictMainPrintsOneRowPerInput(t *testing.T) {
	out := t.TempDir()
	data, _ := filepath.Abs("../examples/data")
	spec := filepath.Join(out, "iris.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: iris
user: u
workload: {train: {dataset: {path: %s/iris.csv, label: species}, model: {hidden: [8]}, optimizer: {name: adam, lr: 0.01}, epochs: 40, batch_size: 16}}`, data)), 0o644)
	if code := TrainMain([]string{"--spec", spec, "--out", out}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("train exit %d", code)
	}
	var stdout strings.Builder
	if code := PredictMain([]string{"--model", out, "--input", data + "/iris_test.csv"}, &stdout, io.Discard); code != 0 {
		t.Fatalf("predict exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 31 || lines[0] != "label,p_setosa,p_versicolor,p_virginica" {
		t.Fatalf("%d lines, header %q", len(lines), lines[0])
	}
	// The test file's labels: most predictions must match them.
	want, _ := os.ReadFile(data + "/iris_test.csv")
	rows := strings.Split(strings.TrimSpace(string(want)), "\n")[1:]
	right := 0
	for i, r := range rows {
		if strings.HasSuffix(r, ","+strings.Split(lines[i+1], ",")[0]) {
			right++
		}
	}
	if right < 26 {
		t.Fatalf("%d of 30 predictions match the labels:\n%s", right, stdout.String())
	}
	if code := PredictMain([]string{"--model", t.TempDir(), "--input", data + "/iris_test.csv"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("missing model: exit %d, want 1", code)
	}
}

func TestGPUUUIDsFromTheEnvironment(t *testing.T) {
	for _, c := range []struct {
		env  string
		want []string
	}{
		{"", nil},
		{"GPU-a", []string{"GPU-a"}},
		{"GPU-a, GPU-b,,", []string{"GPU-a", "GPU-b"}},
	} {
		if got := gpuUUIDs(c.env); !slices.Equal(got, c.want) {
			t.Errorf("gpuUUIDs(%q) = %q, want %q", c.env, got, c.want)
		}
	}
}

// A relative --data-dir (the default ./joule-agent, or schedulerd's
// ./joule-data) must work: train children run in their job directory.
func TestTrainJobWithRelativeDataDir(t *testing.T) {
	data, _ := filepath.Abs("../examples/data")
	t.Chdir(t.TempDir())
	f := newFixture(t, func(c *Config) { c.DataDir = "rel-data" })
	id := f.submit(fmt.Sprintf(`name: iris
user: u
gpus: 1
workload: {train: {dataset: {path: %s/iris.csv, label: species}, model: {hidden: [8]}, epochs: 5}}`, data))
	f.waitState(id, api.StateSucceeded, time.Minute)
}
