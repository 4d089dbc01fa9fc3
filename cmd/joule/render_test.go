package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

func TestRenderQueue(t *testing.T) {
	jobs := []api.Job{
		{ID: "j-6", Spec: api.JobSpec{Name: "resnet", User: "bob", Project: "vision", GPUs: 8}, State: api.StateRunning,
			Node: "node-a", SubmittedAt: *ago(2 * time.Hour), EnergyJ: 3.2e6},
		{ID: "j-7", Spec: api.JobSpec{Name: "iris-mlp", User: "alice", Project: "default", GPUs: 1}, State: api.StateQueued,
			Reason: "waiting for 1 free GPU", SubmittedAt: *ago(12 * time.Second)},
		{ID: "j-10", Spec: api.JobSpec{Name: "tiny", User: "carol", GPUs: 0}, State: api.StateFailed,
			Reason: "exit status 1", SubmittedAt: *ago(26 * time.Hour), EnergyJ: 512},
	}
	var b bytes.Buffer
	if err := renderQueue(&b, jobs, now); err != nil {
		t.Fatal(err)
	}
	want := `ID    NAME      USER   PROJECT  STATE    GPUS  NODE    ENERGY  AGE   REASON
j-6   resnet    bob    vision   running  8     node-a  3.2 MJ  2h    -
j-7   iris-mlp  alice  default  queued   1     -       0 J     12s   waiting for 1 free GPU
j-10  tiny      carol  -        failed   0     -       512 J   1d2h  exit status 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	if err := renderQueue(&b, nil, now); err != nil || !strings.HasPrefix(b.String(), "ID") || strings.Count(b.String(), "\n") != 1 {
		t.Errorf("empty queue: %q, %v", b.String(), err)
	}
}

func TestRenderNodes(t *testing.T) {
	nodes := []api.Node{
		{Name: "node-a", State: api.NodeUp, LastHeartbeat: *ago(2 * time.Second), GPUs: []api.GPU{
			{Index: 0, Model: "H100", Utilization: 0.973, PowerW: 612.4, LimitW: 700, EnergyJ: 81.4e6, TemperatureC: 71, MemoryUsedMiB: 62669, MemoryTotalMiB: 81920},
			{Index: 1, Model: "H100", PowerW: 71, LimitW: 200, EnergyJ: 950, TemperatureC: 34, MemoryUsedMiB: 512, MemoryTotalMiB: 81920},
		}},
		{Name: "node-b", State: api.NodeDown, LastHeartbeat: *ago(10 * time.Minute)},
		{Name: "node-c", State: api.NodeDown},
	}
	var b bytes.Buffer
	if err := renderNodes(&b, nodes, now); err != nil {
		t.Fatal(err)
	}
	want := `NODE    STATE  GPU  MODEL  UTIL  POWER  LIMIT  ENERGY   TEMP  MEMORY         SEEN
node-a  up     0    H100   97%   612 W  700 W  81.4 MJ  71°C  61.2/80.0 GiB  2s ago
node-a  up     1    H100   0%    71 W   200 W  950 J    34°C  0.5/80.0 GiB   2s ago
node-b  down   -    -      -     -      -      -        -     -              10m ago
node-c  down   -    -      -     -      -      -        -     -              never
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRenderStatus(t *testing.T) {
	acc, f1 := 0.9667, 0.95
	running := api.Job{
		ID: "j-7",
		Spec: api.JobSpec{Name: "iris-mlp", User: "alice", Project: "default", GPUs: 1, Priority: 50,
			EnergyPolicy: api.PolicyEfficient, Deferrable: true, Deadline: ago(-6 * time.Hour),
			Walltime: &api.Duration{Duration: 2 * time.Hour},
			Workload: api.Workload{Train: &api.TrainSpec{
				Dataset:   api.DatasetSpec{Format: "csv", Path: "/data/iris.csv"},
				Model:     api.ModelSpec{Hidden: []int{32, 16}, Activation: "relu"},
				Optimizer: api.OptimizerSpec{Name: "adam", LR: 0.001}, BatchSize: 64, Epochs: 20}}},
		State: api.StateRunning, Node: "node-a", GPUIndices: []int{0, 1},
		SubmittedAt: *ago(10 * time.Minute), StartedAt: ago(8 * time.Minute), EnergyJ: 41300,
		Progress: &api.Progress{Epoch: 4, Epochs: 20, Step: 380, Loss: 0.21312, SamplesPerS: 5120, Fraction: 0.2},
	}
	var b bytes.Buffer
	if err := renderStatus(&b, running, now); err != nil {
		t.Fatal(err)
	}
	want := `ID:            j-7
Name:          iris-mlp
User:          alice
Project:       default
State:         running
GPUs:          1
Node:          node-a (GPUs 0,1)
Priority:      50
Energy policy: efficient
Deferrable:    yes: may wait for a cheaper or cleaner window
Deadline:      2026-11-28 18:00:00 UTC (in 6h)
Walltime:      2h0m0s
Workload:      train on csv /data/iris.csv, hidden 32,16 relu, adam lr 0.001, batch 64, 20 epochs
Submitted:     2026-11-28 11:50:00 UTC (10m ago)
Started:       2026-11-28 11:52:00 UTC (8m ago)
Running for:   8m
Energy:        41.3 kJ (0.0115 kWh)
Progress:      epoch 4/20, step 380, loss 0.2131, 5120 samples/s, 20% done
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	done := running
	done.State, done.Progress, done.FinishedAt = api.StateSucceeded, nil, ago(time.Minute)
	done.Metrics = &api.Metrics{Task: "multiclass", EpochsRun: 20, TrainLoss: 0.05, ValLoss: 0.08, ValAccuracy: 0.97,
		TestAccuracy: &acc, MacroF1: &f1, SamplesPerS: 5000, DurationS: 420.5, Device: "cuda:0",
		ConfusionMatrix: [][]int{{10, 0, 0}, {0, 9, 1}, {0, 0, 10}}}
	b.Reset()
	if err := renderStatus(&b, done, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"State:         succeeded\n",
		"Ran for:       7m\n",
		"Finished:      2026-11-28 11:59:00 UTC (1m ago)\n",
		"Metrics:\n  Task:                multiclass\n",
		"  Test accuracy:       0.9667\n",
		"  Macro F1:            0.95\n",
		"  Duration:            7m0.5s\n",
		"  Device:              cuda:0\n",
		"Confusion matrix (rows: true class, columns: predicted):\n",
		"    10  0  0\n     0  9  1\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("finished status lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Progress") || strings.Contains(b.String(), "MSE") {
		t.Errorf("finished status shows progress or regression metrics:\n%s", b.String())
	}

	queued := api.Job{ID: "j-8", Spec: api.JobSpec{Name: "s", User: "u", GPUs: 2,
		Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: 10 * time.Minute}, Utilization: 0.9}}},
		State: api.StateQueued, Reason: "waiting for 2 free GPUs on one node", SubmittedAt: *ago(30 * time.Second)}
	b.Reset()
	if err := renderStatus(&b, queued, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Reason:        waiting for 2 free GPUs on one node\n", "Workload:      synthetic, 10m0s at 90% utilisation\n", "Waiting for:   30s\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("queued status lacks %q:\n%s", want, b.String())
		}
	}
}

func TestFormat(t *testing.T) {
	energy := map[float64]string{0: "0 J", 999: "999 J", 1000: "1.0 kJ", 41300: "41.3 kJ", 999949: "999.9 kJ", 3.2e6: "3.2 MJ", 1.8e12: "1800000.0 MJ"}
	for j, want := range energy {
		if got := formatEnergy(j); got != want {
			t.Errorf("formatEnergy(%g) = %q, want %q", j, got, want)
		}
	}
	ages := map[time.Duration]string{-time.Second: "0s", 0: "0s", 59 * time.Second: "59s", time.Minute: "1m",
		59*time.Minute + 59*time.Second: "59m", time.Hour: "1h", 3*time.Hour + 20*time.Minute: "3h20m",
		24 * time.Hour: "1d", 53 * time.Hour: "2d5h"}
	for d, want := range ages {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDescribeProgress(t *testing.T) {
	tests := []struct {
		p    api.Progress
		want string
	}{
		{api.Progress{Fraction: 0.09}, "9% done"},
		{api.Progress{Epoch: 4, Epochs: 20, Step: 380, Loss: 0.21312, SamplesPerS: 5120, Fraction: 0.2},
			"epoch 4/20, step 380, loss 0.2131, 5120 samples/s, 20% done"},
		{api.Progress{Epoch: 0, Epochs: 10, Fraction: 0}, "epoch 0/10, 0% done"},
		{api.Progress{Epoch: 2, Step: 10, Loss: 1.5}, "epoch 2, step 10, loss 1.5, 0% done"},
	}
	for _, tt := range tests {
		if got := describeProgress(&tt.p); got != tt.want {
			t.Errorf("describeProgress(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestRenderStatusPlacement(t *testing.T) {
	j := api.Job{ID: "j-9", Spec: api.JobSpec{Name: "x", User: "bob", GPUs: 8, Priority: 50},
		State: api.StateRunning, Node: "node-b", GPUIndices: []int{0, 1, 2, 3, 4, 5, 6, 7},
		SubmittedAt: *ago(time.Minute), StartedAt: ago(time.Minute),
		Placement: &api.Placement{Policy: "energy", Evaluated: 3, Candidates: []api.Candidate{
			{Node: "node-b", Power: "on", Score: 3.01, Parts: []api.ScorePart{{Scorer: "energy", Score: 1, Weight: 2}, {Scorer: "binpack", Score: 1, Weight: 1}, {Scorer: "firstfit", Score: 0.5, Weight: 0.01}}},
			{Node: "node-c", Power: "suspended", Score: 1.3, Parts: []api.ScorePart{{Scorer: "energy", Score: 0.15, Weight: 2}, {Scorer: "binpack", Score: 1, Weight: 1}, {Scorer: "firstfit", Score: 0.25, Weight: 0.01}}},
		}}}
	var b bytes.Buffer
	if err := renderStatus(&b, j, now); err != nil {
		t.Fatal(err)
	}
	want := `
Placement (policy energy, 3 nodes evaluated; best first):
  NODE    POWER      ENERGY    BINPACK   FIRSTFIT     SCORE
  node-b  on         1.000 x2  1.000 x1  0.500 x0.01  3.010
  node-c  suspended  0.150 x2  1.000 x1  0.250 x0.01  1.300
`
	if got := b.String(); !strings.HasSuffix(got, want) {
		t.Errorf("got\n%s\nwant it to end with\n%s", got, want)
	}
}
