package web

import (
	"testing"

	"github.com/joulehq/joule/api"
)

// powerS says how a job's GPUs are powered, from what the job record holds.
func TestPowerS(t *testing.T) {
	curve := &api.PowerCurve{UncappedW: 448, MaxThroughput: 100, A: 0.36, K: 5, Samples: 4}
	inherited := *curve
	inherited.From = "j-3"
	for _, tc := range []struct {
		name string
		job  api.Job
		want string
	}{
		{"queued, no curve yet", api.Job{ID: "j-9", Spec: api.JobSpec{EnergyPolicy: api.PolicyBalanced}}, "balanced"},
		{"running, no curve yet", api.Job{ID: "j-9", State: api.StateRunning, Spec: api.JobSpec{EnergyPolicy: api.PolicyBalanced}, PowerLimitW: 700},
			"balanced · limit 700 W per GPU · no profile yet"},
		{"running at its balanced limit",
			// At r = 0.36 + 0.64 x 0.9^5 the curve gives 0.9: 330.6 W of 448.
			api.Job{ID: "j-9", Spec: api.JobSpec{EnergyPolicy: api.PolicyBalanced}, PowerLimitW: 448 * (0.36 + 0.64*0.59049), PowerCurve: curve},
			"balanced · limit 331 W per GPU (90% of its uncapped speed) · profile: 4 limits fitted, uncapped 448 W, a 0.36, k 5.00"},
		{"uncapped, with an inherited curve",
			api.Job{ID: "j-9", Spec: api.JobSpec{EnergyPolicy: api.PolicyPerformance}, PowerLimitW: 700, PowerCurve: &inherited},
			"performance · limit 700 W per GPU (100% of its uncapped speed) · profile: 4 limits fitted, uncapped 448 W, a 0.36, k 5.00 (from job j-3)"},
		{"hurried while others wait",
			api.Job{ID: "j-9", State: api.StateRunning, Spec: api.JobSpec{EnergyPolicy: api.PolicyBalanced}, PowerLimitW: 700, PowerNote: "full speed while other jobs wait for GPUs"},
			"balanced · limit 700 W per GPU · full speed while other jobs wait for GPUs · no profile yet"},
		{"profiling failed",
			api.Job{ID: "j-9", Spec: api.JobSpec{EnergyPolicy: api.PolicyEfficient}, PowerLimitW: 700, ProfileError: "throughput did not fall"},
			"efficient · limit 700 W per GPU · no profile: throughput did not fall"},
	} {
		if got := powerS(tc.job); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
