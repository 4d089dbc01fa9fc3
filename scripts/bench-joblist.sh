#!/usr/bin/env bash
# bench-joblist.sh: how long GET /api/v1/jobs holds schedulerd's core lock.
#
# Setup (scheduler/joblist_bench_test.go, BenchmarkListJobs): histories of
# 20,000 and 100,000 jobs from 50 users, the newest 8,000 running, the rest
# finished.
#   all-jobs      the old path: Core.Jobs, every job sorted and copied
#   user-running  a page of 100 of one user's running jobs (Core.ListJobs)
#   running       a page of 100 running jobs of any user, which walks past
#                 every finished job before the first running one
# Each runs COUNT times (default 5); the script prints medians and each
# page's ratio to the old path.
#
# Usage: scripts/bench-joblist.sh            COUNT=3 scripts/bench-joblist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "running: go test ./scheduler -run X -bench ListJobs -count $count" >&2
go test ./scheduler -run X -bench ListJobs -count "$count" | tee "$out" >&2
python3 - "$out" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'BenchmarkListJobs/jobs=(\d+)/(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op', line)
    if m:
        rows.setdefault((int(m.group(1)), m.group(2)), []).append(float(m.group(3)))
print("core lock held per GET /api/v1/jobs (medians of %d runs)" % len(rows.get((20000, "all-jobs"), [])))
print("%8s %-14s %12s %12s" % ("jobs", "request", "lock held", "old / new"))
for n in sorted({k[0] for k in rows}):
    old = statistics.median(rows[(n, "all-jobs")])
    for name in ("all-jobs", "user-running", "running"):
        v = statistics.median(rows[(n, name)])
        print("%8d %-14s %9.3f ms %11.0fx" % (n, name, v / 1e6, old / v))
PY
