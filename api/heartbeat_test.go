package api

import (
	"strconv"
	"strings"
	"testing"
)

// TestHeartbeatValidateDuplicates checks that a repeated GPU index or UUID is
// refused with the path of the second one, both for a node's usual handful of
// GPUs and for a list of 40.
func TestHeartbeatValidateDuplicates(t *testing.T) {
	gpus := func(n int) []GPU {
		gs := make([]GPU, n)
		for i := range gs {
			gs[i] = GPU{Index: i, UUID: "GPU-" + strconv.Itoa(i)}
		}
		return gs
	}
	for _, n := range []int{8, 40} {
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

// BenchmarkDecodeHeartbeat decodes and validates an 8-GPU heartbeat, the one
// schedulerd handles a thousand times a second under scripts/load.sh.
func BenchmarkDecodeHeartbeat(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"gpus":[`)
	for i := range 8 {
		if i > 0 {
			body.WriteString(",")
		}
		body.WriteString(`{"index":` + strconv.Itoa(i) + `,"uuid":"GPU-load-0001-` + strconv.Itoa(i) +
			`","model":"NVIDIA H100 80GB HBM3","utilization":0.8,"power_w":560,"limit_w":700,"min_limit_w":200,"max_limit_w":700,"energy_j":12345.6,"temperature_c":64,"memory_used_mib":48000,"memory_total_mib":81559}`)
	}
	body.WriteString(`],"jobs":[{"id":"j-1","state":"running"}]}`)
	js := body.String()
	if _, err := DecodeHeartbeat(strings.NewReader(js)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeHeartbeat(strings.NewReader(js)); err != nil {
			b.Fatal(err)
		}
	}
}
