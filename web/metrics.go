package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/scheduler"
)

// Metrics is schedulerd's OpenTelemetry instruments, exported in Prometheus's
// text format on /metrics from a registry of its own (not the global one).
// OTel names and units become Prometheus names with unit suffixes:
//
//	joule_gpu_power_watts{node,gpu}            power draw, latest heartbeat
//	joule_gpu_power_limit_watts{node,gpu}      power limit
//	joule_gpu_utilization_ratio{node,gpu}      0..1
//	joule_gpu_energy_joules_total{node,gpu}    the GPU's energy counter
//	joule_cluster_power_watts                  measured power of every GPU on up nodes
//	joule_power_budget_watts                   the GPU power budget in force (absent: none)
//	joule_power_allocated_watts                the power limits allocated now
//	joule_nodes{state}                         nodes by state
//	joule_jobs{state}                          jobs by state
//	joule_user_energy_joules_total{user}       energy of every job, by user
//	joule_project_energy_joules_total{project} energy of every job, by project
//	joule_schedule_duration_seconds{event}     time the core spent on one event
//	joule_lock_wait_seconds{event}             time an event waited for the core's lock
//	joule_heartbeat_duration_seconds           a heartbeat's time in its handler, body to reply
//	joule_commit_batch                         requests per synced write (group commit)
//	joule_commit_duration_seconds              time of one synced write
type Metrics struct {
	handler  http.Handler
	schedule metric.Float64Histogram
	lockWait metric.Float64Histogram
	hbTime   metric.Float64Histogram
	batch    metric.Int64Histogram
	write    metric.Float64Histogram
	commits  atomic.Int64
}

