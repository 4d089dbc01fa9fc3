// Package api holds the wire types shared by schedulerd, the agents and the CLI:
// the job spec and its validation, jobs, nodes, GPU telemetry and the heartbeat
// exchange. It is plain data: it imports no storage, HTTP or scheduling code.
package api
