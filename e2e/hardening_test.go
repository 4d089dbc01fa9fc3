package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

// apiClient is a Go client with the admin token (and the CA under TLS).
func (c *cluster) apiClient() *client.Client {
	c.t.Helper()
	cl, err := client.New(c.url)
	if err != nil {
		c.t.Fatal(err)
	}
	cl.Token = c.token
	if c.tls {
		if err := cl.UseCA(c.ca()); err != nil {
			c.t.Fatal(err)
		}
	}
	return cl
}

// schedulerdCmd runs a schedulerd admin command (token, backup, compact).
func (c *cluster) schedulerdCmd(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bin, "schedulerd"), args...)
	cmd.Env = c.env(c.token)
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("schedulerd %s: %v: %s", strings.Join(args, " "), err, errText(err))
	}
	return string(out), nil
}

func (c *cluster) userToken(name string) string {
	c.t.Helper()
	out, err := c.schedulerdCmd("token", "create", "--role", "user", "--name", name, "--data-dir", c.dataDir)
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// Tokens and roles, TLS with the generated CA, /metrics, and a backup of the
// live database, over the real binaries.
func TestTokensTLSMetricsBackup(t *testing.T) {
	c := newCluster(t, func(c *cluster) { c.tls = true })
	c.startAgent("node-a")
	c.waitFor("node-a up", 10*time.Second, func() bool {
		out, err := c.joule("nodes")
		return err == nil && strings.Contains(out, "node-a")
	})
	alice, bob := c.userToken("alice"), c.userToken("bob")

	// 401 without a token, with a message that says what to do.
	if _, err := c.jouleAs("", "queue"); err == nil || !strings.Contains(err.Error(), "missing token") || !strings.Contains(err.Error(), "JOULE_TOKEN") {
		t.Errorf("no token: %v; want a 401 naming JOULE_TOKEN", err)
	}
	// The job's user is the token's: alice may not submit as bob.
	spec := c.writeSpec("s.yaml", "name: burn\nuser: alice\ngpus: 1\nworkload: {synthetic: {duration: 10m, utilization: 0.5}}\n")
	out, err := c.jouleAs(alice, "submit", spec)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	if _, err := c.jouleAs(bob, "submit", spec); err == nil || !strings.Contains(err.Error(), `token "bob" may submit only as user "bob", not "alice"`) {
		t.Errorf("bob submitting as alice: %v; want refused", err)
	}
	// 403 for cancelling someone else's job; the job is untouched.
	if _, err := c.jouleAs(bob, "cancel", id); err == nil || !strings.Contains(err.Error(), "belongs to user \"alice\"") {
		t.Errorf("bob cancels alice's job: %v; want 403", err)
	}
	if j := c.job(id); api.Terminal(j.State) {
		t.Errorf("after bob's refused cancel the job is %s", j.State)
	}
	if _, err := c.jouleAs(alice, "cancel", id); err != nil {
		t.Errorf("alice cancels her own job: %v", err)
	}

	// TLS: without the CA the CLI refuses the server and says how to fix it.
	cmd := exec.Command(filepath.Join(c.bin, "joule"), "queue")
	cmd.Env = append(os.Environ(), "JOULE_SERVER="+c.url, "JOULE_TOKEN="+c.token, "JOULE_CA=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not trusted") || !strings.Contains(string(out), "JOULE_CA") {
		t.Errorf("joule without the CA: %v %s; want a TLS trust error naming JOULE_CA", err, out)
	}
	// Plain HTTP to the TLS port gets nowhere.
	if _, err := http.Get(strings.Replace(c.url, "https:", "http:", 1) + "/api/v1/jobs"); err == nil {
		resp, _ := http.Get(strings.Replace(c.url, "https:", "http:", 1) + "/api/v1/jobs")
		if resp != nil && resp.StatusCode == 200 {
			t.Errorf("plain HTTP on the TLS port answered 200")
		}
	}

	// /metrics exposes every GPU's power, over TLS, with a token.
	pem, err := os.ReadFile(c.ca())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", c.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for g := range 8 {
		want := fmt.Sprintf(`joule_gpu_power_watts{gpu="%d",node="node-a"}`, g)
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, want := range []string{"joule_cluster_power_watts", `joule_jobs{state="cancelled"} 1`, "joule_schedule_duration_seconds_bucket"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", tailOf(string(body), 3000))
	}

	// A user token may not back up; the admin's backup is a whole database
	// with the job in it.
	bk := filepath.Join(c.dir, "backup.db")
	cmd = exec.Command(filepath.Join(c.bin, "schedulerd"), "backup", "--out", bk, "--server", c.url, "--ca", c.ca())
	cmd.Env = append(os.Environ(), "JOULE_TOKEN="+alice)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "needs role admin") {
		t.Errorf("backup with a user token: %v %s; want 403", err, out)
	}
	if out, err := c.schedulerdCmd("backup", "--out", bk, "--data-dir", c.dataDir); err != nil || !strings.Contains(out, "wrote "+bk) {
		t.Fatalf("backup: %v %s", err, out)
	}
	restored := filepath.Join(c.dir, "restored")
	os.MkdirAll(restored, 0o750)
	data, _ := os.ReadFile(bk)
	os.WriteFile(filepath.Join(restored, "joule.db"), data, 0o600)
	r := exec.Command(filepath.Join(c.bin, "schedulerd"), "--data-dir", restored, "--listen", freePort(t))
	logf, _ := os.Create(filepath.Join(c.dir, "restored.log"))
	r.Stdout, r.Stderr = logf, logf
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { r.Process.Kill(); r.Wait() }()
	// The restored copy keeps its tokens: alice's works against it.
	rc, _ := client.New("http://" + r.Args[4])
	rc.Token = alice
	var jobs []api.Job
	c.waitFor("the restored copy to serve", 10*time.Second, func() bool {
		var err error
		jobs, err = rc.Jobs(context.Background())
		return err == nil
	})
	if len(jobs) != 1 || jobs[0].ID != id || jobs[0].State != api.StateCancelled {
		t.Errorf("restored backup holds %+v; want %s cancelled", jobs, id)
	}
}

