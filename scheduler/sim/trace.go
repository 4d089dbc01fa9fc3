package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Job is one trace row.
type Job struct {
	ID        string
	SubmitS   int64
	DurationS int64
	GPUs      int
	User      string
}

// ReadTrace reads a trace CSV: the columns job_id, submit_time_s,
// duration_s, num_gpus and user (found by name; others are ignored). Rows
// must be sorted by submit_time_s, as the traces are.
func ReadTrace(r io.Reader) ([]Job, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read trace header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	need := []string{"job_id", "submit_time_s", "duration_s", "num_gpus"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("trace header %q lacks column %q: a trace needs %s (see ../shared/traces/README.md)",
				strings.Join(head, ","), n, strings.Join(need, ", "))
		}
	}
	userCol, hasUser := col["user"]
	var jobs []Job
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace line %d: %w", line, err)
		}
		field := func(name string) string {
			if i := col[name]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		j := Job{ID: field("job_id")}
		num := func(name string) (int64, error) {
			v, err := strconv.ParseFloat(field(name), 64)
			// NaN and huge values would wrap to negative int64s (found by
			// FuzzReadTrace): refuse them with the negatives.
			if err != nil || !(v >= 0 && v <= 1<<53) {
				return 0, fmt.Errorf("trace line %d: %s = %q is not a number in 0..2^53", line, name, field(name))
			}
			return int64(v), nil
		}
		if j.SubmitS, err = num("submit_time_s"); err != nil {
			return nil, err
		}
		if j.DurationS, err = num("duration_s"); err != nil {
			return nil, err
		}
		g, err := num("num_gpus")
		if err != nil {
			return nil, err
		}
		j.GPUs = int(g)
		if hasUser && userCol < len(rec) {
			j.User = strings.TrimSpace(rec[userCol])
		}
		if n := len(jobs); n > 0 && j.SubmitS < jobs[n-1].SubmitS {
			return nil, fmt.Errorf("trace line %d: submit_time_s %d is before the previous row's %d; sort the trace by submit_time_s",
				line, j.SubmitS, jobs[n-1].SubmitS)
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil, errors.New("trace has no rows")
	}
	return jobs, nil
}

// NodeSpec is one node of a virtual cluster.
type NodeSpec struct {
	Name string
	GPUs int
	// Kind is a GPU kind power.ModelFor knows (h100, h200, a100).
	Kind string
}

// Uniform is a cluster of n nodes of 8 GPUs of one kind, named
// node-0001 and up (so that name order is number order).
func Uniform(n int, kind string) []NodeSpec {
	out := make([]NodeSpec, n)
	for i := range out {
		out[i] = NodeSpec{Name: fmt.Sprintf("node-%04d", i+1), GPUs: 8, Kind: kind}
	}
	return out
}

// ReadCluster reads a node list CSV with the columns name (or sn), gpus (or
// gpu) and model (h100, h200 or a100).
func ReadCluster(r io.Reader) ([]NodeSpec, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read cluster file: %w", err)
	}
	if len(recs) < 2 {
		return nil, errors.New("cluster file: needs a header (name,gpus,model) and at least one node")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(h)] = i
	}
	pick := func(names ...string) (int, error) {
		for _, n := range names {
			if i, ok := col[n]; ok {
				return i, nil
			}
		}
		return 0, fmt.Errorf("cluster file: header lacks column %q; use name,gpus,model", names[0])
	}
	ni, err := pick("name", "sn")
	if err != nil {
		return nil, err
	}
	gi, err := pick("gpus", "gpu")
	if err != nil {
		return nil, err
	}
	mi, err := pick("model")
	if err != nil {
		return nil, err
	}
	var out []NodeSpec
	seen := map[string]bool{}
	for i, rec := range recs[1:] {
		if max(ni, gi, mi) >= len(rec) {
			return nil, fmt.Errorf("cluster file line %d: too few columns", i+2)
		}
		g, err := strconv.Atoi(strings.TrimSpace(rec[gi]))
		if err != nil || g <= 0 {
			return nil, fmt.Errorf("cluster file line %d: gpus = %q must be a whole number > 0", i+2, rec[gi])
		}
		name := strings.TrimSpace(rec[ni])
		if name == "" || seen[name] {
			return nil, fmt.Errorf("cluster file line %d: node name %q is empty or repeated", i+2, name)
		}
		seen[name] = true
		out = append(out, NodeSpec{Name: name, GPUs: g, Kind: strings.ToLower(strings.TrimSpace(rec[mi]))})
	}
	return out, nil
}
