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

// Every shipped power budget compiles, as PUT /api/v1/power/budget and
// simulate --budget read it.
func TestBudgetExamplesCompile(t *testing.T) {
	files, _ := filepath.Glob("budget-*.json")
	if len(files) < 2 {
		t.Fatalf("found %d budget examples, want at least 2", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b api.PowerBudget
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, err := power.CompileBudget(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Every shipped tariff parses, as PUT /api/v1/tariff and --tariff read it.
func TestTariffExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("tariff-*.json")
	if len(files) < 2 {
		t.Fatalf("found %d tariff examples, want at least 2", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tariff.Parse(data); err != nil {
			t.Errorf("%s: %v", f, err)
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
