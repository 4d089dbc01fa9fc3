package storage

import (
	"testing"

	"github.com/joulehq/joule/api"
)

func TestPowerBudgetRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db.PowerBudget(); ok || err != nil {
		t.Fatalf("fresh database: ok %v err %v", ok, err)
	}
	want := api.PowerBudget{DefaultW: 600000, NodeMaxW: 6000, Windows: []api.BudgetWindow{{Start: "0 8 * * 1-5", End: "0 20 * * 1-5", Watts: 400000}}}
	if err := db.SavePowerBudget(want); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, ok, err := db.PowerBudget()
	if err != nil || !ok || got.DefaultW != want.DefaultW || got.NodeMaxW != want.NodeMaxW || len(got.Windows) != 1 || got.Windows[0] != want.Windows[0] {
		t.Fatalf("read back %+v ok %v err %v, want %+v", got, ok, err, want)
	}
}
