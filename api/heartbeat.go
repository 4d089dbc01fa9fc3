package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
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

// gpuNumberFields names the GPU's numbers Validate checks, in its order.
var gpuNumberFields = [...]string{"utilization", "power_w", "limit_w", "min_limit_w", "max_limit_w", "energy_j", "memory_used_mib", "memory_total_mib"}

// Validate checks a heartbeat's values; see DecodeHeartbeat.
func (hb *Heartbeat) Validate() error {
	idx, uuids := map[int]bool{}, map[string]bool{}
	for i, g := range hb.GPUs {
		at := "gpus[" + strconv.Itoa(i) + "]" // no fmt: this runs for every GPU of every heartbeat
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
		for k, v := range [...]float64{g.Utilization, g.PowerW, g.LimitW, g.MinLimitW, g.MaxLimitW, g.EnergyJ, g.MemoryUsedMiB, g.MemoryTotalMiB} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return &FieldError{Field: at + "." + gpuNumberFields[k], Msg: fmt.Sprintf("%v: must be a finite number, 0 or more", v)}
			}
		}
		if g.Utilization > 1 {
			return &FieldError{Field: at + ".utilization", Msg: fmt.Sprintf("%v: a fraction, 0..1", g.Utilization)}
		}
	}
	for i, j := range hb.Jobs {
		at := "jobs[" + strconv.Itoa(i) + "]"
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
