package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/storage"
)

// BenchmarkMetricsScrape scrapes /metrics from a cluster of 1,000 8-GPU
// nodes holding 20,000 jobs (load.sh's scale): "scrape" is the whole
// request, "locked" the part of it that holds the core's lock, which every
// heartbeat and submission waits for meanwhile.
func BenchmarkMetricsScrape(b *testing.B) {
	db, err := storage.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	srv, err := New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for n := range 1000 {
		name := fmt.Sprintf("node-%04d", n)
		hb := api.Heartbeat{}
		for i := range 8 {
			hb.GPUs = append(hb.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", name, i), Model: "NVIDIA H100 80GB HBM3",
				PowerW: 300, LimitW: 700, MinLimitW: 200, MaxLimitW: 700, EnergyJ: 1e6, Utilization: 0.5})
		}
		srv.core.Heartbeat(name, hb, now)
	}
	for j := range 20000 {
		spec := api.JobSpec{Name: fmt.Sprintf("job-%d", j), User: fmt.Sprintf("user-%d", j%50), Project: fmt.Sprintf("p-%d", j%10), GPUs: 1,
			Workload: api.Workload{Synthetic: &api.SyntheticSpec{Duration: api.Duration{Duration: time.Minute}, Utilization: 0.5}}}
		if _, err := srv.core.Submit(spec, now); err != nil {
			b.Fatal(err)
		}
	}
	srv.core.Schedule(now)
	b.Run("scrape", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			srv.metrics.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if !strings.Contains(rec.Body.String(), `joule_gpu_power_watts{gpu="7",node="node-0999"} 300`) {
				i := strings.Index(rec.Body.String(), "joule_gpu_power_watts{")
				b.Fatalf("scrape lacks node-0999 GPU 7: %.300s", rec.Body.String()[i:])
			}
		}
	})
	b.Run("locked", func(b *testing.B) {
		for b.Loop() {
			srv.scrapeState()
		}
	})
}
