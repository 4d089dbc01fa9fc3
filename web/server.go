package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/storage"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 1 << 20

// Server serialises every event through the scheduler core and stores its
// changes (group commit, see commit.go) before answering.
type Server struct {
	// mu guards core. Events apply under it and queue their changes before
	// they let go of it, so the queue keeps the core's order.
	mu     sync.Mutex
	core   *scheduler.Core
	policy scheduler.Policy
	db     *storage.DB
	now    func() time.Time
	log    *slog.Logger

	models models
	// ext holds the tariff, telemetry and dashboard state (extras.go).
	ext     extras
	tokens  tokens
	commits *committer
	// flushEvery is how often buffered telemetry is written (commit.go);
	// 0 syncs every heartbeat. Nanoseconds, atomic.
	flushEvery atomic.Int64
	// save writes one batch; db.Apply, replaced in tests to make writes fail.
	save    func(storage.Batch) error
	metrics *Metrics
	tracer  trace.Tracer
	// submits hands submissions to submitLoop (submitgroup.go); unbuffered,
	// so waiting submitters queue in it and one group takes them all.
	submits chan *submission
}

// New loads the stored state into a fresh core running the default policy.
func New(db *storage.DB, log *slog.Logger, now func() time.Time) (*Server, error) {
	p, err := scheduler.PolicyByName(scheduler.DefaultPolicy)
	if err != nil {
		return nil, err
	}
	return NewWithPolicy(db, log, now, p)
}

