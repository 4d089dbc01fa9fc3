// Package e2e holds the end-to-end tests: they build the real binaries and
// run schedulerd, agents and the CLI as separate processes on loopback.
package e2e
