// Package web is schedulerd's HTTP face: the REST API for users, the agents'
// register and heartbeat endpoints, token management, the live backup,
// /metrics and /healthz. Every route but /healthz needs a bearer token whose
// role allows it (auth.go). Every event goes through the scheduler core and is
// stored (synced, with other requests' changes: commit.go) before the reply is
// sent. Metrics are OpenTelemetry instruments exported on /metrics from a
// private Prometheus registry (metrics.go); requests and scheduling events are
// traced with the global OTel tracer provider.
//
// It wraps the pure core with storage and the wall clock; it holds no
// scheduling rules of its own. What the core keeps only in memory (fair-share
// usage, learned runtime estimates, when a node became idle) starts afresh
// when schedulerd restarts; jobs, nodes and their power states are stored.
package web
