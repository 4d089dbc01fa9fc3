package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Job-spec parsing never panics; whatever it accepts is valid, and survives a
// JSON round trip unchanged. A refusal is an error that names a field or the
// document. Seeds: testdata/fuzz/FuzzParseJobSpec and the cases below;
// scripts/fuzz.sh runs it for a set time.
func FuzzParseJobSpec(f *testing.F) {
	for _, s := range []string{
		"name: a\nuser: b\nworkload: {synthetic: {duration: 10m, utilization: 0.5}}",
		`{"name":"iris-mlp","user":"alice","gpus":1,"priority":70,"walltime":"1h","workload":{"train":{"dataset":{"path":"/d/iris.csv","label":"species"},"model":{"hidden":[64,32]},"optimizer":{"name":"adam","lr":0.01},"epochs":5}}}`,
		"name: x\nuser: y\ngpus: -1\nworkload: {synthetic: {duration: 1s, utilization: 2}}",
		"name: x\nuser: y\ndeadline: 2026-01-01T00:00:00Z\nworkload: {train: {dataset: {format: mnist, path: /m}}}",
		"- a\n- b",
		"name: &a x\nuser: *a",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseJobSpec(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("accepted a spec that does not validate: %v", err)
		}
		js, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("accepted spec does not encode: %v", err)
		}
		again, err := DecodeJobSpec(bytes.NewReader(js))
		if err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, js)
		}
		if !reflect.DeepEqual(normalise(spec), normalise(again)) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", spec, again)
		}
	})
}

// normalise drops what a JSON round trip may legitimately change (time zone
// representation, nil versus empty slices).
func normalise(s JobSpec) JobSpec {
	if s.Deadline != nil {
		d := s.Deadline.UTC()
		s.Deadline = &d
	}
	if t := s.Workload.Train; t != nil && len(t.Model.Hidden) == 0 {
		c := *t
		c.Model.Hidden = nil
		s.Workload.Train = &c
	}
	return s
}

// Heartbeat decoding never panics; whatever it accepts validates and
// round-trips; a refusal names a field.
func FuzzDecodeHeartbeat(f *testing.F) {
	for _, s := range []string{
		`{"gpus":[],"jobs":[]}`,
		`{"gpus":[{"index":0,"uuid":"GPU-0","model":"H100","utilization":0.5,"power_w":300,"limit_w":700,"energy_j":1e6}],"jobs":[{"id":"j-1","state":"running","progress":{"epoch":1,"fraction":0.1}}]}`,
		`{"gpus":[{"index":0,"uuid":"a"},{"index":0,"uuid":"b"}]}`,
		`{"gpus":[{"index":1,"uuid":"a","power_w":-1}]}`,
		`{"jobs":[{"id":"j-2","state":"succeeded","metrics":{"epochs_run":3,"confusion_matrix":[[1,0],[0,1]]}}]}`,
		`{"gpus":null}{}`,
		`[1,2]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hb, err := DecodeHeartbeat(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "heartbeat: ") {
				t.Fatalf("error does not say it is the heartbeat: %v", err)
			}
			return
		}
		if err := hb.Validate(); err != nil {
			t.Fatalf("accepted a heartbeat that does not validate: %v", err)
		}
		js, err := json.Marshal(hb)
		if err != nil {
			t.Fatalf("accepted heartbeat does not encode: %v", err)
		}
		if _, err := DecodeHeartbeat(bytes.NewReader(js)); err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, js)
		}
	})
}
