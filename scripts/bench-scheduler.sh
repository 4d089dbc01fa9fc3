#!/usr/bin/env bash
# bench-scheduler.sh: the scheduler core's speed on one core.
#
# Setup (scheduler/bench_test.go): 10,000 nodes x 8 GPUs, 100,000 queued jobs
# of mixed sizes (1/2/4/8 GPUs: 75/5/8/12%) from 50 users in 5 projects.
#   placements/s  one scheduling pass on the empty cluster, which places jobs
#                 until every GPU is taken (BenchmarkSchedulePass)
#   p99 decision  on the full cluster, one job finishes (a heartbeat reports
#                 it) and the core places what now fits: p50 and p99 of that
#                 decision over many iterations (BenchmarkDecision)
# Both are also given per CPU-second of the (GOMAXPROCS=1) process, which a
# busy shared machine does not distort; wall-clock figures are.
# Each benchmark runs COUNT times (default 5); the script prints medians and
# the ratio to the issue's target of 20,000 placements/s.
#
# Usage: scripts/bench-scheduler.sh            COUNT=3 scripts/bench-scheduler.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "running: go test ./scheduler -run '^\$' -bench 'SchedulePass|Decision' -cpu 1 -count $count (a few minutes)" >&2
go test ./scheduler -run '^$' -bench 'BenchmarkSchedulePass' -benchtime 1x -cpu 1 -count "$count" | tee -a "$out" >&2
go test ./scheduler -run '^$' -bench 'BenchmarkDecision' -benchtime 2000x -cpu 1 -count "$count" | tee -a "$out" >&2
python3 - "$out" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'Benchmark(\S+?)(?:-\d+)?\s+\d+\s+\d+(?:\.\d+)? ns/op\s+(.*)', line)
    if not m:
        continue
    for val, unit in re.findall(r'([\d.]+) (\S+)', m.group(2)):
        rows.setdefault((m.group(1), unit), []).append(float(val))
def med(name, unit):
    v = rows.get((name, unit))
    return statistics.median(v) if v else float('nan')
print("scheduler core, one core, 10,000 nodes x 8 GPUs, 100,000 queued jobs (medians of %d runs)" % len(rows.get(("SchedulePass/energy", "placements/s"), [])))
print("wall-clock figures include time other processes took from this one; per CPU-second figures do not")
print("%-14s %14s %10s %18s %10s %14s %14s %16s" % ("policy", "placements/s", "vs 20,000", "placements/cpu-s", "vs 20,000",
      "decision p50", "decision p99", "decision mean CPU"))
for p in ("energy", "fifo-firstfit"):
    pl = med("SchedulePass/" + p, "placements/s")
    pc = med("SchedulePass/" + p, "placements/cpu-s")
    print("%-14s %14.0f %9.1fx %18.0f %9.1fx %11.0f µs %11.0f µs %13.0f µs" % (p, pl, pl / 20000, pc, pc / 20000,
          med("Decision/" + p, "p50-µs"), med("Decision/" + p, "p99-µs"), med("Decision/" + p, "mean-cpu-µs")))
PY
