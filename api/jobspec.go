package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// JobSpec is what a user submits. YAML and JSON files take the same fields;
// unknown fields are rejected.
type JobSpec struct {
	Name         string     `json:"name"`
	User         string     `json:"user"`
	Project      string     `json:"project,omitempty"`
	GPUs         int        `json:"gpus"`
	Priority     int        `json:"priority"`
	Walltime     *Duration  `json:"walltime,omitempty"`
	Deferrable   bool       `json:"deferrable,omitempty"`
	Deadline     *time.Time `json:"deadline,omitempty"`
	EnergyPolicy string     `json:"energy_policy,omitempty"`
	Workload     Workload   `json:"workload"`
}

// Workload holds exactly one kind of work.
type Workload struct {
	Synthetic *SyntheticSpec `json:"synthetic,omitempty"`
	Train     *TrainSpec     `json:"train,omitempty"`
}

// SyntheticSpec is a job that only loads its GPUs for a while: for demos,
// simulations and tests of the scheduler and the power code.
type SyntheticSpec struct {
	Duration    Duration `json:"duration"`
	Utilization float64  `json:"utilization"`
}

// TrainSpec is a deep-learning training job run by the built-in trainer.
type TrainSpec struct {
	Dataset         DatasetSpec    `json:"dataset"`
	Preprocess      PreprocessSpec `json:"preprocess,omitempty"`
	Model           ModelSpec      `json:"model"`
	Optimizer       OptimizerSpec  `json:"optimizer"`
	BatchSize       int            `json:"batch_size,omitempty"`
	Epochs          int            `json:"epochs,omitempty"`
	ValidationSplit float64        `json:"validation_split,omitempty"`
	Seed            int64          `json:"seed,omitempty"`
	// EarlyStopping stops after this many epochs without a better validation
	// loss; 0 turns it off.
	EarlyStopping int `json:"early_stopping,omitempty"`
	// Device is where to train: auto (empty: CUDA when a GPU is usable,
	// else the CPU), cpu, or cuda (fail when no CUDA GPU is usable).
	Device string `json:"device,omitempty"`
	// Precision of the GPU's matrix products: fp32 (empty), tf32 or bf16
	// (tensor cores; data stays FP32). The CPU always computes in FP32.
	Precision string `json:"precision,omitempty"`
}

type DatasetSpec struct {
	Format   string `json:"format"` // csv | mnist
	Path     string `json:"path"`
	TestPath string `json:"test_path,omitempty"`
	Label    string `json:"label,omitempty"` // csv: the label column's name
}

type PreprocessSpec struct {
	Impute            string  `json:"impute,omitempty"`    // drop | mean | median
	Normalize         string  `json:"normalize,omitempty"` // none | zscore | minmax
	PCAComponents     int     `json:"pca_components,omitempty"`
	PCAVariance       float64 `json:"pca_variance,omitempty"` // keep this fraction of variance (0..1)
	VarianceThreshold float64 `json:"variance_threshold,omitempty"`
}

type ModelSpec struct {
	Hidden     []int   `json:"hidden,omitempty"`
	Activation string  `json:"activation,omitempty"` // relu | sigmoid | tanh
	Dropout    float64 `json:"dropout,omitempty"`
	Task       string  `json:"task,omitempty"` // auto | binary | multiclass | regression
}

type OptimizerSpec struct {
	Name        string  `json:"name"` // sgd | adam
	LR          float64 `json:"lr,omitempty"`
	Momentum    float64 `json:"momentum,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty"`
	Schedule    string  `json:"schedule,omitempty"` // none | step | cosine
	StepEpochs  int     `json:"step_epochs,omitempty"`
	Gamma       float64 `json:"gamma,omitempty"`
}

// Energy policies: which operating point a job's GPUs are given.
const (
	PolicyPerformance = "performance"
	PolicyBalanced    = "balanced"
	PolicyEfficient   = "efficient"
)

// FieldError names the field that is wrong and says how to fix it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ParseJobSpec reads a job spec from YAML or JSON (JSON is YAML), fills in the
// defaults, rejects unknown fields and validates the result.
func ParseJobSpec(data []byte) (JobSpec, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return JobSpec{}, fmt.Errorf("job spec is not valid YAML or JSON: %w", err)
	}
	return DecodeJobSpec(bytes.NewReader(js))
}

// DecodeJobSpec reads a JSON job spec strictly, fills in defaults and validates it.
func DecodeJobSpec(r io.Reader) (JobSpec, error) {
	return DecodeJobSpecFor(r, "")
}

// Default fills in the defaults of fields left empty.
func (s *JobSpec) Default() {
	if s.Project == "" {
		s.Project = "default"
	}
	if s.EnergyPolicy == "" {
		s.EnergyPolicy = PolicyBalanced
	}
	if t := s.Workload.Train; t != nil {
		t.Default()
	}
}