// NewWithPolicy loads the stored state (jobs, nodes, tokens) into a fresh
// core running policy p and starts the commit loop; Close (safe to call
// twice) stops it.
func NewWithPolicy(db *storage.DB, log *slog.Logger, now func() time.Time, p scheduler.Policy) (*Server, error) {
	core, err := scheduler.NewWithPolicy(p)
	if err != nil {
		return nil, err
	}
	s := &Server{core: core, policy: p, db: db, now: now, log: log,
		commits: newCommitter(), tracer: otel.Tracer("github.com/joulehq/joule/web"), submits: make(chan *submission)}
	s.save = db.Apply
	s.ext = newExtras()
	if err := s.loadTariff(); err != nil {
		return nil, err
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	list, err := db.Tokens()
	if err != nil {
		return nil, err
	}
	s.tokens.load(list)
	m, err := newMetrics(s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.flushEvery.Store(int64(DefaultTelemetryFlush))
	go s.commitLoop()
	go s.flushLoop()
	go s.submitLoop()
	return s, nil
}

// DefaultTelemetryFlush is how often buffered telemetry is written.
const DefaultTelemetryFlush = 5 * time.Second

// SetTelemetryFlush sets how often telemetry-only heartbeat changes are
// written (commit.go); 0 syncs each heartbeat before its reply.
func (s *Server) SetTelemetryFlush(d time.Duration) { s.flushEvery.Store(int64(d)) }

func (s *Server) telemetryFlush() time.Duration { return time.Duration(s.flushEvery.Load()) }

// FlushTelemetry writes the buffered telemetry now and waits until it is
// on disk (reports and samples read the disk).
func (s *Server) FlushTelemetry() error {
	if req := s.commits.flushTelemetry(); req != nil {
		return req.wait()
	}
	return nil
}

// Close writes what is queued and stops the commit loop. Call it after the
// HTTP server and Run have stopped.
func (s *Server) Close() {
	s.commits.closeOnce.Do(func() { close(s.commits.stop) })
	<-s.commits.stopped
}

// reload rebuilds the core from storage, the source of truth. It is also the
// way back after a failed write, so that memory never holds what the disk
// does not. Callers hold s.mu (or own s alone).
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

// apply runs one event through the core and waits until its changes are on
// disk. event returns the changes or an error that leaves the core as it was.
// The event's time in the core is measured for the scheduling histogram and
// traced as a span.
func (s *Server) apply(ctx context.Context, name string, event func(now time.Time) (storage.Batch, error)) error {
	return s.applyTo(ctx, name, "", func(now time.Time) (storage.Batch, bool, error) {
		b, err := event(now)
		return b, false, err
	})
}

// applyTo is apply for an event of node that may say its changes are
// telemetry only: those are buffered (commit.go) and the event waits only
// for the last synced change that touched the node.
func (s *Server) applyTo(ctx context.Context, name, node string, event func(now time.Time) (storage.Batch, bool, error)) error {
	_, span := s.tracer.Start(ctx, "scheduler."+name)
	defer span.End()
	asked := time.Now()
	s.mu.Lock()
	start := time.Now()
	s.metrics.waited(name, start.Sub(asked))
	ch, telemetry, err := event(s.now())
	if err != nil {
		s.mu.Unlock()
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	s.metrics.decision(ctx, name, time.Since(start))
	var req *commitReq
	if telemetry && node != "" && s.telemetryFlush() > 0 {
		req = s.commits.deferTelemetry(node, ch)
	} else {
		req = s.commits.enqueue(ch, name == "submit")
	}
	s.mu.Unlock()
	span.SetAttributes(attribute.Int("joule.jobs_changed", len(ch.Jobs)), attribute.Int("joule.nodes_changed", len(ch.Nodes)),
		attribute.Bool("joule.telemetry_only", telemetry))
	if req == nil {
		return nil
	}
	if err := req.wait(); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// batchOf is the storage batch of the core's changes.
func batchOf(ch scheduler.Changes) storage.Batch {
	return storage.Batch{Jobs: ch.Jobs, Nodes: ch.Nodes, Usage: ch.Usage}
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

// Tick runs one core tick now (node timeouts, placement) and stores what it
// changed.
func (s *Server) Tick() error {
	return s.apply(context.Background(), "tick", func(now time.Time) (storage.Batch, error) {
		ch := s.core.Tick(now)
		for _, n := range ch.Nodes {
			if n.State == api.NodeDown {
				s.log.Warn("node down: silent longer than the node timeout; its jobs are requeued", "node", n.Name, "last_heartbeat", n.LastHeartbeat)
			}
		}
		return batchOf(ch), nil
	})
}

// Handler returns the HTTP routes. Every route but /healthz needs a token.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	all := []string{RoleAdmin, RoleUser}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /api/v1/jobs", s.authed(s.submit, RoleAdmin, RoleUser))
	mux.HandleFunc("GET /api/v1/jobs", s.authed(s.listJobs, all...))
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.authed(s.getJob, all...))
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.authed(s.cancel, RoleAdmin, RoleUser))
	mux.HandleFunc("GET /api/v1/nodes", s.authed(s.listNodes, all...))
	mux.HandleFunc("GET /api/v1/power/budget", s.authed(s.getBudget, all...))
	mux.HandleFunc("PUT /api/v1/power/budget", s.authed(s.putBudget, RoleAdmin))
	mux.HandleFunc("POST /api/v1/agents/{node}/register", s.authed(s.heartbeat, RoleAdmin, RoleAgent))
	mux.HandleFunc("POST /api/v1/agents/{node}/heartbeat", s.authed(s.heartbeat, RoleAdmin, RoleAgent))
	mux.HandleFunc("POST /api/v1/tokens", s.authed(s.createToken, RoleAdmin))
	mux.HandleFunc("GET /api/v1/tokens", s.authed(s.listTokens, RoleAdmin))
	mux.HandleFunc("DELETE /api/v1/tokens/{name}", s.authed(s.revokeToken, RoleAdmin))
	mux.HandleFunc("GET /api/v1/admin/backup", s.authed(s.backup, RoleAdmin))
	mux.Handle("GET /metrics", s.authed(s.metrics.handler.ServeHTTP, RoleAdmin, RoleUser, RoleAgent))
	mux.HandleFunc("PUT /api/v1/models/{id}", s.authed(s.uploadModel, RoleAdmin, RoleAgent))
	mux.HandleFunc("POST /api/v1/models/{id}/predict", s.authed(s.predict, all...))
	s.extraRoutes(mux) // tariff, reports, samples, dashboard (extras.go)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s; see the README for the API", r.Method, r.URL.Path))
	})
	return s.traced(mux)
}

