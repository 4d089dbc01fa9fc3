package api

import (
	"strconv"
	"strings"
	"testing"
)

// TestHeartbeatValidateDuplicates checks that a repeated GPU index or UUID is
// refused with the path of the second one, both for a node's usual handful of
// GPUs (found by scanning) and for a list longer than smallGPUList (maps).
func TestHeartbeatValidateDuplicates(t *testing.T) {
	gpus := func(n int) []GPU {
		gs := make([]GPU, n)
		for i := range gs {
			gs[i] = GPU{Index: i, UUID: "GPU-" + strconv.Itoa(i)}
		}
		return gs
	}
	for _, n := range []int{8, smallGPUList + 8} {
		last := strconv.Itoa(n - 1)
		for _, tc := range []struct {
			name, want string
			edit       func(gs []GPU)
		}{
			{"distinct", "", func([]GPU) {}},
			{"index twice", "gpus[" + last + "].index: 3 appears twice", func(gs []GPU) { gs[n-1].Index = 3 }},
			{"uuid twice", "gpus[" + last + "].uuid: \"GPU-2\" appears twice", func(gs []GPU) { gs[n-1].UUID = "GPU-2" }},
			{"negative power", "gpus[" + last + "].power_w", func(gs []GPU) { gs[n-1].PowerW = -1 }},
		} {
			t.Run(strconv.Itoa(n)+" GPUs, "+tc.name, func(t *testing.T) {
				hb := Heartbeat{GPUs: gpus(n)}
				tc.edit(hb.GPUs)
				err := hb.Validate()
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("Validate() = %v, want nil", err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
				}
			})
		}
	}
}
