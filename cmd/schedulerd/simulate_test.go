package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/joulehq/joule/scheduler/sim"
)

func writeTrace(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trace.csv")
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\na,0,3600,1,,\nb,60,7200,8,,\nc,120,600,0,,\nd,4000,1800,16,,\n"
	if err := os.WriteFile(p, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSimulateJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := runSimulate([]string{"--trace", writeTrace(t), "--nodes", "3", "-o", "json"}, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := []string{"budget_violation_s", "co2_kg", "cost", "energy_kwh", "gpu_energy_kwh", "gpu_utilization",
		"jobs", "makespan_s", "mean_jct_s", "mean_wait_s", "p95_jct_s", "policy", "unrunnable_jobs"}
	if len(doc) != 1 || len(doc["results"]) != 2 {
		t.Fatalf("want {\"results\": [two policies]}, got %s", out.String())
	}
	for i, policy := range []string{"fifo-firstfit", "energy"} {
		r := doc["results"][i]
		var keys []string
		for k := range r {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("result keys = %v, want %v", keys, want)
		}
		// The CPU-only row is skipped; the 16-GPU job runs on two whole nodes.
		if r["policy"] != policy || r["jobs"] != 3.0 || !(r["energy_kwh"].(float64) > 0) {
			t.Errorf("result %d = %v", i, r)
		}
	}
	if !strings.Contains(errb.String(), "node power: idle 1500 W, loaded 3000 W, suspended 50 W, wake 5m0s") {
		t.Errorf("stderr must say which node power the run used: %s", errb.String())
	}
}

func TestSimulateTable(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"--trace", writeTrace(t), "--nodes", "3", "--policy", "energy", "--node-power", "idle=1000,wake=2m"}
	if rc := runSimulate(args, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	for _, want := range []string{"node power (non-GPU): idle 1000 W, loaded 3000 W, suspended 50 W (whole node), wake-up 2m0s",
		"policy", "energy kWh", "energy  "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	trace := writeTrace(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "2"}, "--trace is required"},
		{[]string{"--trace", trace}, "give the cluster: --nodes N"},
		{[]string{"--trace", trace, "--nodes", "2", "--cluster", "x.csv"}, "either --nodes or --cluster"},
		{[]string{"--trace", trace, "--nodes", "2", "--policy", "greedy"}, `unknown policy "greedy"`},
		{[]string{"--trace", trace, "--nodes", "2", "-o", "yaml"}, `-o "yaml": use table or json`},
		{[]string{"--trace", trace, "--nodes", "2", "--gpu", "v100"}, `unknown GPU kind "v100"`},
		{[]string{"--trace", trace, "--nodes", "2", "--node-power", "idle=x"}, "is not a number of watts"},
		{[]string{"--trace", "/nonexistent.csv", "--nodes", "2"}, "no such file"},
		{[]string{"--trace", trace, "--nodes", "2", "--deferrable-fraction", "1.5"}, "--deferrable-fraction 1.5: give a share from 0 to 1"},
		{[]string{"--trace", trace, "--nodes", "2", "--deferrable-fraction", "-0.1"}, "--deferrable-fraction -0.1"},
		{[]string{"--trace", trace, "--nodes", "2", "--policy", "energy+cap+offpeak"}, "needs a power budget: give --budget-kw"},
		{[]string{"--trace", trace, "--nodes", "2", "--offpeak-levers", "yield,cheap"}, `--offpeak-levers: unknown lever "cheap"`},
		{[]string{"--trace", trace, "--nodes", "2", "--preempt-loss", "-1m"}, "--preempt-loss -1m0s: give the work one preemption loses"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if rc := runSimulate(tt.args, &out, &errb); rc == 0 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v: rc %d, stderr %q; want an error with %q", tt.args, rc, errb.String(), tt.want)
		}
	}
}

func TestSimulateTariff(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "tariff.json")
	os.WriteFile(tf, []byte(`{"currency": "EUR", "price_per_kwh": 0.5, "gco2_per_kwh": 100, "pue": 1}`), 0o644)
	run := func(extra ...string) map[string]any {
		var out, errb bytes.Buffer
		args := append([]string{"--trace", writeTrace(t), "--nodes", "3", "--policy", "fifo-firstfit", "-o", "json"}, extra...)
		if rc := runSimulate(args, &out, &errb); rc != 0 {
			t.Fatalf("rc %d: %s", rc, errb.String())
		}
		var doc map[string][]map[string]any
		json.Unmarshal(out.Bytes(), &doc)
		return doc["results"][0]
	}
	r := run("--tariff", tf)
	if e, c := r["energy_kwh"].(float64), r["cost"].(float64); c < e*0.5*0.999 || c > e*0.5*1.001 {
		t.Fatalf("cost %v for %v kWh at 0.5/kWh", c, e)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"price_per_kwh": -1}`), 0o644)
	var out, errb bytes.Buffer
	if rc := runSimulate([]string{"--trace", writeTrace(t), "--nodes", "3", "--tariff", bad}, &out, &errb); rc == 0 || !strings.Contains(errb.String(), "--tariff") {
		t.Fatalf("a bad tariff must be refused: rc %d, %s", rc, errb.String())
	}
}

// With --budget-kw and no --policy, every policy runs; with
// --deferrable-fraction each result reports on the deferrable jobs.
func TestSimulateOffPeak(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"--trace", writeTrace(t), "--nodes", "3", "--budget-kw", "20", "--deferrable-fraction", "0.5",
		"--tariff", "../../examples/tariff-two-rate.json", "-o", "json"}
	if rc := runSimulate(args, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	var doc struct {
		Results []struct {
			Policy  string
			OffPeak map[string]float64 `json:"offpeak"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range doc.Results {
		names = append(names, r.Policy)
		for _, k := range []string{"deferrable_jobs", "deferred", "deadlines_missed", "deadlines_unmeetable", "mean_jct_deferrable_s", "mean_jct_nondeferrable_s"} {
			if _, ok := r.OffPeak[k]; !ok {
				t.Errorf("%s: offpeak lacks %s: %v", r.Policy, k, r.OffPeak)
			}
		}
	}
	if want := "fifo-firstfit energy energy+cap energy+cap+offpeak"; strings.Join(names, " ") != want {
		t.Fatalf("policies %v, want %s", names, want)
	}
}