// Default fills in the trainer's defaults.
func (t *TrainSpec) Default() {
	if t.Dataset.Format == "" {
		t.Dataset.Format = "csv"
	}
	if t.Dataset.Label == "" && t.Dataset.Format == "csv" {
		t.Dataset.Label = "label"
	}
	if t.Preprocess.Impute == "" {
		t.Preprocess.Impute = "drop"
	}
	if t.Preprocess.Normalize == "" {
		t.Preprocess.Normalize = "zscore"
	}
	if t.Model.Activation == "" {
		t.Model.Activation = "relu"
	}
	if t.Model.Task == "" {
		t.Model.Task = "auto"
	}
	if t.Optimizer.Name == "" {
		t.Optimizer.Name = "adam"
	}
	if t.Optimizer.LR == 0 {
		if t.Optimizer.Name == "sgd" {
			t.Optimizer.LR = 0.01
		} else {
			t.Optimizer.LR = 0.001
		}
	}
	if t.Optimizer.Schedule == "" {
		t.Optimizer.Schedule = "none"
	}
	if t.Optimizer.Gamma == 0 {
		t.Optimizer.Gamma = 0.1
	}
	if t.BatchSize == 0 {
		t.BatchSize = 64
	}
	if t.Epochs == 0 {
		t.Epochs = 10
	}
	if t.Seed == 0 {
		t.Seed = 1
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Validate checks every field and returns the first problem as a *FieldError.
func (s *JobSpec) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	switch {
	case s.Name == "":
		return bad("name", "required: give the job a name such as \"iris-mlp\"")
	case len(s.Name) > 63:
		return bad("name", "%d characters; at most 63", len(s.Name))
	case !nameRE.MatchString(s.Name):
		return bad("name", "%q: use lowercase letters, digits and '-' (not at either end)", s.Name)
	case s.User == "":
		return bad("user", "required: who submits the job, e.g. \"alice\"")
	case !nameRE.MatchString(s.User) || len(s.User) > 63:
		return bad("user", "%q: use lowercase letters, digits and '-', at most 63", s.User)
	case !nameRE.MatchString(s.Project) || len(s.Project) > 63:
		return bad("project", "%q: use lowercase letters, digits and '-', at most 63", s.Project)
	case s.GPUs < 0:
		return bad("gpus", "%d is negative; ask for 0 or more GPUs", s.GPUs)
	case s.GPUs > 1024:
		return bad("gpus", "%d is more than any node has; a job runs on one node", s.GPUs)
	case s.Priority < 0 || s.Priority > 100:
		return bad("priority", "%d is outside 0..100", s.Priority)
	case s.Walltime != nil && s.Walltime.Duration <= 0:
		return bad("walltime", "%s: must be positive, e.g. \"2h\"", s.Walltime.Duration)
	}
	switch s.EnergyPolicy {
	case PolicyPerformance, PolicyBalanced, PolicyEfficient:
	default:
		return bad("energy_policy", "%q: use performance, balanced or efficient", s.EnergyPolicy)
	}
	w := s.Workload
	switch {
	case w.Synthetic == nil && w.Train == nil:
		return bad("workload", "required: give exactly one of synthetic or train")
	case w.Synthetic != nil && w.Train != nil:
		return bad("workload", "has both synthetic and train; give exactly one")
	case w.Synthetic != nil:
		return w.Synthetic.validate()
	default:
		return w.Train.Validate()
	}
}

func (s *SyntheticSpec) validate() error {
	if s.Duration.Duration <= 0 {
		return &FieldError{"workload.synthetic.duration", "must be positive, e.g. \"10m\""}
	}
	if s.Utilization <= 0 || s.Utilization > 1 {
		return &FieldError{"workload.synthetic.utilization", fmt.Sprintf("%g is outside (0, 1]; 0.9 means 90%% busy", s.Utilization)}
	}
	return nil
}

// Validate checks a training spec's fields (not the data, which the trainer
// reads at run time).
func (t *TrainSpec) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: "workload.train." + field, Msg: fmt.Sprintf(format, a...)}
	}
	oneOf := func(v string, allowed ...string) bool {
		for _, a := range allowed {
			if v == a {
				return true
			}
		}
		return false
	}
	d, p, m, o := t.Dataset, t.Preprocess, t.Model, t.Optimizer
	switch {
	case !oneOf(d.Format, "csv", "mnist"):
		return bad("dataset.format", "%q: use csv or mnist", d.Format)
	case d.Path == "":
		return bad("dataset.path", "required: the CSV file, or the directory of MNIST IDX files")
	case !oneOf(p.Impute, "drop", "mean", "median"):
		return bad("preprocess.impute", "%q: use drop, mean or median", p.Impute)
	case !oneOf(p.Normalize, "none", "zscore", "minmax"):
		return bad("preprocess.normalize", "%q: use none, zscore or minmax", p.Normalize)
	case p.PCAComponents < 0:
		return bad("preprocess.pca_components", "%d is negative; 0 turns PCA off", p.PCAComponents)
	case p.PCAVariance < 0 || p.PCAVariance >= 1:
		return bad("preprocess.pca_variance", "%g: give the fraction of variance to keep, in (0, 1), or 0 for off", p.PCAVariance)
	case p.PCAComponents > 0 && p.PCAVariance > 0:
		return bad("preprocess", "pca_components and pca_variance both set; give one")
	case p.VarianceThreshold < 0:
		return bad("preprocess.variance_threshold", "%g is negative", p.VarianceThreshold)
	case !oneOf(m.Activation, "relu", "sigmoid", "tanh"):
		return bad("model.activation", "%q: use relu, sigmoid or tanh", m.Activation)
	case m.Dropout < 0 || m.Dropout >= 1:
		return bad("model.dropout", "%g is outside [0, 1)", m.Dropout)
	case !oneOf(m.Task, "auto", "binary", "multiclass", "regression"):
		return bad("model.task", "%q: use auto, binary, multiclass or regression", m.Task)
	case !oneOf(o.Name, "sgd", "adam"):
		return bad("optimizer.name", "%q: use sgd or adam", o.Name)
	case o.LR <= 0 || o.LR > 10:
		return bad("optimizer.lr", "%g: give a positive learning rate such as 0.001", o.LR)
	case o.Momentum < 0 || o.Momentum >= 1:
		return bad("optimizer.momentum", "%g is outside [0, 1)", o.Momentum)
	case o.WeightDecay < 0:
		return bad("optimizer.weight_decay", "%g is negative", o.WeightDecay)
	case !oneOf(o.Schedule, "none", "step", "cosine"):
		return bad("optimizer.schedule", "%q: use none, step or cosine", o.Schedule)
	case o.Schedule == "step" && o.StepEpochs <= 0:
		return bad("optimizer.step_epochs", "the step schedule needs step_epochs > 0")
	case t.BatchSize < 1:
		return bad("batch_size", "%d: must be at least 1", t.BatchSize)
	case t.Epochs < 1:
		return bad("epochs", "%d: must be at least 1", t.Epochs)
	case t.ValidationSplit < 0 || t.ValidationSplit >= 1:
		return bad("validation_split", "%g is outside [0, 1)", t.ValidationSplit)
	case t.EarlyStopping < 0:
		return bad("early_stopping", "%d is negative; 0 turns it off", t.EarlyStopping)
	case !oneOf(t.Device, "", "auto", "cpu", "cuda"):
		return bad("device", "%q: use auto (CUDA when a GPU is usable, else the CPU), cpu or cuda", t.Device)
	case !oneOf(t.Precision, "", "fp32", "tf32", "bf16"):
		return bad("precision", "%q: use fp32, tf32 or bf16 (the GPU's matrix products)", t.Precision)
	}
	for i, h := range m.Hidden {
		if h < 1 || h > 65536 {
			return bad(fmt.Sprintf("model.hidden[%d]", i), "%d: a layer needs 1..65536 units", h)
		}
	}
	return nil
}

