package examples

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
)

// Every shipped power budget and tariff is accepted, as PUT
// /api/v1/power/budget and PUT /api/v1/tariff (and simulate's --budget and
// --tariff) read them.
func TestBudgetAndTariffExamplesParse(t *testing.T) {
	for _, tc := range []struct {
		glob  string
		parse func([]byte) error
	}{
		{"budget-*.json", func(data []byte) error {
			var b api.PowerBudget
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				return err
			}
			_, err := power.CompileBudget(b)
			return err
		}},
		{"tariff-*.json", func(data []byte) error { _, err := tariff.Parse(data); return err }},
	} {
		files, _ := filepath.Glob(tc.glob)
		if len(files) < 2 {
			t.Fatalf("found %d examples %s, want at least 2", len(files), tc.glob)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.parse(data); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}

// Every shipped example must parse and point at data that exists.
func TestExamplesAreValid(t *testing.T) {
	specs, err := WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) < 3 {
		t.Fatalf("found %d examples, want at least 3", len(specs))
	}
	for _, p := range specs {
		data, _ := os.ReadFile(p)
		spec, err := api.ParseJobSpec(data)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		spec.ResolvePaths(filepath.Dir(p))
		if tr := spec.Workload.Train; tr != nil {
			for _, f := range []string{tr.Dataset.Path, tr.Dataset.TestPath} {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%s: %v", filepath.Base(p), err)
				}
			}
		}
	}
}
