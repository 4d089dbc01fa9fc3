package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// cluster is a schedulerd and its agents running as real processes.
type cluster struct {
	t       *testing.T
	bin     string // directory of the built binaries
	dir     string
	dataDir string
	url     string
	sched   *exec.Cmd
	token   string   // the admin token, for the CLI
	tls     bool     // serve with --tls-auto; the CLI trusts DATA_DIR/tls/ca.crt
	extra   []string // more schedulerd flags
}

// buildBinaries builds schedulerd, agent and joule once per test run.
func buildBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test builds and runs the binaries; skipped with -short")
	}
	statSources(t)
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/schedulerd", "../cmd/agent", "../cmd/joule")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// statSources stats every file of the module. go test caches a result
// keyed on the files the test stats, so this keeps a cached pass from
// outliving a change to the binaries' sources, which the go build above
// reads behind the test cache's back.
func statSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && p != ".." && strings.HasPrefix(d.Name(), "."):
			return filepath.SkipDir // .git, .gpu, .ci
		case !d.IsDir():
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("stat the sources: %v", err)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newCluster(t *testing.T, opts ...func(*cluster)) *cluster {
	c := &cluster{t: t, bin: buildBinaries(t), dir: t.TempDir()}
	c.dataDir = filepath.Join(c.dir, "data")
	for _, o := range opts {
		o(c)
	}
	addr := freePort(t)
	c.url = "http://" + addr
	if c.tls {
		c.url = "https://" + addr
	}
	c.startScheduler()
	return c
}

// ca is the CA certificate --tls-auto writes.
func (c *cluster) ca() string { return filepath.Join(c.dataDir, "tls", "ca.crt") }

// env is the environment of the CLI and schedulerd's admin commands.
func (c *cluster) env(token string) []string {
	env := append(os.Environ(), "JOULE_SERVER="+c.url, "JOULE_TOKEN="+token)
	if c.tls {
		env = append(env, "JOULE_CA="+c.ca())
	}
	return env
}

// agentToken makes an agent token through `schedulerd token create` and
// returns the file holding it.
func (c *cluster) agentToken(name string) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, "schedulerd"), "token", "create", "--role", "agent", "--name", name, "--data-dir", c.dataDir)
	cmd.Env = append(c.env(""), "JOULE_TOKEN=") // the admin token comes from DATA_DIR/admin.token
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("schedulerd token create: %v %s", err, errText(err))
	}
	p := filepath.Join(c.dir, name+".token")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// startAgent runs a simulated DGX-H100 agent with its own token; the agents
// of a cluster share one jobs dir (checkpoints) and read datasets under the
// repository's examples/data.
func (c *cluster) startAgent(name string, extra ...string) *exec.Cmd {
	c.t.Helper()
	args := []string{"--sim", "dgxh100", "--name", name, "--scheduler", c.url, "--heartbeat", "300ms",
		"--data-dir", filepath.Join(c.dir, name), "--token-file", c.agentToken(name),
		"--jobs-dir", filepath.Join(c.dir, "jobs"), "--data-root", examplesDir(c.t)}
	if c.tls {
		args = append(args, "--ca", c.ca())
	}
	return c.start(name, "agent", append(args, extra...)...)
}

// start runs a binary in the background, its output in dir/name.log.
func (c *cluster) start(name, bin string, args ...string) *exec.Cmd {
	c.t.Helper()
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.bin, bin), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		logf.Close()
		if c.t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			c.t.Logf("--- %s log:\n%s", name, tailOf(string(data), 4000))
		}
	})
	return cmd
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *cluster) startScheduler() {
	args := []string{"--data-dir", c.dataDir, "--listen", c.url[strings.Index(c.url, "//")+2:]}
	if c.tls {
		args = append(args, "--tls-auto")
	}
	c.sched = c.start("schedulerd", "schedulerd", append(args, c.extra...)...)
	c.waitFor("schedulerd to write its admin token and answer", 10*time.Second, func() bool {
		tok, err := os.ReadFile(filepath.Join(c.dataDir, "admin.token"))
		if err != nil {
			return false
		}
		c.token = strings.TrimSpace(string(tok))
		_, err = c.joule("queue")
		return err == nil
	})
}

