#!/usr/bin/env bash
# bench-reports.sh: how long an energy report takes over 1, 30 and 365 days of
# per-day usage (200 jobs a day on 8 nodes: a year is 75,920 rows) in a real
# bbolt file, grouped by user and by job. Prints the median of RUNS runs (with
# min-max) and the year/day ratio: reports read one row per job and day, so
# the cost grows with the rows read, not with the heartbeats metered.
#
# Usage: scripts/bench-reports.sh        (RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test ./web -run '^$' -bench BenchmarkEnergyReport -count "$RUNS" -benchtime 20x >"$tmp/out"
median() {
	sort -g | awk -v range="${1:-}" '{a[NR]=$1} END {
		if (NR == 0) { print "n/a"; exit }
		if (range == "-r") { printf "%.3g-%.3g\n", a[1], a[NR]; exit }
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.4g\n", m }'
}
ms() { awk -v name="$1" '$1 ~ "^BenchmarkEnergyReport/"name"(-[0-9]+)?$" { print $3 / 1e6 }' "$tmp/out"; }
echo "== bench-reports $(date -u +%FT%TZ), $RUNS runs, ms per report (median, min-max)"
for by in user job; do
	for days in 1 30 365; do
		printf "days=%-4s by=%-5s %8s ms  (%s)\n" "$days" "$by" "$(ms "days=$days/by=$by" | median)" "$(ms "days=$days/by=$by" | median -r)"
	done
	one=$(ms "days=1/by=$by" | median); year=$(ms "days=365/by=$by" | median)
	awk -v a="$year" -v b="$one" -v by="$by" 'BEGIN { printf "by=%s: a year costs %.0fx a day (365x the rows)\n", by, a / b }'
done
