package power

import (
	"math"
	"testing"
)

func TestMeterAdd(t *testing.T) {
	var m Meter
	steps := []struct {
		uuid     string
		counterJ float64
		wantJ    float64
	}{
		{"GPU-a", 1000, 0},        // first reading: base only
		{"GPU-a", 1250.5, 250.5},  // delta
		{"GPU-b", 50, 0},          // another GPU has its own base
		{"GPU-a", 1250.5, 0},      // no change
		{"GPU-a", 10, 0},          // counter went backwards (reset): 0, re-base
		{"GPU-a", 40, 30},         // deltas continue from the new base
		{"GPU-a", math.NaN(), 0},  // bad readings are ignored...
		{"GPU-a", -5, 0},          //
		{"GPU-a", math.Inf(1), 0}, //
		{"GPU-a", 45, 5},          // ...and do not move the base
		{"GPU-b", 60, 10},
	}
	for i, st := range steps {
		if got := m.Add(st.uuid, st.counterJ); got != st.wantJ {
			t.Errorf("step %d: Add(%s, %v) = %v, want %v", i, st.uuid, st.counterJ, got, st.wantJ)
		}
	}
	m.Forget("GPU-b")
	if got := m.Add("GPU-b", 100); got != 0 {
		t.Errorf("after Forget: Add = %v, want 0", got)
	}
}
