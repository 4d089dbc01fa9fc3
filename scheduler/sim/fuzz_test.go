package sim

import (
	"strings"
	"testing"
)

// Trace parsing never panics; every accepted row has a submit time, duration
// and GPU count that are whole numbers >= 0, in submit order. Seeds:
// testdata/fuzz/FuzzReadTrace and the cases below; scripts/fuzz.sh runs it.
func FuzzReadTrace(f *testing.F) {
	for _, s := range []string{
		"job_id,submit_time_s,duration_s,num_gpus,user\nj1,0,60,1,alice\nj2,5,3600,8,bob\n",
		"job_id,submit_time_s,duration_s,num_gpus\nj1,0,60.5,2\n",
		"submit_time_s,job_id,num_gpus,duration_s,extra\n1,a,1,1,x\n0,b,1,1,y\n",
		"job_id,submit_time_s,duration_s,num_gpus\nj1,NaN,1,1\n",
		"job_id,submit_time_s,duration_s,num_gpus\nj1,1e300,1,1\n",
		"job_id,submit_time_s,duration_s,num_gpus\nj1,\"0\",-1,1\n",
		"job_id\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		jobs, err := ReadTrace(strings.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for i, j := range jobs {
			if j.SubmitS < 0 || j.DurationS < 0 || j.GPUs < 0 {
				t.Fatalf("row %d accepted with submit %d s, duration %d s, %d GPUs", i, j.SubmitS, j.DurationS, j.GPUs)
			}
			if i > 0 && j.SubmitS < jobs[i-1].SubmitS {
				t.Fatalf("row %d out of order", i)
			}
		}
	})
}
