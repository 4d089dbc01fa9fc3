package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/scheduler/sim"
	"github.com/joulehq/joule/storage"
)

// The daemon (HTTP, bbolt, the core behind them) and the simulator make the
// same decisions for the same events: the same trace is replayed through
// schedulerd's API, with agents' heartbeats reporting the finished jobs at
// the times the daemon's own decisions imply, and every job must land on the
// same node and GPUs at the same time as in the simulator.
func TestDaemonAndSimulatorDecideAlike(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("job_id,submit_time_s,duration_s,num_gpus,user,status\n")
	submit := 0
	for i := range 60 {
		// Arrivals 97-1000 s apart, runs of 10 min to 3 h, 1-8 GPUs: enough
		// to fill the cluster, queue, backfill, idle and suspend nodes.
		submit += 97 + i*i*53%904
		fmt.Fprintf(&csv, "x%d,%d,%d,%d,,\n", i, submit, 600+(i*7919)%10200, []int{1, 2, 1, 4, 8, 1, 2}[i%7])
	}
	jobs, err := sim.ReadTrace(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := scheduler.PolicyByName("energy")
	p.IdleTimeout = 10 * time.Minute
	cluster := sim.Uniform(3, "h100")
	want, err := sim.Run(jobs, sim.Config{Cluster: cluster, Policy: p, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	if want.Suspends == 0 || want.MeanWaitS == 0 {
		t.Fatalf("the trace must make jobs wait and nodes suspend to test much: %+v", want)
	}

	db, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := sim.DefaultStart
	srv, err := NewWithPolicy(db, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now }, p)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetNodeTimeout(0)
	tok, err := srv.EphemeralToken("tester", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()
	post := func(path string, body any, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			msg, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %s %s", path, resp.Status, msg)
		}
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
	}
	gpus := map[string][]api.GPU{}
	for _, n := range cluster {
		gpus[n.Name], _ = sim.NodeGPUs(n)
		post("/api/v1/agents/"+n.Name+"/register", api.Heartbeat{GPUs: gpus[n.Name]}, nil)
	}
	jobOf := func(id string) api.Job {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		j, _ := srv.core.Job(id)
		return j
	}
	ids := map[string]string{} // trace id -> daemon id
	dur := map[string]time.Duration{}
	reported := map[string]bool{}
	next := 0
	for {
		// The next event, in the simulator's order: completions, arrivals,
		// then the core's power timers.
		var at time.Time
		consider := func(t time.Time) {
			if at.IsZero() || t.Before(at) {
				at = t
			}
		}
		var running []api.Job
		for _, id := range ids {
			if j := jobOf(id); j.State == api.StateRunning && !reported[id] {
				running = append(running, j)
				consider(j.StartedAt.Add(dur[id]))
			}
		}
		if next < len(jobs) {
			consider(sim.DefaultStart.Add(time.Duration(jobs[next].SubmitS) * time.Second))
		}
		srv.mu.Lock()
		timer, hasTimer := srv.core.NextTimer()
		srv.mu.Unlock()
		if len(running) == 0 && next >= len(jobs) {
			break
		}
		if hasTimer {
			consider(timer)
		}
		now = at
		slices.SortFunc(running, func(a, b api.Job) int { return strings.Compare(a.ID, b.ID) })
		for _, j := range running {
			if end := j.StartedAt.Add(dur[j.ID]); !end.After(now) {
				reported[j.ID] = true
				post("/api/v1/agents/"+j.Node+"/heartbeat", api.Heartbeat{GPUs: gpus[j.Node],
					Jobs: []api.JobReport{{ID: j.ID, State: api.StateSucceeded}}}, nil)
			}
		}
		for next < len(jobs) && !sim.DefaultStart.Add(time.Duration(jobs[next].SubmitS)*time.Second).After(now) {
			tj := jobs[next]
			next++
			d := time.Duration(tj.DurationS) * time.Second
			spec := api.JobSpec{Name: fmt.Sprintf("t-%d", next), User: "trace", Project: "default", GPUs: tj.GPUs,
				Priority: 50, Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: d}, Utilization: 1}}}
			var reply api.SubmitReply
			post("/api/v1/jobs", spec, &reply)
			ids[tj.ID], dur[reply.ID] = reply.ID, d
		}
		if hasTimer && !timer.After(now) {
			if err := srv.Tick(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tj := range jobs {
		j, w := jobOf(ids[tj.ID]), want.Placements[tj.ID]
		if j.Node != w.Node || fmt.Sprint(j.GPUIndices) != fmt.Sprint(w.GPUs) || !j.StartedAt.Equal(w.Start) {
			t.Errorf("%s: daemon put it on %s %v at %v, the simulator on %s %v at %v",
				tj.ID, j.Node, j.GPUIndices, j.StartedAt, w.Node, w.GPUs, w.Start)
		}
	}
}
