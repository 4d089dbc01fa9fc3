package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Telemetry defaults: a sample per node and per running job at most every
// DefaultSampleEvery, kept for DefaultRetention.
const (
	DefaultSampleEvery = 10 * time.Second
	DefaultRetention   = 7 * 24 * time.Hour
)

// DefaultDailyReport is when the daily report of the previous UTC day is made.
const DefaultDailyReport = "CRON_TZ=UTC 5 0 * * *"

// extras is the server's state beyond the core: the telemetry sampler and the
// cron that re-plans on tariff window edges. Guarded by Server.mu unless said.
type extras struct {
	sampleEvery time.Duration
	retention   time.Duration
	lastSample  map[string]time.Time // series -> last stored sample

	cronMu  sync.Mutex // guards cron and edgeIDs
	cron    *cron.Cron
	edgeIDs []cron.EntryID
}

func newExtras() extras {
	return extras{sampleEvery: DefaultSampleEvery, retention: DefaultRetention, lastSample: map[string]time.Time{}}
}

// SetTelemetry sets how often samples are stored and how long they are kept.
func (s *Server) SetTelemetry(every, retention time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ext.sampleEvery, s.ext.retention = every, retention
}

// SetCheckpointAtPeak turns on checkpointing running deferrable train jobs at
// a tariff window edge when their remaining work is cheaper later.
func (s *Server) SetCheckpointAtPeak(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.core.CheckpointAtPeak = on
}

func (s *Server) extraRoutes(mux *http.ServeMux) {
	read := []string{RoleAdmin, RoleUser}
	mux.HandleFunc("GET /api/v1/tariff", s.authed(s.getTariff, read...))
	mux.HandleFunc("PUT /api/v1/tariff", s.authed(s.putTariff, RoleAdmin))
	mux.HandleFunc("GET /api/v1/tariff/schedule", s.authed(s.tariffSchedule, read...))
	mux.HandleFunc("GET /api/v1/reports/energy", s.authed(s.energyReport, read...))
	mux.HandleFunc("GET /api/v1/reports/daily", s.authed(s.listDaily, read...))
	mux.HandleFunc("GET /api/v1/reports/daily/{day}", s.authed(s.getDaily, read...))
	mux.HandleFunc("GET /api/v1/nodes/{name}/samples", s.authed(s.nodeSamples, read...))
	mux.HandleFunc("GET /api/v1/jobs/{id}/samples", s.authed(s.jobSamples, read...))
	s.dashboardRoutes(mux)
}

// catchUpDaily makes yesterday's daily report if it is missing (schedulerd
// was down when it was due).
func (s *Server) catchUpDaily() {
	day := s.now().UTC().AddDate(0, 0, -1)
	if _, ok, err := s.db.DailyReport(day.Format(time.DateOnly)); err != nil || ok {
		return
	}
	if _, err := s.MakeDailyReport(day); err != nil {
		s.log.Error("daily report", "err", err)
	}
}

// RunSchedules runs the cron schedules until ctx ends: re-planning on every
// tariff window edge, the daily report (dailySpec, a cron expression; empty
// turns it off) and the hourly pruning of old telemetry. The core itself
// never reads the clock: these jobs pass it s.now().
func (s *Server) RunSchedules(ctx context.Context, dailySpec string) error {
	c := cron.New(cron.WithLocation(time.UTC))
	if dailySpec != "" {
		sched, err := parseCron(dailySpec)
		if err != nil {
			return err
		}
		c.Schedule(sched, cron.FuncJob(func() {
			if _, err := s.MakeDailyReport(s.now().UTC().AddDate(0, 0, -1)); err != nil {
				s.log.Error("daily report", "err", err)
			}
		}))
	}
	c.Schedule(cron.Every(time.Hour), cron.FuncJob(s.prune))
	s.ext.cronMu.Lock()
	s.ext.cron = c
	s.ext.cronMu.Unlock()
	s.mu.Lock()
	plan := s.core.Tariff()
	s.mu.Unlock()
	s.scheduleEdges(plan)
	s.prune()
	if dailySpec != "" {
		s.catchUpDaily()
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}
