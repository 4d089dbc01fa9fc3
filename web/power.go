package web

import (
	"fmt"
	"net/http"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/scheduler"
)

// SetPowerConfig tunes power capping (balanced slowdown, admission,
// profiling).
func (s *Server) SetPowerConfig(cfg scheduler.PowerConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.core.Power = cfg
}

// restorePower installs the stored power budget in a freshly restored core.
func (s *Server) restorePower() error {
	b, ok, err := s.db.PowerBudget()
	if err != nil || !ok {
		return err
	}
	return s.core.RestoreBudget(b)
}

// getBudget answers GET /api/v1/power/budget: the budget, the watts in force
// now, the measured cluster power and the time spent over budget.
func (s *Server) getBudget(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.core.BudgetStatus(s.now())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

// putBudget answers PUT /api/v1/power/budget: a bad budget, or one below
// the GPUs' minimum possible draw, is refused and changes nothing; a good one
// is stored (synced) before the reply, and the next heartbeat of each node
// carries the new limits.
func (s *Server) putBudget(w http.ResponseWriter, r *http.Request) {
	var b api.PowerBudget
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, maxBodyBytes), &b); err != nil {
		writeError(w, http.StatusBadRequest, "power budget: "+err.Error()+`; send {"default_w": W, "node_max_w": W, "windows": [{"start": CRON, "end": CRON, "watts": W}]}`)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, err := s.core.SetBudget(b)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.db.SavePowerBudget(stored); err != nil {
		s.log.Error("store power budget failed; reloading state from disk", "err", err)
		if rerr := s.reload(); rerr != nil {
			s.log.Error("reload failed", "err", rerr)
		}
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("store power budget: %v", err))
		return
	}
	s.log.Info("power budget set", "default_w", stored.DefaultW, "node_max_w", stored.NodeMaxW, "windows", len(stored.Windows))
	writeJSON(w, http.StatusOK, s.core.BudgetStatus(s.now()))
}
