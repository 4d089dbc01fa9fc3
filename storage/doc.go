// Package storage keeps schedulerd's facts (jobs, nodes and API tokens, the
// latter only as hashes) in one embedded bbolt file, dataDir/joule.db. Backup
// streams a consistent snapshot of the live file; Compact rewrites it offline.
//
// It is the only package in joule that imports go.etcd.io/bbolt; everything
// else sees api.Job and api.Node values. It must not import scheduler, power,
// web or agent: the daemon decides, storage only remembers.
//
// Durability: every Save or Apply is one bbolt read-write transaction committed with
// fsync, so when Save returns nil the data survives a crash (kill -9, power
// loss). Callers acknowledge nothing to users or agents before Save returns.
//
// Concurrency: a DB is safe for use by several goroutines; bbolt serialises
// writers and lets readers run alongside. Only one process may open a data
// directory at a time (bbolt holds an exclusive flock on joule.db); a second
// Open fails after about a second with an error that says so.
package storage
