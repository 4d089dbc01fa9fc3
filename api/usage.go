package api

import "time"

// Usage is the energy one job (or, with JobID empty, one node's idle GPUs)
// used on one UTC day, with its cost and CO2. The scheduler emits it per
// heartbeat; storage adds it up per day so that reports over long ranges read
// one row per job and day.
type Usage struct {
	Day     string `json:"day"` // 2006-01-02, UTC
	JobID   string `json:"job_id,omitempty"`
	User    string `json:"user,omitempty"`
	Project string `json:"project,omitempty"`
	Node    string `json:"node"`
	// EnergyJ is measured GPU energy; FacilityEnergyJ is EnergyJ*PUE, on
	// which Cost and CO2G are charged.
	EnergyJ         float64 `json:"energy_j"`
	FacilityEnergyJ float64 `json:"facility_energy_j"`
	Cost            float64 `json:"cost"`
	CO2G            float64 `json:"co2_g"`
}

// Key identifies the row Usage adds into: one per day and job, or per day
// and node for idle energy.
func (u Usage) Key() string {
	if u.JobID == "" {
		return u.Day + "/idle/" + u.Node
	}
	return u.Day + "/job/" + u.JobID
}

// Add sums another usage row's amounts into u.
func (u *Usage) Add(o Usage) {
	u.EnergyJ += o.EnergyJ
	u.FacilityEnergyJ += o.FacilityEnergyJ
	u.Cost += o.Cost
	u.CO2G += o.CO2G
}

// Report groupings.
var ReportGroups = []string{"job", "user", "project", "node", "day"}

// IdleGroup names the group that holds idle energy in reports by job, user
// or project.
const IdleGroup = "(idle)"

// Report answers GET /api/v1/reports/energy.
type Report struct {
	From     string      `json:"from"` // first day, inclusive
	To       string      `json:"to"`   // last day, inclusive
	GroupBy  string      `json:"group_by"`
	Currency string      `json:"currency"`
	Rows     []ReportRow `json:"rows"`
	Total    ReportRow   `json:"total"`
}

// ReportRow is one group's totals.
type ReportRow struct {
	Group           string  `json:"group"`
	EnergyJ         float64 `json:"energy_j"`
	FacilityEnergyJ float64 `json:"facility_energy_j"`
	Cost            float64 `json:"cost"`
	CO2G            float64 `json:"co2_g"`
	// Jobs counts the distinct jobs in the group.
	Jobs int `json:"jobs"`
}

// DailyReport is one stored daily report's listing entry.
type DailyReport struct {
	Day       string    `json:"day"`
	CreatedAt time.Time `json:"created_at"`
	Rows      int       `json:"rows"`
}

// NodeSample is one node's GPU telemetry at one time, kept for the
// dashboard's charts (downsampled, with a retention).
type NodeSample struct {
	T    time.Time   `json:"t"`
	GPUs []GPUSample `json:"gpus"`
}

// GPUSample is one GPU's power, limit and utilisation in a sample.
type GPUSample struct {
	Index       int     `json:"index"`
	PowerW      float64 `json:"power_w"`
	LimitW      float64 `json:"limit_w"`
	Utilization float64 `json:"utilization"`
}

// JobSample is a running job's power (sum over its GPUs) and energy so far.
type JobSample struct {
	T       time.Time `json:"t"`
	PowerW  float64   `json:"power_w"`
	EnergyJ float64   `json:"energy_j"`
	Cost    float64   `json:"cost"`
}
