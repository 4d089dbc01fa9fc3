package power

import (
	"math"
	"sync"
)

// Meter turns GPUs' total-energy counters into energy per interval. It keeps
// the last counter value per GPU UUID. The zero Meter is ready to use and
// safe for concurrent use.
type Meter struct {
	mu   sync.Mutex
	last map[string]float64
}

// Add records GPU uuid's counter reading counterJ (joules) and returns the
// energy drawn since the previous reading of that GPU.
//
//   - The first reading of a GPU only sets the base: it gives 0.
//   - A reading below the previous one (the counter was reset, e.g. by a
//     driver reload or GPU reset) gives 0 and re-bases on the new reading:
//     the energy between the last good reading and the reset is lost, which
//     under-counts by at most one interval instead of inventing energy.
//   - A NaN, infinite or negative reading is ignored: 0, base unchanged.
func (m *Meter) Add(uuid string, counterJ float64) (deltaJ float64) {
	if math.IsNaN(counterJ) || math.IsInf(counterJ, 0) || counterJ < 0 {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = make(map[string]float64)
	}
	prev, ok := m.last[uuid]
	m.last[uuid] = counterJ
	if !ok || counterJ < prev {
		return 0
	}
	return counterJ - prev
}

// Forget drops GPU uuid's base: its next reading starts afresh.
func (m *Meter) Forget(uuid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, uuid)
}
