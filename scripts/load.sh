#!/usr/bin/env bash
# Load test: schedulerd with 1,000 simulated agents heartbeating every second
# while clients submit 20,000 jobs. Prints durable submissions/s, heartbeat
# p50/p99, group-commit figures (requests per fsync, fsyncs/s) and
# schedulerd's CPU and memory.
#
#   scripts/load.sh                       the issue's scale
#   AGENTS=200 JOBS=5000 scripts/load.sh  smaller
#   RUNS=3 scripts/load.sh                several runs (report the median)
#   TIME_LIMIT=2m scripts/load.sh         stop submitting after 2m (default 5m)
#   PPROF=127.0.0.1:6060 scripts/load.sh  schedulerd serves Go's profiler there
#
# schedulerd runs as its own process on a fresh data dir (a real bbolt file,
# every acknowledged submission synced); the submitters run in the load
# process (scripts/load) and the agents in a child of it of their own, as real
# agents run on their own machines (LOAD_FLAGS=--one-process puts them
# together), all over loopback HTTP. They share this machine's cores, so the
# load generator's own CPU is part of the picture.
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${AGENTS:-1000}
jobs=${JOBS:-20000}
clients=${CLIENTS:-256}
runs=${RUNS:-1}
port=${PORT:-7071}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/schedulerd ./scripts/load
for run in $(seq "$runs"); do
  data=$(mktemp -d)
  "$bin/schedulerd" --data-dir "$data" --listen "127.0.0.1:$port" --node-timeout 30s ${PPROF:+--pprof "$PPROF"} 2>"$data/schedulerd.log" &
  pid=$!
  for _ in $(seq 100); do [[ -s "$data/admin.token" ]] && break; sleep 0.1; done
  echo "== run $run: $agents agents, $jobs jobs, $clients submitters (schedulerd pid $pid, data $data)"
  "$bin/load" --server "http://127.0.0.1:$port" --token-file "$data/admin.token" --pid "$pid" \
    --agents "$agents" --jobs "$jobs" --clients "$clients" --time-limit "${TIME_LIMIT:-5m}" ${LOAD_FLAGS:-} || true
  echo "database: $(du -h "$data/joule.db" | cut -f1)"
  kill "$pid"; wait "$pid" || true
  rm -rf "$data"
done
