#!/usr/bin/env bash
# cap-target.sh: issue 6's simulator target on ITP traces. For each
# TRACE:NODES it replays policy energy, takes its mean GPU power (GPU energy
# over makespan), replays energy+cap with a budget of FACTOR (default 1.15)
# times that, and prints GPU energy and mean JCT of energy+cap relative to
# energy, the seconds over budget, the jobs that cannot run under the budget
# (unrunnable_jobs) and each replay's wall time. The target: GPU energy <=
# 0.90x at mean JCT <= 1.08x with 0 s over budget. SLOWDOWN sets
# energy+cap's --balanced-slowdown (default 0.10, the target's); label runs
# with another value as such.
#
# Usage: scripts/cap-target.sh [TRACE:NODES ...]   (FACTOR=2 SLOWDOWN=0.05 scripts/cap-target.sh ...)
# Example: scripts/cap-target.sh ../shared/traces/itp_cluster05.csv:12
set -euo pipefail
cd "$(dirname "$0")/.."
factor=${FACTOR:-1.15}
slowdown=${SLOWDOWN:-0.10}
runs=("$@")
[[ ${#runs[@]} -gt 0 ]] || runs=(../shared/traces/itp_cluster05.csv:12 ../shared/traces/itp_cluster01.csv:16 ../shared/traces/itp_cluster06.csv:32)
for r in "${runs[@]}"; do
	[[ -f ${r%%:*} ]] || { echo "skip ${r%%:*}: not found (../shared is beside the checkout in CI)"; continue; }
done
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/schedulerd
echo "budget = $factor x energy's mean GPU power; energy+cap --balanced-slowdown $slowdown"
printf '%-22s %6s %10s %10s %9s %9s %9s %10s %8s %8s\n' trace nodes mean_gpu_kw budget_kw gpu_energy mean_jct over_s unrunnable energy_s cap_s
for r in "${runs[@]}"; do
	trace=${r%%:*} nodes=${r##*:}
	[[ -f $trace ]] || continue
	t0=$(date +%s.%N)
	base=$("$bin/schedulerd" simulate --trace "$trace" --nodes "$nodes" --policy energy -o json --progress=false 2>/dev/null)
	t1=$(date +%s.%N)
	kw=$(python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["gpu_energy_kwh"]*3600/r["makespan_s"])' <<<"$base")
	budget=$(python3 -c "print($kw*$factor)")
	if ! cap=$("$bin/schedulerd" simulate --trace "$trace" --nodes "$nodes" --policy energy+cap --budget-kw "$budget" \
		--balanced-slowdown "$slowdown" -o json --progress=false 2>"$bin/err"); then
		printf '%-22s %6s %10.2f %10.2f  energy+cap failed: %s\n' "$(basename "$trace")" "$nodes" "$kw" "$budget" "$(tail -1 "$bin/err")"
		continue
	fi
	t2=$(date +%s.%N)
	python3 - "$trace" "$nodes" "$kw" "$budget" "$t0" "$t1" "$t2" <<PY
import json, sys, os
b = json.loads('''$base''')["results"][0]
c = json.loads('''$cap''')["results"][0]
t, n, kw, bud = sys.argv[1:5]
t0, t1, t2 = map(float, sys.argv[5:8])
print("%-22s %6s %10.2f %10.2f %8.3fx %8.3fx %9.0f %10d %8.1f %8.1f" % (os.path.basename(t), n, float(kw), float(bud),
      c["gpu_energy_kwh"] / b["gpu_energy_kwh"], c["mean_jct_s"] / b["mean_jct_s"], c["budget_violation_s"],
      c["unrunnable_jobs"], t1 - t0, t2 - t1))
if c.get("unrunnable_reason"):
    print("    unrunnable: " + c["unrunnable_reason"])
PY
done
