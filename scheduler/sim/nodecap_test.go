package sim

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/nodecap-replay.golden.json from this code")

// nodeCapTrace is a deterministic synthetic trace that keeps a queue
// waiting for power: n jobs over about three days, 1, 2, 4 and 8 GPUs in
// the ITP traces' proportions, from 5 minutes to 8 hours.
func nodeCapTrace(t *testing.T, n int) []Job {
	t.Helper()
	rng := rand.New(rand.NewPCG(6, 10))
	var b strings.Builder
	b.WriteString("job_id,submit_time_s,duration_s,num_gpus,user,status\n")
	at := 0
	for i := range n {
		at += rng.IntN(2 * 3 * 86400 / n)
		gpus := 1
		switch x := rng.IntN(100); {
		case x >= 88:
			gpus = 8
		case x >= 80:
			gpus = 4
		case x >= 75:
			gpus = 2
		}
		dur := int(300 * math.Pow(96, rng.Float64())) // 5 min to 8 h, log-uniform
		fmt.Fprintf(&b, "t%03d,%d,%d,%d,u%d,\n", i, at, dur, gpus, rng.IntN(7))
	}
	return trace(t, b.String())
}

// goldenReplay is what the node-capped replay decided: the result and
// where and when every job ran.
type goldenReplay struct {
	Result     Result            `json:"result"`
	Placements map[string]placed `json:"placements"`
}

// placed is a Placement without its explanation (the scheduler's own
// tests compare those).
type placed struct {
	Node  string    `json:"node"`
	GPUs  []int     `json:"gpus"`
	Start time.Time `json:"start"`
}

// TestNodeCapReplayGolden replays a synthetic trace on 6 H100 nodes under
// energy+cap with a cluster budget, a per-node cap that binds (2,600 W,
// below 8 GPUs at the balanced point) and a day window that lowers the
// budget, and compares every result and placement with the recorded ones
// (testdata/nodecap-replay.golden.json, written by this test with -update
// before admission under node caps was memoised): the memo must change no
// decision. Floats compare exactly: the same decisions give the same bits.
func TestNodeCapReplayGolden(t *testing.T) {
	jobs := nodeCapTrace(t, 400)
	b := &api.PowerBudget{DefaultW: 9000, NodeMaxW: 2600,
		Windows: []api.BudgetWindow{{Start: "0 8 * * *", End: "0 20 * * *", Watts: 6000}}}
	r, err := Run(jobs, Config{Cluster: Uniform(6, "h100"), Policy: pol(t, "energy+cap"), Budget: b, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	got := goldenReplay{Placements: map[string]placed{}}
	for id, p := range r.Placements {
		got.Placements[id] = placed{Node: p.Node, GPUs: p.GPUs, Start: p.Start}
	}
	r.Placements = nil
	got.Result = r
	path := filepath.Join("testdata", "nodecap-replay.golden.json")
	if *updateGolden {
		data, err := json.MarshalIndent(got, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d jobs, %d placements", path, r.Jobs, len(got.Placements))
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with go test ./scheduler/sim -run NodeCapReplayGolden -update)", err)
	}
	var want goldenReplay
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Round-trip got through JSON too, so that both sides have the same
	// representation (times in UTC, nil and empty slices alike).
	data, err = json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var gotJSON goldenReplay
	if err := json.Unmarshal(data, &gotJSON); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", gotJSON.Result) != fmt.Sprintf("%+v", want.Result) {
		t.Errorf("result changed:\n got %+v\nwant %+v", gotJSON.Result, want.Result)
	}
	if len(gotJSON.Placements) != len(want.Placements) {
		t.Errorf("%d placements, want %d", len(gotJSON.Placements), len(want.Placements))
	}
	diffs := 0
	for id, w := range want.Placements {
		g, ok := gotJSON.Placements[id]
		gs, ws := fmt.Sprint(g), fmt.Sprint(w)
		if !ok || gs != ws {
			if diffs++; diffs <= 5 {
				t.Errorf("job %s placed\n got %s\nwant %s", id, gs, ws)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d placements changed", diffs, len(want.Placements))
	}
}
