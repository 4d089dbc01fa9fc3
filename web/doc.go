// Package web is schedulerd's HTTP face: the REST API for users, the agents'
// register and heartbeat endpoints, and /healthz. Every event goes through the
// scheduler core and is stored (synced) before the reply is sent.
//
// It wraps the pure core with storage and the wall clock; it holds no
// scheduling rules of its own.
package web