// ValidateNodeName checks a node name as used in URLs and reports.
func ValidateNodeName(name string) error {
	if len(name) == 0 || len(name) > 63 || !nodeRE.MatchString(name) {
		return &FieldError{Field: "node", Msg: fmt.Sprintf("%q: use letters, digits, '-', '_' or '.', at most 63", name)}
	}
	return nil
}

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ResolvePaths makes relative dataset paths absolute, relative to baseDir
// (the spec file's directory), so a spec means the same on every machine
// that reads it.
func (s *JobSpec) ResolvePaths(baseDir string) {
	t := s.Workload.Train
	if t == nil {
		return
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		if a, err := filepath.Abs(filepath.Join(baseDir, p)); err == nil {
			return a
		}
		return p
	}
	t.Dataset.Path = abs(t.Dataset.Path)
	t.Dataset.TestPath = abs(t.Dataset.TestPath)
}

// DecodeJobSpecFor is DecodeJobSpec for a request made with a token: a spec
// without a user gets user, the token's name.
func DecodeJobSpecFor(r io.Reader, user string) (JobSpec, error) {
	spec := JobSpec{Priority: 50}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return JobSpec{}, fmt.Errorf("job spec: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return JobSpec{}, errors.New("job spec: more than one document; submit one job at a time")
	}
	if spec.User == "" {
		spec.User = user
	}
	spec.Default()
	if err := spec.Validate(); err != nil {
		return JobSpec{}, err
	}
	return spec, nil
}
