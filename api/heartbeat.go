package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// DecodeHeartbeat reads one heartbeat strictly (unknown fields and trailing
// data are refused) and checks the values a scheduler relies on: GPU indices
// and UUIDs unique, numbers finite and not negative, job reports with an id
// and a known state.
func DecodeHeartbeat(r io.Reader) (Heartbeat, error) {
	var hb Heartbeat
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hb); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return Heartbeat{}, errors.New("heartbeat: trailing data after the JSON body; send one heartbeat per request")
	}
	if err := hb.Validate(); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	return hb, nil
}

// Validate checks a heartbeat's values; see DecodeHeartbeat.
func (hb *Heartbeat) Validate() error {
	idx, uuids := map[int]bool{}, map[string]bool{}
	for i, g := range hb.GPUs {
		at := fmt.Sprintf("gpus[%d]", i)
		switch {
		case g.Index < 0:
			return &FieldError{Field: at + ".index", Msg: fmt.Sprintf("%d: must be 0 or more", g.Index)}
		case idx[g.Index]:
			return &FieldError{Field: at + ".index", Msg: fmt.Sprintf("%d appears twice; each GPU once", g.Index)}
		case g.UUID == "":
			return &FieldError{Field: at + ".uuid", Msg: "required: the GPU's NVML UUID"}
		case uuids[g.UUID]:
			return &FieldError{Field: at + ".uuid", Msg: fmt.Sprintf("%q appears twice; each GPU once", g.UUID)}
		}
		idx[g.Index], uuids[g.UUID] = true, true
		for _, f := range []struct {
			name string
			v    float64
		}{{"utilization", g.Utilization}, {"power_w", g.PowerW}, {"limit_w", g.LimitW},
			{"min_limit_w", g.MinLimitW}, {"max_limit_w", g.MaxLimitW}, {"energy_j", g.EnergyJ},
			{"memory_used_mib", g.MemoryUsedMiB}, {"memory_total_mib", g.MemoryTotalMiB}} {
			if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
				return &FieldError{Field: at + "." + f.name, Msg: fmt.Sprintf("%v: must be a finite number, 0 or more", f.v)}
			}
		}
		if g.Utilization > 1 {
			return &FieldError{Field: at + ".utilization", Msg: fmt.Sprintf("%v: a fraction, 0..1", g.Utilization)}
		}
	}
	for i, j := range hb.Jobs {
		at := fmt.Sprintf("jobs[%d]", i)
		switch j.State {
		case StateRunning, StateSucceeded, StateFailed, StatePreempted, StateCancelled:
		default:
			return &FieldError{Field: at + ".state", Msg: fmt.Sprintf("%q: use running, succeeded, failed, preempted or cancelled", j.State)}
		}
		if j.ID == "" {
			return &FieldError{Field: at + ".id", Msg: "required: the job's id"}
		}
		if p := j.Progress; p != nil && (math.IsNaN(p.Fraction) || p.Fraction < 0 || p.Fraction > 1) {
			return &FieldError{Field: at + ".progress.fraction", Msg: fmt.Sprintf("%v: a fraction, 0..1", p.Fraction)}
		}
	}
	return nil
}