// joule runs the CLI with the admin token and returns its stdout.
func (c *cluster) joule(args ...string) (string, error) {
	return c.jouleAs(c.token, args...)
}

// jouleAs runs the CLI with token and returns its stdout.
func (c *cluster) jouleAs(token string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bin, "joule"), args...)
	cmd.Env = c.env(token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("joule %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (c *cluster) mustJoule(args ...string) string {
	c.t.Helper()
	out, err := c.joule(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *cluster) jobs() map[string]api.Job {
	c.t.Helper()
	var jobs []api.Job
	if err := json.Unmarshal([]byte(c.mustJoule("queue", "--all", "-o", "json")), &jobs); err != nil {
		c.t.Fatal(err)
	}
	m := map[string]api.Job{}
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}

func (c *cluster) job(id string) api.Job {
	c.t.Helper()
	var j api.Job
	if err := json.Unmarshal([]byte(c.mustJoule("status", id, "-o", "json")), &j); err != nil {
		c.t.Fatal(err)
	}
	return j
}

func (c *cluster) waitFor(what string, timeout time.Duration, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *cluster) writeSpec(name, body string) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cluster) submit(spec string) string {
	c.t.Helper()
	out := c.mustJoule("submit", spec)
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "j-") || strings.Contains(id, "\n") {
		c.t.Fatalf("submit printed %q, want the job id alone on its line", out)
	}
	return id
}

