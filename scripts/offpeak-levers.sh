#!/usr/bin/env bash
# offpeak-levers.sh: each lever's share of issue 7's off-peak saving. For each
# TRACE:NODES (H100 nodes) it replays, with the two-rate tariff
# examples/tariff-two-rate.json and a deferrable fraction F (default 0.3),
# fifo-firstfit, energy, energy+cap, and energy+cap+offpeak with its levers
# (schedulerd simulate --offpeak-levers) none (deferral alone), yield, yield,deadline (the policy's own),
# efficient and yield,efficient; and prints per row the cost against
# fifo-firstfit and against energy+cap, the meetable deadlines missed (and
# how many of those fifo-firstfit meets), and the non-deferrable jobs' mean
# JCT against fifo-firstfit. SLOWDOWN and BUDGET_PER_GPU_KW as in
# offpeak-target.sh.
#
# Usage: scripts/offpeak-levers.sh [TRACE:NODES ...]
# Example: scripts/offpeak-levers.sh ../shared/traces/itp_cluster09.csv:6
set -euo pipefail
cd "$(dirname "$0")/.."
f=${F:-0.3}
per_gpu=${BUDGET_PER_GPU_KW:-0.7}
slowdown=${SLOWDOWN:-0.10}
runs=("$@")
[[ ${#runs[@]} -gt 0 ]] || runs=(../shared/traces/itp_cluster04.csv:88 ../shared/traces/itp_cluster07.csv:48 ../shared/traces/itp_cluster09.csv:6)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/schedulerd
for r in "${runs[@]}"; do
	trace=${r%%:*} nodes=${r##*:}
	if [[ ! -f $trace ]]; then
		echo "skip $trace: not found (../shared is beside the checkout in CI)"
		continue
	fi
	budget=$(python3 -c "print(round($nodes*8*$per_gpu, 3))")
	sim() {
		"$bin/schedulerd" simulate --trace "$trace" --nodes "$nodes" --gpu h100 --budget-kw "$budget" --balanced-slowdown "$slowdown" \
			--tariff examples/tariff-two-rate.json --deferrable-fraction "$f" -o json --progress=false "$@" 2>"$bin/err" ||
			{ echo "$(basename "$trace"): simulate failed: $(tail -1 "$bin/err")" >&2; exit 1; }
	}
	sim --policy fifo-firstfit,energy,energy+cap >"$bin/base.json"
	for l in none yield yield,deadline efficient yield,efficient; do
		sim --policy energy+cap+offpeak --offpeak-levers "$l" >"$bin/lever-$l.json"
	done
	echo "$(basename "$trace"), $nodes nodes, F=$f, balanced slowdown $slowdown:"
	python3 - "$bin" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
base = {r["policy"]: r for r in json.load(open(os.path.join(d, "base.json")))["results"]}
rows = [(p, base[p]) for p in ("fifo-firstfit", "energy", "energy+cap")]
for l in ("none", "yield", "yield,deadline", "efficient", "yield,efficient"):
    rows.append(("+offpeak " + l, json.load(open(os.path.join(d, "lever-%s.json" % l)))["results"][0]))
fifo, cap = base["fifo-firstfit"], base["energy+cap"]
fifo_missed = set(fifo["offpeak"].get("missed_jobs") or [])
print("  %-26s %9s %9s %7s %9s %9s" % ("policy", "cost/fifo", "cost/cap", "missed", "not_fifo", "jct_non"))
for name, r in rows:
    o = r["offpeak"]
    missed = set(o.get("missed_jobs") or [])
    print("  %-26s %8.3fx %8.3fx %7d %9d %8.3fx" % (name, r["cost"] / fifo["cost"], r["cost"] / cap["cost"],
        o["deadlines_missed"], len(missed - fifo_missed), o["mean_jct_nondeferrable_s"] / fifo["offpeak"]["mean_jct_nondeferrable_s"]))
PY
done
echo "missed: meetable deferrable jobs finished > 24 h after submission; not_fifo: of those, met by fifo-firstfit; jct_non: non-deferrable mean JCT"