// kill -9 of schedulerd during 2,000 concurrent submissions, then a restart:
// every acknowledged id is stored exactly once, the agents come back by
// themselves, and a running job keeps running without a second start.
func TestKill9DuringConcurrentSubmissions(t *testing.T) {
	c := newCluster(t)
	c.startAgent("agent-a")
	c.startAgent("agent-b")
	cl := c.apiClient()
	ctx := context.Background()
	c.waitFor("two nodes", 10*time.Second, func() bool {
		nodes, err := cl.Nodes(ctx)
		return err == nil && len(nodes) == 2
	})
	long := api.JobSpec{Name: "long", User: "alice", GPUs: 8, Priority: 100,
		Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: time.Hour}, Utilization: 0.7}}}
	longID, err := cl.Submit(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	var running api.Job
	c.waitFor("the long job to run", 10*time.Second, func() bool {
		running, err = cl.Job(ctx, longID)
		return err == nil && running.State == api.StateRunning
	})

	const total, workers = 2000, 64
	var (
		mu    sync.Mutex
		acked = map[string]string{} // id -> name
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	killAt := int64(700)
	killed := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > total {
					return
				}
				spec := api.JobSpec{Name: fmt.Sprintf("s-%d", n), User: "bob", GPUs: 1,
					Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: time.Hour}, Utilization: 0.3}}}
				id, err := cl.Submit(ctx, spec)
				if err != nil {
					continue // not acknowledged: may or may not be stored
				}
				mu.Lock()
				acked[id] = spec.Name
				if int64(len(acked)) == killAt {
					c.sched.Process.Kill() // kill -9 with requests in flight
					close(killed)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-killed
	c.sched.Wait()
	t.Logf("%d submissions acknowledged before and around the kill", len(acked))
	c.startScheduler()

	jobs, err := cl.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]api.Job{}
	for _, j := range jobs {
		byName[j.Spec.Name] = append(byName[j.Spec.Name], j)
	}
	for id, name := range acked {
		if got := byName[name]; len(got) != 1 || got[0].ID != id {
			t.Errorf("acknowledged %s (%s): stored as %d jobs %v; want exactly once", id, name, len(got), got)
		}
	}
	// The agents reconnect on their own and the long job runs on, started once.
	c.waitFor("both agents to heartbeat the new schedulerd", 15*time.Second, func() bool {
		nodes, err := cl.Nodes(ctx)
		if err != nil || len(nodes) != 2 {
			return false
		}
		for _, n := range nodes {
			if n.State != api.NodeUp || time.Since(n.LastHeartbeat) > 2*time.Second {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	j, err := cl.Job(ctx, longID)
	if err != nil || j.State != api.StateRunning || j.Node != running.Node || !j.StartedAt.Equal(*running.StartedAt) {
		t.Errorf("long job after restart: %+v %v; want still running on %s since %s", j, err, running.Node, running.StartedAt)
	}
	log, _ := os.ReadFile(filepath.Join(c.dir, running.Node+".log"))
	if n := strings.Count(string(log), "job="+longID+" name=long"); n != 1 {
		t.Errorf("%s started the long job %d times; want once:\n%s", running.Node, n, tailOf(string(log), 2000))
	}
}

// kill -9 of an agent: after the node timeout its node is down, its train job
// is requeued with a reason and resumes from its checkpoint on the other node
// (the agents share a jobs dir); the agent returning under the same name
// duplicates nothing.
func TestAgentKill9RequeuesAndResumes(t *testing.T) {
	c := newCluster(t, func(c *cluster) { c.extra = []string{"--node-timeout", "2s"} })
	a := c.startAgent("agent-a")
	cl := c.apiClient()
	ctx := context.Background()
	c.waitFor("agent-a", 10*time.Second, func() bool {
		nodes, err := cl.Nodes(ctx)
		return err == nil && len(nodes) == 1
	})
	data := examplesDir(t)
	id := c.submit(c.writeSpec("train.yaml", fmt.Sprintf(`
name: long-train
user: alice
gpus: 8
workload:
  train:
    dataset: {path: %s/iris.csv, label: species}
    model: {hidden: [256, 256]}
    optimizer: {name: adam, lr: 0.001}
    batch_size: 8
    epochs: 400
    validation_split: 0.2
`, data)))
	c.waitFor("the train job to pass epoch 3 on agent-a", 30*time.Second, func() bool {
		j := c.job(id)
		return j.State == api.StateRunning && j.Progress != nil && j.Progress.Epoch >= 3
	})
	c.startAgent("agent-b")
	a.Process.Kill() // kill -9; the trainer child gets SIGTERM and checkpoints
	a.Wait()

	var j api.Job
	c.waitFor("the job requeued and running on agent-b", 20*time.Second, func() bool {
		j = c.job(id)
		return j.State == api.StateRunning && j.Node == "agent-b"
	})
	nodes, _ := cl.Nodes(ctx)
	for _, n := range nodes {
		if n.Name == "agent-a" && n.State != api.NodeDown {
			t.Errorf("agent-a is %s after its kill; want down", n.State)
		}
	}
	// The reason is cleared when the job runs again; the requeue is in the log.
	sched, _ := os.ReadFile(filepath.Join(c.dir, "schedulerd.log"))
	if !strings.Contains(string(sched), "node down") || !strings.Contains(string(sched), "agent-a") {
		t.Errorf("schedulerd's log does not say agent-a went down:\n%s", tailOf(string(sched), 2000))
	}
	trainLog := filepath.Join(c.dir, "jobs", id, "train.log")
	c.waitFor("the trainer on agent-b to resume from the checkpoint", 20*time.Second, func() bool {
		b, _ := os.ReadFile(trainLog)
		return strings.Contains(string(b), "resume: from epoch")
	})

	// agent-a comes back under its name: it holds nothing and starts nothing.
	c.start("agent-a-again", "agent", "--sim", "dgxh100", "--name", "agent-a", "--scheduler", c.url, "--heartbeat", "300ms",
		"--data-dir", filepath.Join(c.dir, "agent-a"), "--token-file", filepath.Join(c.dir, "agent-a.token"),
		"--jobs-dir", filepath.Join(c.dir, "jobs"), "--data-root", data)
	c.waitFor("agent-a up again", 10*time.Second, func() bool {
		nodes, err := cl.Nodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Name == "agent-a" && n.State == api.NodeUp {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second)
	again, _ := os.ReadFile(filepath.Join(c.dir, "agent-a-again.log"))
	if strings.Contains(string(again), "starting job") {
		t.Errorf("the returning agent-a started a job:\n%s", again)
	}
	if j = c.job(id); j.Node != "agent-b" || j.State != api.StateRunning {
		t.Errorf("after agent-a's return the job is %s on %s; want running on agent-b", j.State, j.Node)
	}
}
