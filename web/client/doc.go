// Package client is the Go client of schedulerd's HTTP API, used by the node
// agent and the joule CLI.
//
// It turns every reply into api types or an error a person can act on: the
// server's own message for 4xx and 5xx replies (*APIError), and "cannot reach
// schedulerd at URL: is it running?" when nothing listens there.
//
// It imports only api and the standard library; it must not import
// scheduler, storage, power, agent or the server side of web.
package client