func examplesDir(t *testing.T) string {
	d, err := filepath.Abs("../examples/data")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The walking skeleton: submit -> place -> run -> meter -> persist, with a
// crash of schedulerd in the middle of it.
func TestSubmitRunMeterPersistSurvivesKill9(t *testing.T) {
	c := newCluster(t)
	for _, name := range []string{"agent-a", "agent-b"} {
		c.startAgent(name)
	}
	c.waitFor("two nodes", 10*time.Second, func() bool {
		var nodes []api.Node
		out, err := c.joule("nodes", "-o", "json")
		return err == nil && json.Unmarshal([]byte(out), &nodes) == nil && len(nodes) == 2
	})

	// A tariff with a facility overhead: every joule metered is priced.
	c.mustJoule("tariff", "--set", c.writeSpec("tariff.json",
		`{"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1.3}`))

	data := examplesDir(t)
	train := c.submit(c.writeSpec("train.yaml", fmt.Sprintf(`
name: iris
user: alice
gpus: 1
workload:
  train:
    dataset: {path: %s/iris.csv, test_path: %s/iris_test.csv, label: species}
    model: {hidden: [16]}
    optimizer: {name: adam, lr: 0.01}
    batch_size: 16
    epochs: 40
    validation_split: 0.2
`, data, data)))
	synth := c.submit(c.writeSpec("synth.yaml", `
name: burn
user: bob
gpus: 4
workload: {synthetic: {duration: 3s, utilization: 0.9}}
`))
	missing := c.submit(c.writeSpec("missing.yaml", `
name: no-data
user: alice
gpus: 1
workload: {train: {dataset: {path: /nonexistent/joule/data.csv}}}
`))

	// Bad input is refused at submit and nothing is stored.
	before := len(c.jobs())
	if _, err := c.joule("submit", c.writeSpec("huge.yaml", "name: huge\nuser: a\ngpus: 16\nworkload: {synthetic: {duration: 1m, utilization: 1}}\n")); err == nil ||
		!strings.Contains(err.Error(), "no node has 16 GPUs; the largest has 8") {
		t.Fatalf("a 16-GPU job must be refused clearly, got %v", err)
	}
	if _, err := c.joule("submit", c.writeSpec("unknown.yaml", "name: x\nuser: a\ngpu: 1\nworkload: {synthetic: {duration: 1m, utilization: 1}}\n")); err == nil ||
		!strings.Contains(err.Error(), `unknown field "gpu"`) {
		t.Fatalf("an unknown field must be refused clearly, got %v", err)
	}
	if after := len(c.jobs()); after != before {
		t.Fatalf("refused submissions stored jobs: %d -> %d", before, after)
	}

	c.waitFor("all three jobs to end", 3*time.Minute, func() bool {
		for _, id := range []string{train, synth, missing} {
			if !api.Terminal(c.job(id).State) {
				return false
			}
		}
		return true
	})
	for _, id := range []string{train, synth} {
		j := c.job(id)
		if j.State != api.StateSucceeded || j.EnergyJ <= 0 || j.Node == "" {
			t.Errorf("%s: state %s, energy %.1f J on %q; want succeeded with energy > 0 (reason %q)", id, j.State, j.EnergyJ, j.Node, j.Reason)
		}
	}
	if m := c.job(train).Metrics; m == nil || m.EpochsRun == 0 || m.TestAccuracy == nil || *m.TestAccuracy < 0.8 {
		t.Errorf("train metrics = %+v; want a trained model (test accuracy >= 0.8)", m)
	}
	if j := c.job(missing); j.State != api.StateFailed || !strings.Contains(j.Reason, "/nonexistent/joule/data.csv is outside this node's data root") {
		t.Errorf("dataset outside --data-root: state %s, reason %q; want failed naming the file and the data root", j.State, j.Reason)
	}
	if out := c.mustJoule("status", missing); !strings.Contains(out, "/nonexistent/joule/data.csv") {
		t.Errorf("joule status must show the failure reason:\n%s", out)
	}
	var nodes []api.Node
	json.Unmarshal([]byte(c.mustJoule("nodes", "-o", "json")), &nodes)
	var powerW float64
	for _, n := range nodes {
		for _, g := range n.GPUs {
			powerW += g.PowerW
		}
	}
	if powerW <= 0 {
		t.Errorf("node power = %v W, want > 0", powerW)
	}

	// kill -9 and restart on the same data dir: every job in the same state.
	before2 := c.jobs()
	c.sched.Process.Kill()
	c.sched.Wait()
	c.startScheduler()
	after2 := c.jobs()
	if len(after2) != len(before2) {
		t.Fatalf("after kill -9: %d jobs, before: %d", len(after2), len(before2))
	}
	for id, b := range before2 {
		a := after2[id]
		if a.State != b.State || a.EnergyJ != b.EnergyJ || a.Node != b.Node {
			t.Errorf("%s after restart: %s %.1f J on %s; before: %s %.1f J on %s", id, a.State, a.EnergyJ, a.Node, b.State, b.EnergyJ, b.Node)
		}
	}

	// The per-day usage survived the kill too: the report by job, read from
	// it, matches each job's own energy and cost (0.10 EUR/kWh, PUE 1.3).
	var rep api.Report
	if err := json.Unmarshal([]byte(c.mustJoule("report", "--by", "job", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{train, synth} {
		j := after2[id]
		if want := j.EnergyJ * 1.3 / 3.6e6 * 0.10; math.Abs(j.Cost-want) > 1e-9 {
			t.Errorf("%s: cost %v for %.1f J, want %v", id, j.Cost, j.EnergyJ, want)
		}
		found := false
		for _, r := range rep.Rows {
			if r.Group == id {
				found = true
				if math.Abs(r.EnergyJ-j.EnergyJ) > 1e-6 || math.Abs(r.Cost-j.Cost) > 1e-9 {
					t.Errorf("report row %s: %.1f J, cost %v; the job says %.1f J, cost %v", id, r.EnergyJ, r.Cost, j.EnergyJ, j.Cost)
				}
			}
		}
		if !found {
			t.Errorf("the report by job has no row for %s: %+v", id, rep.Rows)
		}
	}
	// The dashboard is served by the binary.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(c.url + "/queue?token=" + c.token) // sets the cookie and redirects
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), train) {
		t.Errorf("GET /queue: %d; want the page listing %s", resp.StatusCode, train)
	}
}

// A second schedulerd on the same data dir is refused within about a second.
func TestSecondSchedulerdRefused(t *testing.T) {
	c := newCluster(t)
	cmd := exec.Command(filepath.Join(c.bin, "schedulerd"), "--data-dir", c.dataDir, "--listen", freePort(t))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another schedulerd") {
		t.Fatalf("second schedulerd: err %v, output:\n%s", err, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusal took %s", d)
	}
}
