package api

// PowerBudget is the facility's power budget for the GPUs, as set by
// PUT /api/v1/power/budget: DefaultW for the whole cluster, optionally at
// most NodeMaxW on any one node, and windows that override the default while
// they are in force (the first listed wins where they overlap). A zero
// DefaultW means no budget.
type PowerBudget struct {
	DefaultW float64        `json:"default_w"`
	NodeMaxW float64        `json:"node_max_w,omitempty"`
	Windows  []BudgetWindow `json:"windows,omitempty"`
}

// BudgetWindow holds the budget at Watts from each firing of the cron
// expression Start to the next firing of End (robfig/cron syntax, optionally
// prefixed "CRON_TZ=Zone ").
type BudgetWindow struct {
	Start string  `json:"start"`
	End   string  `json:"end"`
	Watts float64 `json:"watts"`
}

// PowerBudgetStatus answers GET /api/v1/power/budget.
type PowerBudgetStatus struct {
	Budget PowerBudget `json:"budget"`
	// WattsNow is the budget in force now (0: none); Window is the index of
	// the window in force, -1 for the default.
	WattsNow float64 `json:"watts_now"`
	Window   int     `json:"window"`
	// MeasuredW is the sum of every up node's GPU draw at its last heartbeat.
	MeasuredW float64 `json:"measured_w"`
	// AllocatedW is the sum of the limits of busy GPUs and the idle draw of
	// the others, as allocated now.
	AllocatedW float64 `json:"allocated_w"`
	// MinDrawW is the least the known GPUs can be held to, the floor below
	// which a budget is refused: every GPU at its minimum limit, or, under a
	// policy that suspends idle nodes, the largest node's GPUs at their
	// minimum limits (suspended nodes draw nothing).
	MinDrawW float64 `json:"min_draw_w"`
	// OverBudgetS is the time the measured draw spent above the budget in
	// force since schedulerd started.
	OverBudgetS float64 `json:"over_budget_s"`
}

// PowerCurve is a job's fitted throughput-versus-power-limit curve:
// MaxThroughput uncapped (at or above UncappedW) and
// MaxThroughput x ((r-A)/(1-A))^(1/K) at r = limit/UncappedW below (see
// power.CurveRel).
type PowerCurve struct {
	UncappedW     float64 `json:"uncapped_w"`
	MaxThroughput float64 `json:"max_throughput"`
	A             float64 `json:"a"`
	K             float64 `json:"k"`
	// Samples is the number of profiled limits it was fitted to.
	Samples int `json:"samples"`
	// From is the job whose profile this is (the job itself, or an earlier
	// run of the same name and project).
	From string `json:"from"`
}

// ProfileSample is one profiled power limit: the throughput reached under
// LimitW (samples/s, or work units/s for synthetic jobs) and the mean draw
// per GPU meanwhile.
type ProfileSample struct {
	LimitW     float64 `json:"limit_w"`
	Throughput float64 `json:"throughput"`
	PowerW     float64 `json:"power_w"`
}
