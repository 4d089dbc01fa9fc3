package scheduler

import (
	"testing"

	"github.com/joulehq/joule/api"
)

// TestLastEnergyJ checks the previous-counter lookup meterEnergy uses: the
// same position, a reordered list, and a GPU the node did not report before.
func TestLastEnergyJ(t *testing.T) {
	last := []api.GPU{{UUID: "a", EnergyJ: 10}, {UUID: "b", EnergyJ: 20}, {UUID: "c", EnergyJ: 30}}
	for _, tc := range []struct {
		name  string
		i     int
		uuid  string
		wantJ float64
		found bool
	}{
		{"same position", 1, "b", 20, true},
		{"reordered", 0, "c", 30, true},
		{"position past the old list", 5, "a", 10, true},
		{"new GPU", 1, "d", 0, false},
	} {
		gotJ, found := lastEnergyJ(last, tc.i, tc.uuid)
		if gotJ != tc.wantJ || found != tc.found {
			t.Errorf("%s: lastEnergyJ(last, %d, %q) = %v, %v; want %v, %v", tc.name, tc.i, tc.uuid, gotJ, found, tc.wantJ, tc.found)
		}
	}
}
