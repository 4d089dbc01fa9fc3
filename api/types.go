package api

import "time"

// Job states.
const (
	StateQueued    = "queued"
	StateDeferred  = "deferred"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
	StatePreempted = "preempted"
)

// JobStates lists every job state, in a job's usual life order.
var JobStates = []string{StateQueued, StateDeferred, StateRunning, StatePreempted, StateSucceeded, StateFailed, StateCancelled}

// Terminal reports whether a job in this state will never run again.
func Terminal(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCancelled
}

// Job is a submitted job as schedulerd knows it.
type Job struct {
	ID          string     `json:"id"`
	Spec        JobSpec    `json:"spec"`
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	Node        string     `json:"node,omitempty"`
	GPUIndices  []int      `json:"gpu_indices,omitempty"`
	SubmittedAt time.Time  `json:"submitted_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	EnergyJ     float64    `json:"energy_j"`
	// Cost and CO2G are what EnergyJ cost at the tariff in force when it was
	// drawn, facility overhead (PUE) included.
	Cost float64 `json:"cost"`
	CO2G float64 `json:"co2_g"`
	// DeferredUntil is when a deferred job is planned to start.
	DeferredUntil *time.Time `json:"deferred_until,omitempty"`
	Progress      *Progress  `json:"progress,omitempty"`
	Metrics       *Metrics   `json:"metrics,omitempty"`
	// PowerCurve is the job's profiled throughput-versus-limit curve, once
	// known; PowerLimitW the limit its GPUs are given now (0: not running).
	PowerCurve  *PowerCurve `json:"power_curve,omitempty"`
	PowerLimitW float64     `json:"power_limit_w,omitempty"`
	// PowerNote says why the limit is not the job's operating point, when
	// the scheduler chose another ("full speed while jobs wait for GPUs").
	PowerNote string `json:"power_note,omitempty"`
	// ProfileError says why profiling gave no curve (too few points, a
	// refused limit), if it failed.
	ProfileError string `json:"profile_error,omitempty"`
	// GangNodes lists every whole node a multi-node job holds (Node is the
	// first). Only the simulator places such jobs; schedulerd refuses them.
	GangNodes []string `json:"gang_nodes,omitempty"`
	// Stopping is true while the job has been cancelled or preempted but its
	// agent has not yet said it stopped: its GPUs stay held until then. It is
	// stored, so a restarted schedulerd does not give those GPUs away.
	Stopping bool `json:"stopping,omitempty"`
	// Placement explains the decision that placed the job: the best
	// candidate nodes with each scorer's part.
	Placement *Placement `json:"placement,omitempty"`
}

// Placement is the placement metrics of one decision, as Nomad's are: how
// many nodes the filter looked at, and the best candidates with their score
// parts, best first (at most a few).
type Placement struct {
	Policy     string      `json:"policy"`
	Evaluated  int         `json:"evaluated"`
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one node the placement pipeline scored.
type Candidate struct {
	Node string `json:"node"`
	// Score is the weighted sum of the parts; the highest wins.
	Score float64     `json:"score"`
	Parts []ScorePart `json:"parts"`
	// Power is the node's power state when scored (on, suspended, resuming).
	Power string `json:"power,omitempty"`
}

// ScorePart is one scorer's score for a candidate, 0..1, and its weight.
type ScorePart struct {
	Scorer string  `json:"scorer"`
	Score  float64 `json:"score"`
	Weight float64 `json:"weight"`
}

// Progress is a running job's latest progress report.
type Progress struct {
	Epoch       int     `json:"epoch"`
	Epochs      int     `json:"epochs,omitempty"`
	Step        int     `json:"step"`
	Loss        float64 `json:"loss"`
	SamplesPerS float64 `json:"samples_per_s"`
	// Fraction is the share of the job done, 0..1.
	Fraction float64 `json:"fraction"`
}

// Metrics is what a finished training job reports (and writes to metrics.json).
type Metrics struct {
	EpochsRun    int      `json:"epochs_run"`
	TrainLoss    float64  `json:"train_loss"`
	ValLoss      float64  `json:"val_loss"`
	ValAccuracy  float64  `json:"val_accuracy"`
	TestAccuracy *float64 `json:"test_accuracy,omitempty"`
	SamplesPerS  float64  `json:"samples_per_s"`
	DurationS    float64  `json:"duration_s"`
	Device       string   `json:"device"`
	// Task is binary, multiclass or regression.
	Task string `json:"task,omitempty"`
	// RowsDropped and RowsImputed count the cleaning done on the input.
	RowsDropped int `json:"rows_dropped,omitempty"`
	RowsImputed int `json:"rows_imputed,omitempty"`
	// Classification metrics on the test set (or validation set without one).
	Precision       *float64 `json:"precision,omitempty"`
	Recall          *float64 `json:"recall,omitempty"`
	MacroF1         *float64 `json:"macro_f1,omitempty"`
	ConfusionMatrix [][]int  `json:"confusion_matrix,omitempty"`
	// Regression metrics.
	MSE *float64 `json:"mse,omitempty"`
	R2  *float64 `json:"r2,omitempty"`
}

// Node states.
const (
	NodeUp   = "up"
	NodeDown = "down"
)

// Node power states: awake, suspended by the scheduler after an idle
// timeout, or waking up (usable at ReadyAt).
const (
	PowerOn        = "on"
	PowerSuspended = "suspended"
	PowerResuming  = "resuming"
)

// Node is a GPU node as the scheduler sees it.
type Node struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Power is the node's power state (PowerOn when empty); PowerSince when
	// it entered it, ReadyAt when a resuming node is expected to be usable.
	Power         string     `json:"power,omitempty"`
	PowerSince    *time.Time `json:"power_since,omitempty"`
	ReadyAt       *time.Time `json:"ready_at,omitempty"`
	LastHeartbeat time.Time  `json:"last_heartbeat"`
	GPUs          []GPU      `json:"gpus"`
	// EnergyJ is the energy its GPUs drew while holding no job.
	IdleEnergyJ float64 `json:"idle_energy_j"`
	IdleCost    float64 `json:"idle_cost"`
	IdleCO2G    float64 `json:"idle_co2_g"`
}

// GPU is one GPU's identity and latest telemetry.
type GPU struct {
	Index          int     `json:"index"`
	UUID           string  `json:"uuid"`
	Model          string  `json:"model"`
	Utilization    float64 `json:"utilization"` // 0..1
	PowerW         float64 `json:"power_w"`
	LimitW         float64 `json:"limit_w"`
	MinLimitW      float64 `json:"min_limit_w"`
	MaxLimitW      float64 `json:"max_limit_w"`
	EnergyJ        float64 `json:"energy_j"` // the device's total-energy counter
	TemperatureC   float64 `json:"temperature_c"`
	MemoryUsedMiB  float64 `json:"memory_used_mib"`
	MemoryTotalMiB float64 `json:"memory_total_mib"`
	// LimitError is why the agent could not set the limit schedulerd asked
	// for (e.g. NVML_ERROR_NO_PERMISSION without root); empty when it could.
	LimitError string `json:"limit_error,omitempty"`
}

// Heartbeat is what an agent sends every few seconds: its GPUs' telemetry and
// the state of every job it holds.
type Heartbeat struct {
	GPUs []GPU       `json:"gpus"`
	Jobs []JobReport `json:"jobs"`
}

// JobReport is one job's state on the agent.
type JobReport struct {
	ID       string    `json:"id"`
	State    string    `json:"state"` // running, succeeded, failed, preempted
	Reason   string    `json:"reason,omitempty"`
	Progress *Progress `json:"progress,omitempty"`
	Metrics  *Metrics  `json:"metrics,omitempty"`
	// Profile is the job's power profile once the agent has stepped its GPUs
	// through the limits (sent until the job ends); ProfileError says why
	// profiling stopped short.
	Profile      []ProfileSample `json:"profile,omitempty"`
	ProfileError string          `json:"profile_error,omitempty"`
}

// HeartbeatReply is the node's desired state. A lost reply is harmless: the
// next one says the same.
type HeartbeatReply struct {
	// Run lists the jobs placed on the node that the agent's heartbeat did
	// not report running: the ones to start. A reply that is lost is
	// repeated, since the next heartbeat still does not report them.
	Run  []Assignment `json:"run"`
	Stop []string     `json:"stop,omitempty"`
	// Preempt lists jobs to checkpoint and stop; they are requeued and
	// resume from their checkpoint later (e.g. after a peak tariff window).
	Preempt []string `json:"preempt,omitempty"`
	// LimitsW is the power limit per GPU index; absent means leave as is.
	LimitsW map[int]float64 `json:"limits_w,omitempty"`
	// Power is the node's desired power state: PowerSuspended tells the
	// agent to run its suspend command, PowerOn (or empty) to be awake.
	Power string `json:"power,omitempty"`
}

// Assignment tells an agent to run a job on some of its GPUs.
type Assignment struct {
	ID         string   `json:"id"`
	Spec       JobSpec  `json:"spec"`
	GPUIndices []int    `json:"gpu_indices"`
	GPUUUIDs   []string `json:"gpu_uuids"`
	// Profile asks the agent to profile the job's power limits as it starts
	// (the job has no curve yet).
	Profile bool `json:"profile,omitempty"`
}

// SubmitReply answers POST /api/v1/jobs.
type SubmitReply struct {
	ID string `json:"id"`
}

// Error is every error reply's body.
type Error struct {
	Error string `json:"error"`
}

// PredictRequest is the body of POST /api/v1/models/{job_id}/predict: rows of
// feature values by column name, as in the training data.
type PredictRequest struct {
	Rows []map[string]any `json:"rows"`
}

// Prediction is one row's prediction: a class label with the class
// probabilities, or a regression value.
type Prediction struct {
	Label         string             `json:"label,omitempty"`
	Value         *float64           `json:"value,omitempty"`
	Probabilities map[string]float64 `json:"probabilities,omitempty"`
}

// PredictReply answers a PredictRequest, one prediction per row.
type PredictReply struct {
	JobID       string       `json:"job_id"`
	Predictions []Prediction `json:"predictions"`
}
