// Package web is schedulerd's HTTP face: the REST API for users, the agents'
// register and heartbeat endpoints, the tariff and energy-report endpoints,
// the dashboard (pages, CSS and script embedded; SVG charts drawn here) and
// /healthz. Every event goes through the scheduler core and is stored
// (synced) before the reply is sent. RunSchedules runs the cron entries:
// re-planning on tariff window edges, the daily report, telemetry pruning.
//
// It wraps the pure core with storage and the wall clock; it holds no
// scheduling rules of its own. What the core keeps only in memory (fair-share
// usage, learned runtime estimates, when a node became idle) starts afresh
// when schedulerd restarts; jobs, nodes and their power states are stored.
package web