// traced gives every request a span named by its route.
func (s *Server) traced(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := next.Handler(r)
		ctx, span := s.tracer.Start(r.Context(), pattern, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (the backup) flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	spec, err := api.DecodeJobSpecFor(http.MaxBytesReader(w, r.Body, maxBodyBytes), p.Name)
	if err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	if p.Role == RoleUser && spec.User != p.Name {
		writeError(w, http.StatusForbidden, fmt.Sprintf("user: token %q may submit only as user %q, not %q; leave user out or set it to %q",
			p.Name, p.Name, spec.User, p.Name))
		return
	}
	// No scheduling pass per submission: one pass follows each written
	// batch (commit.go), and only a heartbeat can tell an agent to run the
	// job anyway.
	job, err := s.submitJob(r.Context(), spec)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	s.log.Debug("job submitted", "id", job.ID, "name", spec.Name, "user", spec.User, "gpus", spec.GPUs)
	writeJSON(w, http.StatusCreated, api.SubmitReply{ID: job.ID})
}

// statusOf maps an apply error: storage failures are 500, the core's refusals 400.
func statusOf(err error) int {
	var fe *api.FieldError
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest
	case errors.As(err, new(scheduler.ErrNotFound)):
		return http.StatusNotFound
	case errors.As(err, new(errRefused)):
		return http.StatusConflict
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errRefused is an event the core refused because of the job's state.
type errRefused struct{ error }

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
	j, err := s.cancelJob(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, cancelStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// cancelJob cancels job id for the request's principal (an admin, or the
// job's own user), durably, and schedules at once: its GPUs are free.
func (s *Server) cancelJob(ctx context.Context, id string) (api.Job, error) {
	p := principalOf(ctx)
	var j api.Job
	err := s.apply(ctx, "cancel", func(now time.Time) (storage.Batch, error) {
		cur, ok := s.core.Job(id)
		if !ok {
			return storage.Batch{}, scheduler.ErrNotFound{ID: id}
		}
		if p.Role != RoleAdmin && cur.Spec.User != p.Name {
			return storage.Batch{}, errForbidden{fmt.Errorf("job %s belongs to user %q; token %q (role %s) may cancel only its own jobs",
				id, cur.Spec.User, p.Name, p.Role)}
		}
		var err error
		j, err = s.core.Cancel(id, now)
		if err != nil {
			if errors.As(err, new(scheduler.ErrNotFound)) {
				return storage.Batch{}, err
			}
			return storage.Batch{}, errRefused{err}
		}
		ch := s.core.Schedule(now)
		ch.Jobs = append(ch.Jobs, j)
		return batchOf(ch), nil
	})
	if err == nil {
		s.log.Info("job cancelled", "id", id, "by", p.Name)
	}
	return j, err
}

// cancelStatus is the HTTP status of a cancelJob error.
func cancelStatus(err error) int {
	if errors.As(err, new(errForbidden)) {
		return http.StatusForbidden
	}
	return statusOf(err)
}

type errForbidden struct{ error }

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
	if p := principalOf(r.Context()); p.Role == RoleAgent && p.Name != node {
		writeError(w, http.StatusForbidden, fmt.Sprintf("agent token %q may heartbeat only for node %q, not %q; run the agent with --name %s or give it that node's token",
			p.Name, p.Name, node, p.Name))
		return
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("joule.node", node))
	start := time.Now()
	defer func() { s.metrics.heartbeat(time.Since(start)) }()
	hb, err := api.DecodeHeartbeat(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	var reply api.HeartbeatReply
	// A heartbeat that changed only telemetry is answered from memory; one
	// with a state transition once it is synced (commit.go).
	err = s.applyTo(r.Context(), "heartbeat", node, func(now time.Time) (storage.Batch, bool, error) {
		var ch scheduler.Changes
		reply, ch = s.core.Heartbeat(node, hb, now)
		b := batchOf(ch)
		s.samples(node, hb, reply, now)(&b) // telemetry samples, when due (telemetry.go)
		return b, ch.Telemetry, nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeCompactJSON(w, http.StatusOK, reply)
}

// backup streams a consistent snapshot of the live database.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if err := s.FlushTelemetry(); err != nil { // the snapshot holds the telemetry up to now
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="joule.db"`)
	n, err := s.db.Backup(w, func(size int64) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
	})
	if err != nil {
		// Headers are gone; the client sees a short body and a broken stream.
		s.log.Error("backup failed", "err", err, "bytes", n)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup sent", "bytes", n, "by", principalOf(r.Context()).Name)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeCompactJSON is writeJSON without indentation, for the replies that
// agents send a thousand times a second (heartbeat replies).
func writeCompactJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}
