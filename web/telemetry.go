package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

// samples returns what a heartbeat adds to the telemetry series: the node's
// GPUs and each job running on it, each at most every sampleEvery. Callers
// hold s.mu; the samples are stored in the heartbeat's own transaction.
func (s *Server) samples(node string, hb api.Heartbeat, reply api.HeartbeatReply, now time.Time) func(*storage.Batch) {
	due := func(series string) bool {
		if last, ok := s.ext.lastSample[series]; ok && now.Sub(last) < s.ext.sampleEvery && !now.Before(last) {
			return false
		}
		s.ext.lastSample[series] = now
		return true
	}
	return func(b *storage.Batch) {
		if s.ext.sampleEvery <= 0 {
			return
		}
		if due("node/" + node) {
			ns := api.NodeSample{T: now.UTC()}
			for _, g := range hb.GPUs {
				ns.GPUs = append(ns.GPUs, api.GPUSample{Index: g.Index, PowerW: g.PowerW, LimitW: g.LimitW, Utilization: g.Utilization})
			}
			b.NodeSamples = map[string]api.NodeSample{node: ns}
		}
		power := map[int]float64{}
		for _, g := range hb.GPUs {
			power[g.Index] = g.PowerW
		}
		// The jobs on this node are those the agent reports and those the
		// reply starts: look those up rather than listing all jobs (a sort
		// of every job, once per heartbeat, was a third of schedulerd's CPU
		// under load).
		ids := make([]string, 0, len(hb.Jobs)+len(reply.Run))
		for _, r := range hb.Jobs {
			ids = append(ids, r.ID)
		}
		for _, a := range reply.Run {
			ids = append(ids, a.ID)
		}
		for _, id := range ids {
			j, ok := s.core.Job(id)
			if !ok || j.Node != node || j.State != api.StateRunning || !due("job/"+j.ID) {
				continue
			}
			js := api.JobSample{T: now.UTC(), EnergyJ: j.EnergyJ, Cost: j.Cost}
			for _, i := range j.GPUIndices {
				js.PowerW += power[i]
			}
			if b.JobSamples == nil {
				b.JobSamples = map[string]api.JobSample{}
			}
			b.JobSamples[j.ID] = js
		}
	}
}

// prune deletes samples older than the retention.
func (s *Server) prune() {
	s.mu.Lock()
	retention := s.ext.retention
	s.mu.Unlock()
	if retention <= 0 {
		return
	}
	n, err := s.db.PruneSamples(s.now().Add(-retention))
	if err != nil {
		s.log.Error("prune telemetry", "err", err)
		return
	}
	if n > 0 {
		s.log.Info("pruned telemetry samples", "samples", n, "older_than", retention)
	}
}

// sinceParam reads ?since= (a duration back from now, default d).
func sinceParam(r *http.Request, now time.Time, d time.Duration) (time.Time, error) {
	if v := r.URL.Query().Get("since"); v != "" {
		dd, err := time.ParseDuration(v)
		if err != nil || dd <= 0 {
			return time.Time{}, fmt.Errorf("since=%q: give a duration back from now, e.g. 1h", v)
		}
		d = dd
	}
	return now.Add(-d), nil
}

func (s *Server) nodeSamples(w http.ResponseWriter, r *http.Request) {
	from, err := sinceParam(r, s.now(), time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.FlushTelemetry(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out, err := s.db.NodeSamples(r.PathValue("name"), from)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if out == nil {
		out = []api.NodeSample{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) jobSamples(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, ok := s.core.Job(id)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
		return
	}
	if err := s.FlushTelemetry(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out, err := s.db.JobSamples(id, time.Time{})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if out == nil {
		out = []api.JobSample{}
	}
	writeJSON(w, http.StatusOK, out)
}
