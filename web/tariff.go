package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/storage"
)

// loadTariff gives the core the stored tariff, or the default one.
func (s *Server) loadTariff() error {
	data, err := s.db.Tariff()
	if err != nil {
		return err
	}
	t := tariff.Default()
	if data != nil {
		if err := json.Unmarshal(data, &t); err != nil {
			return fmt.Errorf("stored tariff in %s: %w; set it again with joule tariff --set FILE", s.db.Path(), err)
		}
	}
	plan, err := tariff.Compile(t)
	if err != nil {
		return fmt.Errorf("stored tariff in %s: %w; set it again with joule tariff --set FILE", s.db.Path(), err)
	}
	s.core.UseTariff(plan)
	return nil
}

func (s *Server) getTariff(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	plan := s.core.Tariff()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, plan.Tariff())
}

func (s *Server) putTariff(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	plan, err := tariff.Parse(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stored, err := json.Marshal(plan.Tariff())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	err = s.apply(r.Context(), "tariff", func(now time.Time) (storage.Batch, error) {
		if err := s.db.PutTariff(stored); err != nil {
			return storage.Batch{}, err
		}
		return batchOf(s.core.SetTariff(plan, now)), nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.scheduleEdges(plan)
	s.log.Info("tariff set", "currency", plan.Currency(), "windows", len(plan.Tariff().Windows), "pue", plan.PUE(), "carbon_price_per_tonne", plan.CarbonPrice())
	writeJSON(w, http.StatusOK, plan.Tariff())
}

// SegmentView is one span of the tariff schedule.
type SegmentView struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Name        string    `json:"name"`
	PricePerKWh float64   `json:"price_per_kwh"`
	GCO2PerKWh  float64   `json:"gco2_per_kwh"`
}

// tariffSchedule lists the rate segments of the next ?hours= (default 48).
func (s *Server) tariffSchedule(w http.ResponseWriter, r *http.Request) {
	hours := 48
	if v := r.URL.Query().Get("hours"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 24*31 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("hours=%q: give a whole number of hours, 1..744", v))
			return
		}
		hours = n
	}
	s.mu.Lock()
	plan := s.core.Tariff()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, scheduleView(plan, s.now(), time.Duration(hours)*time.Hour))
}

func scheduleView(plan *tariff.Plan, now time.Time, d time.Duration) []SegmentView {
	out := []SegmentView{}
	for _, sg := range plan.Segments(now.UTC(), now.UTC().Add(d)) {
		out = append(out, SegmentView{From: sg.From, To: sg.To, Name: sg.Name, PricePerKWh: sg.PricePerKWh, GCO2PerKWh: sg.GCO2PerKWh})
	}
	return out
}

// scheduleEdges replaces the cron entries that re-plan deferred jobs on
// every window's start and end.
func (s *Server) scheduleEdges(plan *tariff.Plan) {
	s.ext.cronMu.Lock()
	defer s.ext.cronMu.Unlock()
	c := s.ext.cron
	if c == nil {
		return
	}
	for _, id := range s.ext.edgeIDs {
		c.Remove(id)
	}
	s.ext.edgeIDs = nil
	for _, spec := range plan.CronSpecs() {
		sched, err := parseCron(spec)
		if err != nil { // validated by Compile; never expected
			s.log.Error("tariff edge", "spec", spec, "err", err)
			continue
		}
		s.ext.edgeIDs = append(s.ext.edgeIDs, c.Schedule(sched, cron.FuncJob(s.replan)))
	}
}

// replan re-plans every deferred job at a window edge.
func (s *Server) replan() {
	err := s.apply(context.Background(), "replan", func(now time.Time) (storage.Batch, error) {
		return batchOf(s.core.Replan(now)), nil
	})
	if err != nil {
		s.log.Error("replan at a tariff edge", "err", err)
	}
}

func parseCron(spec string) (cron.Schedule, error) {
	return tariff.ParseSchedule(spec)
}