// --budget FILE: the budget JSON of PUT /api/v1/power/budget, windows
// included, runs energy+cap; bad files are refused with what to fix.
func TestSimulateBudgetFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"default_w": 20000, "windows": [{"start": "CRON_TZ=Europe/Berlin 0 8 * * *", "end": "CRON_TZ=Europe/Berlin 0 20 * * *", "watts": 4000}]}`)
	var out, errb bytes.Buffer
	if rc := runSimulate([]string{"--trace", writeTrace(t), "--nodes", "3", "--policy", "energy+cap", "--budget", good, "-o", "json"}, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	var doc struct{ Results []sim.Result }
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r := doc.Results[0]; r.Policy != "energy+cap" || r.Jobs != 3 || r.BudgetViolationS != 0 {
		t.Errorf("result %+v: want energy+cap, 3 jobs, 0 s over budget", r)
	}
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--budget", write("typo.json", `{"default_watts": 5000}`)}, `unknown field "default_watts"`},
		{[]string{"--budget", write("cron.json", `{"default_w": 5000, "windows": [{"start": "0 25 * * *", "end": "0 20 * * *", "watts": 4000}]}`)}, "windows"},
		{[]string{"--budget", write("low.json", `{"default_w": 1000}`)}, "minimum possible draw of 1600 W"},
		{[]string{"--budget", good, "--budget-kw", "5"}, "either --budget-kw or --budget FILE"},
		{[]string{"--budget", filepath.Join(dir, "missing.json")}, "missing.json"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"--trace", writeTrace(t), "--nodes", "3", "--policy", "energy+cap"}, tt.args...)
		if rc := runSimulate(args, &out, &errb); rc == 0 || !strings.Contains(errb.String(), tt.says) {
			t.Errorf("%v: rc %d, stderr %q; want it to say %q", tt.args, rc, errb.String(), tt.says)
		}
	}
}
