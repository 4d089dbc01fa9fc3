package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/web/client"
)

// h100Node registers one 8-GPU H100 node on the server at url (token: an
// admin token).
func h100Node(t *testing.T, url, token string) {
	t.Helper()
	hb := api.Heartbeat{GPUs: make([]api.GPU, 8)}
	for i := range hb.GPUs {
		hb.GPUs[i] = api.GPU{Index: i, UUID: "GPU-" + string(rune('a'+i)), Model: "NVIDIA H100 80GB HBM3", MinLimitW: 200, MaxLimitW: 700, PowerW: 72}
	}
	c, _ := client.New(url)
	c.Token = token
	if _, err := c.Register(t.Context(), "node-a", hb); err != nil {
		t.Fatal(err)
	}
}

func TestPowerSetAndShow(t *testing.T) {
	url, tok := realServer(t, now)
	h100Node(t, url, tok)
	r := runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", "--server", url, "power")
	if r.code != 0 || !strings.Contains(r.stdout, "IN FORCE") || !strings.Contains(r.stdout, "none") || !strings.Contains(r.stdout, "MIN DRAW     1600 W") {
		t.Fatalf("show with no budget: %+v", r)
	}
	r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", "--server", url, "power", "--default", "4kW", "--node-max", "3500W",
		"--window", "0 0 * * *|0 6 * * *|5kW")
	if r.code != 0 || !strings.Contains(r.stdout, "IN FORCE     4000 W  (default)") || !strings.Contains(r.stdout, "WINDOW 1     5000 W  0 0 * * * -> 0 6 * * *") {
		t.Fatalf("set: %+v", r)
	}
	r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", "--server", url, "power", "-o", "json")
	var st api.PowerBudgetStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Budget.NodeMaxW != 3500 || st.WattsNow != 4000 {
		t.Fatalf("json: %+v %v", st, err)
	}
	// Refused: below the minimum draw, a malformed CRON_TZ, bad flags. Nothing changes.
	for _, args := range [][]string{
		{"--default", "1kW"},
		{"--default", "4kW", "--window", "CRON_TZ=UTC|0 6 * * *|5kW"},
	} {
		r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", append([]string{"--server", url, "power"}, args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "power budget") {
			t.Errorf("%v: %+v, want exit 1 and the server's reason", args, r)
		}
	}
	for _, args := range [][]string{
		{"--default", "lots"},
		{"--window", "0 0 * * *|5kW"},
	} {
		r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", append([]string{"--server", url, "power"}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "400kW") {
			t.Errorf("%v: %+v, want an error with an example", args, r)
		}
	}
	r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", "--server", url, "power", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.WattsNow != 4000 || len(st.Budget.Windows) != 1 {
		t.Fatalf("a refused budget changed it: %+v", st)
	}
	// From a file on stdin, then cleared.
	r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, `{"default_w": 2500}`, "--server", url, "power", "--set", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "2500 W") {
		t.Fatalf("--set -: %+v", r)
	}
	r = runCLI(t, map[string]string{"JOULE_TOKEN": tok}, "", "--server", url, "power", "--clear")
	if r.code != 0 || !strings.Contains(r.stdout, "none") {
		t.Fatalf("--clear: %+v", r)
	}
}

func TestRenderStatusPower(t *testing.T) {
	j := api.Job{ID: "j-9", Spec: api.JobSpec{Name: "resnet", EnergyPolicy: api.PolicyBalanced}, State: api.StateRunning,
		SubmittedAt: now, PowerLimitW: 369,
		PowerCurve: &api.PowerCurve{UncappedW: 448, A: 0.37, K: 3.5, Samples: 11, From: "j-3"}}
	var b strings.Builder
	if err := renderStatus(&b, j, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Power limit:   369 W per GPU", "Power curve:   uncapped 448 W, a=0.37 k=3.50 (from j-3, 11 limits)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
	j.PowerCurve, j.ProfileError = nil, "need at least two distinct samples"
	b.Reset()
	renderStatus(&b, j, now)
	if !strings.Contains(b.String(), "the power model's (profiling failed: need at least two") {
		t.Errorf("profile error not shown:\n%s", b.String())
	}
	j.PowerLimitW, j.PowerNote = 700, "full speed while other jobs wait for GPUs"
	b.Reset()
	renderStatus(&b, j, now)
	if !strings.Contains(b.String(), "Power limit:   700 W per GPU (full speed while other jobs wait for GPUs)") {
		t.Errorf("power note not shown:\n%s", b.String())
	}
}