func newMetrics(s *Server) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp),
		// Every GPU is a series: the SDK's default limit (2000 series per
		// instrument) folded every GPU past the 2000th (250 nodes) into one
		// otel_metric_overflow series.
		sdkmetric.WithCardinalityLimit(0),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "joule.schedule.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
				Boundaries: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}}},
		)))
	meter := provider.Meter("github.com/joulehq/joule/web")
	m := &Metrics{handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})}

	gauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		if err != nil {
			return nil
		}
		var g metric.Float64ObservableGauge
		g, err = meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return g
	}
	counter := func(name, unit, desc string) metric.Float64ObservableCounter {
		if err != nil {
			return nil
		}
		var c metric.Float64ObservableCounter
		c, err = meter.Float64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	gpuPower := gauge("joule.gpu.power", "W", "GPU power draw at the latest heartbeat")
	gpuLimit := gauge("joule.gpu.power_limit", "W", "GPU power limit")
	gpuUtil := gauge("joule.gpu.utilization", "1", "GPU utilisation, 0..1")
	gpuEnergy := counter("joule.gpu.energy", "J", "the GPU's total-energy counter")
	clusterPower := gauge("joule.cluster.power", "W", "measured power of every GPU on up nodes")
	budget := gauge("joule.power.budget", "W", "the GPU power budget in force; absent when none is set")
	allocated := gauge("joule.power.allocated", "W", "the sum of busy GPUs' limits and idle GPUs' draw, as allocated now")
	nodes := gauge("joule.nodes", "", "nodes by state")
	jobs := gauge("joule.jobs", "", "jobs by state")
	userEnergy := counter("joule.user.energy", "J", "energy of every job, by the job's user")
	projectEnergy := counter("joule.project.energy", "J", "energy of every job, by the job's project")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.schedule, err = meter.Float64Histogram("joule.schedule.duration", metric.WithUnit("s"),
		metric.WithDescription("time the scheduler core spent on one event (submit, heartbeat, tick, cancel), placement included"))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.lockWait, err = meter.Float64Histogram("joule.lock.wait", metric.WithUnit("s"),
		metric.WithDescription("time an event (submit, heartbeat, tick, cancel, the pass after a write) waited for the scheduler core's lock"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.hbTime, err = meter.Float64Histogram("joule.heartbeat.duration", metric.WithUnit("s"),
		metric.WithDescription("a heartbeat's time in schedulerd's handler, from decoding its body to writing the reply (the wait for a synced write included)"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.batch, err = meter.Int64Histogram("joule.commit.batch", metric.WithUnit("{request}"),
		metric.WithDescription("requests that shared one synced write"),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}

	m.write, err = meter.Float64Histogram("joule.commit.duration", metric.WithUnit("s"),
		metric.WithDescription("time of one synced write of a batch"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.scrapeState()
		ns, js, bs := st.nodes, st.jobs, st.budget
		if bs.WattsNow > 0 {
			o.ObserveFloat64(budget, bs.WattsNow)
		}
		o.ObserveFloat64(allocated, bs.AllocatedW)
		var clusterW float64
		nodeStates := map[string]int{api.NodeUp: 0, api.NodeDown: 0}
		for _, n := range ns {
			nodeStates[n.State]++
			for _, g := range n.GPUs {
				attrs := metric.WithAttributes(attribute.String("node", n.Name), attribute.String("gpu", fmt.Sprint(g.Index)))
				o.ObserveFloat64(gpuPower, g.PowerW, attrs)
				o.ObserveFloat64(gpuLimit, g.LimitW, attrs)
				o.ObserveFloat64(gpuUtil, g.Utilization, attrs)
				o.ObserveFloat64(gpuEnergy, g.EnergyJ, attrs)
				if n.State == api.NodeUp {
					clusterW += g.PowerW
				}
			}
		}
		o.ObserveFloat64(clusterPower, clusterW)
		for _, st := range sortedKeys(nodeStates) {
			o.ObserveFloat64(nodes, float64(nodeStates[st]), metric.WithAttributes(attribute.String("state", st)))
		}
		states := js.ByState
		for _, st := range []string{api.StateQueued, api.StateDeferred, api.StateRunning, api.StateSucceeded, api.StateFailed, api.StateCancelled} {
			states[st] += 0 // every state has a series, 0 when no job is in it
		}
		users, projects := js.EnergyJByUser, js.EnergyJByProject
		for _, st := range sortedKeys(states) {
			o.ObserveFloat64(jobs, float64(states[st]), metric.WithAttributes(attribute.String("state", st)))
		}
		for _, u := range sortedKeys(users) {
			o.ObserveFloat64(userEnergy, users[u], metric.WithAttributes(attribute.String("user", u)))
		}
		for _, p := range sortedKeys(projects) {
			o.ObserveFloat64(projectEnergy, projects[p], metric.WithAttributes(attribute.String("project", p)))
		}
		return nil
	}, gpuPower, gpuLimit, gpuUtil, gpuEnergy, clusterPower, budget, allocated, nodes, jobs, userEnergy, projectEnergy)
	if err != nil {
		return nil, fmt.Errorf("metrics callback: %w", err)
	}
	return m, nil
}

// scrapeState is what a scrape reads from the core, under its lock.
type scrapeState struct {
	nodes  []api.Node
	jobs   scheduler.JobStats
	budget api.PowerBudgetStatus
}

func (s *Server) scrapeState() scrapeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return scrapeState{nodes: s.core.Nodes(), jobs: s.core.JobStats(), budget: s.core.BudgetStatus(s.now())}
}

func (m *Metrics) decision(ctx context.Context, event string, d time.Duration) {
	m.schedule.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("event", event)))
}

func (m *Metrics) waited(event string, d time.Duration) {
	m.lockWait.Record(context.Background(), d.Seconds(), metric.WithAttributes(attribute.String("event", event)))
}

func (m *Metrics) heartbeat(d time.Duration) {
	m.hbTime.Record(context.Background(), d.Seconds())
}

func (m *Metrics) commit(requests int, d time.Duration) {
	m.commits.Add(1)
	m.batch.Record(context.Background(), int64(requests))
	m.write.Record(context.Background(), d.Seconds())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
