package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/storage"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 1 << 20

// Server serialises every event through the scheduler core and stores its
// changes before answering.
type Server struct {
	mu     sync.Mutex
	core   *scheduler.Core
	policy scheduler.Policy
	db     *storage.DB
	now    func() time.Time
	log    *slog.Logger

	models models
	// ext holds the tariff, telemetry and dashboard state (extras.go).
	ext extras
}

// New loads the stored state into a fresh core running the default policy.
func New(db *storage.DB, log *slog.Logger, now func() time.Time) (*Server, error) {
	p, err := scheduler.PolicyByName(scheduler.DefaultPolicy)
	if err != nil {
		return nil, err
	}
	return NewWithPolicy(db, log, now, p)
}

// NewWithPolicy loads the stored state into a fresh core running policy p.
func NewWithPolicy(db *storage.DB, log *slog.Logger, now func() time.Time, p scheduler.Policy) (*Server, error) {
	core, err := scheduler.NewWithPolicy(p)
	if err != nil {
		return nil, err
	}
	s := &Server{core: core, policy: p, db: db, now: now, log: log}
	s.ext = newExtras()
	if err := s.loadTariff(); err != nil {
		return nil, err
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload rebuilds the core from storage, the source of truth. It is also the
// way back after a failed write, so that memory never holds what the disk
// does not.
func (s *Server) reload() error {
	jobs, err := s.db.Jobs()
	if err != nil {
		return fmt.Errorf("load jobs: %w", err)
	}
	nodes, err := s.db.Nodes()
	if err != nil {
		return fmt.Errorf("load nodes: %w", err)
	}
	timeout, plan, ckpt, pcfg := s.core.NodeTimeout, s.core.Tariff(), s.core.CheckpointAtPeak, s.core.Power
	core, err := scheduler.NewWithPolicy(s.policy)
	if err != nil {
		return err
	}
	s.core = core
	s.core.NodeTimeout, s.core.CheckpointAtPeak, s.core.Power = timeout, ckpt, pcfg
	s.core.UseTariff(plan)
	s.core.Restore(jobs, nodes)
	return s.restorePower()
}

// SetNodeTimeout sets how long a node may stay silent before it is marked down.
func (s *Server) SetNodeTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.core.NodeTimeout = d
}

// commit stores an event's changes; on failure it reloads the core so that
// nothing unacknowledged stays in memory. Callers hold s.mu.
func (s *Server) commit(ch scheduler.Changes, more ...func(*storage.Batch)) error {
	b := storage.Batch{Jobs: ch.Jobs, Nodes: ch.Nodes, Usage: ch.Usage}
	for _, f := range more {
		f(&b)
	}
	if len(b.Jobs) == 0 && len(b.Nodes) == 0 && len(b.Usage) == 0 && len(b.NodeSamples) == 0 && len(b.JobSamples) == 0 {
		return nil
	}
	if err := s.db.Apply(b); err != nil {
		s.log.Error("store failed; reloading state from disk", "err", err)
		if rerr := s.reload(); rerr != nil {
			s.log.Error("reload failed", "err", rerr)
		}
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Run ticks the core every interval (node timeouts, placement) until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Tick(); err != nil {
				s.log.Error("tick", "err", err)
			}
		}
	}
}

// Tick runs one core tick now (node timeouts, power states, placement) and
// stores what it changed.
func (s *Server) Tick() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(s.core.Tick(s.now()))
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /api/v1/jobs", s.submit)
	mux.HandleFunc("GET /api/v1/jobs", s.listJobs)
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.getJob)
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.cancel)
	mux.HandleFunc("GET /api/v1/nodes", s.listNodes)
	mux.HandleFunc("GET /api/v1/power/budget", s.getBudget)
	mux.HandleFunc("PUT /api/v1/power/budget", s.putBudget)
	mux.HandleFunc("POST /api/v1/agents/{node}/register", s.heartbeat)
	mux.HandleFunc("POST /api/v1/agents/{node}/heartbeat", s.heartbeat)
	mux.HandleFunc("PUT /api/v1/models/{id}", s.uploadModel)
	mux.HandleFunc("POST /api/v1/models/{id}/predict", s.predict)
	s.extraRoutes(mux) // tariff, reports, samples, dashboard (extras.go)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s; see the README for the API", r.Method, r.URL.Path))
	})
	return mux
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	spec, err := api.DecodeJobSpec(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	job, err := s.core.Submit(spec, s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ch := s.core.Schedule(s.now())
	ch.Jobs = append([]api.Job{job}, ch.Jobs...)
	if j, ok := s.core.Job(job.ID); ok {
		ch.Jobs[0] = j
	}
	if err := s.commit(ch); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("job submitted", "id", job.ID, "name", spec.Name, "user", spec.User, "gpus", spec.GPUs)
	writeJSON(w, http.StatusCreated, api.SubmitReply{ID: job.ID})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	jobs := s.core.Jobs()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, jobs)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	j, ok := s.core.Job(id)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, scheduler.ErrNotFound{ID: id}.Error())
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.core.Cancel(id, s.now())
	if err != nil {
		status := http.StatusConflict
		if errors.As(err, new(scheduler.ErrNotFound)) {
			status = http.StatusNotFound
		}
		writeError(w, status, err.Error())
		return
	}
	ch := s.core.Schedule(s.now())
	ch.Jobs = append(ch.Jobs, j)
	if err := s.commit(ch); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("job cancelled", "id", id)
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	nodes := s.core.Nodes()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, nodes)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if err := api.ValidateNodeName(node); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var hb api.Heartbeat
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, maxBodyBytes), &hb); err != nil {
		writeError(w, http.StatusBadRequest, "heartbeat: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	reply, ch := s.core.Heartbeat(node, hb, now)
	if err := s.commit(ch, s.samples(node, hb, now)); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}
