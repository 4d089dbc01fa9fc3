package api

import (
	"strings"
	"testing"
	"time"
)

const goodYAML = `
name: iris-mlp
user: alice
project: research
gpus: 1
priority: 70
walltime: 2h
deferrable: true
deadline: 2026-12-01T08:00:00Z
energy_policy: efficient
workload:
  train:
    dataset: {format: csv, path: /data/iris.csv, test_path: /data/iris_test.csv, label: label}
    preprocess: {impute: mean, normalize: zscore, pca_components: 0}
    model: {hidden: [64, 32], activation: relu, dropout: 0}
    optimizer: {name: adam, lr: 0.001}
    batch_size: 64
    epochs: 30
    validation_split: 0.1
    seed: 1
`

func TestParseJobSpecYAMLAndJSONAgree(t *testing.T) {
	y, err := ParseJobSpec([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	if y.Priority != 70 || y.Walltime.Duration != 2*time.Hour || !y.Deferrable ||
		y.Deadline.Format(time.RFC3339) != "2026-12-01T08:00:00Z" || y.Workload.Train.Model.Hidden[1] != 32 {
		t.Fatalf("parsed %+v", y)
	}
	j, err := ParseJobSpec([]byte(`{"name":"iris-mlp","user":"alice","project":"research","gpus":1,"priority":70,
	  "walltime":"2h","deferrable":true,"deadline":"2026-12-01T08:00:00Z","energy_policy":"efficient",
	  "workload":{"train":{"dataset":{"format":"csv","path":"/data/iris.csv","test_path":"/data/iris_test.csv","label":"label"},
	  "preprocess":{"impute":"mean","normalize":"zscore"},"model":{"hidden":[64,32],"activation":"relu"},
	  "optimizer":{"name":"adam","lr":0.001},"batch_size":64,"epochs":30,"validation_split":0.1,"seed":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, y), mustJSON(t, j); a != b {
		t.Fatalf("YAML and JSON differ:\n%s\n%s", a, b)
	}
}

func TestDefaults(t *testing.T) {
	s, err := ParseJobSpec([]byte("name: a\nuser: b\nworkload: {synthetic: {duration: 10m, utilization: 0.5}}"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Priority != 50 || s.Project != "default" || s.EnergyPolicy != PolicyBalanced || s.GPUs != 0 {
		t.Fatalf("defaults: %+v", s)
	}
	z, err := ParseJobSpec([]byte("name: a\nuser: b\npriority: 0\nworkload: {synthetic: {duration: 1s, utilization: 1}}"))
	if err != nil || z.Priority != 0 {
		t.Fatalf("an explicit priority 0 must stay 0: %v %v", z.Priority, err)
	}
}

func TestBadSpecsNameTheField(t *testing.T) {
	base := "name: a\nuser: b\n"
	syn := "workload: {synthetic: {duration: 10m, utilization: 0.5}}\n"
	tests := []struct{ name, doc, want string }{
		{"malformed", "name: [a", "not valid YAML or JSON"},
		{"unknown field", base + syn + "gpu: 2\n", `unknown field "gpu"`},
		{"unknown nested field", base + "workload: {synthetic: {duration: 1m, utilization: 0.5, speed: 2}}", `unknown field "speed"`},
		{"negative gpus", base + syn + "gpus: -1\n", "gpus: -1 is negative"},
		{"priority range", base + syn + "priority: 101\n", "priority: 101 is outside 0..100"},
		{"no name", "user: b\n" + syn, "name: required"},
		{"bad name", "name: Big_Job\nuser: b\n" + syn, "name: \"Big_Job\": use lowercase"},
		{"long name", "name: " + strings.Repeat("a", 64) + "\nuser: b\n" + syn, "name: 64 characters; at most 63"},
		{"no user", "name: a\n" + syn, "user: required"},
		{"no workload", base, "workload: required"},
		{"two workloads", base + "workload: {synthetic: {duration: 1m, utilization: 0.5}, train: {dataset: {path: x}}}", "has both"},
		{"bad duration", base + "workload: {synthetic: {duration: 10 minutes, utilization: 0.5}}", "bad duration"},
		{"zero duration", base + "workload: {synthetic: {duration: 0s, utilization: 0.5}}", "workload.synthetic.duration"},
		{"utilization", base + "workload: {synthetic: {duration: 1m, utilization: 1.5}}", "workload.synthetic.utilization"},
		{"energy policy", base + syn + "energy_policy: green\n", "energy_policy: \"green\""},
		{"activation", base + "workload: {train: {dataset: {path: x.csv}, model: {activation: swish}}}", "workload.train.model.activation: \"swish\""},
		{"no dataset", base + "workload: {train: {model: {hidden: [4]}}}", "workload.train.dataset.path: required"},
		{"hidden size", base + "workload: {train: {dataset: {path: x.csv}, model: {hidden: [4, 0]}}}", "workload.train.model.hidden[1]"},
		{"device", base + "workload: {train: {dataset: {path: x.csv}, device: gpu}}", "workload.train.device: \"gpu\": use auto"},
		{"precision", base + "workload: {train: {dataset: {path: x.csv}, precision: fp16}}", "workload.train.precision: \"fp16\": use fp32, tf32 or bf16"},
		{"lr", base + "workload: {train: {dataset: {path: x.csv}, optimizer: {name: sgd, lr: -1}}}", "workload.train.optimizer.lr"},
		{"two documents", `{"name":"a","user":"b","workload":{"synthetic":{"duration":"1m","utilization":0.5}}} {}`, "one job at a time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if strings.HasPrefix(tt.doc, "{") {
				_, err = DecodeJobSpec(strings.NewReader(tt.doc))
			} else {
				_, err = ParseJobSpec([]byte(tt.doc))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	s := JobSpec{Workload: Workload{Train: &TrainSpec{Dataset: DatasetSpec{Path: "data/a.csv", TestPath: "/abs/b.csv"}}}}
	s.ResolvePaths("/specs")
	if s.Workload.Train.Dataset.Path != "/specs/data/a.csv" || s.Workload.Train.Dataset.TestPath != "/abs/b.csv" {
		t.Fatalf("%+v", s.Workload.Train.Dataset)
	}
}

func TestValidateNodeName(t *testing.T) {
	for name, ok := range map[string]bool{"gpu-node-01": true, "sim_h100.2": true, "": false, "a/b": false, "-x": false} {
		if err := ValidateNodeName(name); (err == nil) != ok {
			t.Errorf("ValidateNodeName(%q) = %v", name, err)
		}
	}
}
