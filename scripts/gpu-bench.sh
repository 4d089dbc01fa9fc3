#!/usr/bin/env bash
# gpu-bench.sh: joule's CUDA trainer against PyTorch on the same GPU, with
# the GPU's energy per epoch read from NVML.
#
# For the MNIST MLP (784-256-128-10, batch 128) and the wide MLP
# (4096-4096-4096-10, batch 1024), ReLU, Adam lr 0.001, softmax
# cross-entropy, random data uploaded from pinned host memory every step and
# the loss read back every step on both sides, it prints the median samples/s
# of joule (BenchmarkGPUStep* in trainer's test binary) and of PyTorch
# (gpu_bench.py torch), their ratio (target for the wide MLP: >= 0.90), and
# the GPU's energy per epoch (60000 samples) and mean power over the timed
# steps, from NVML's total-energy counter (gpu_bench.py measure).
#
# Power limits: it measures at the GPU's current limit. With
# GPU_BENCH_SET_LIMITS=1 it also sets 70% and 50% of the default limit (each
# clamped to the GPU's minimum, root needed) and restores the default at the
# end; it says so when a limit cannot be set. Without it, the GPU's settings
# are left alone and the 70%/50% rows say why they are missing.
#
# Usage: scripts/gpu-bench.sh                     (RUNS=3 by default)
#        RUNS=5 PRECISION=tf32 GPU_BENCH_SET_LIMITS=1 scripts/gpu-bench.sh
# Needs: an NVIDIA GPU and driver, CUDA 12/13 cuBLAS and NVRTC (JOULE_CUDA_LIB_DIR
# if they are not on the library path), python3 with torch for the PyTorch
# side, and either go or a prebuilt trainer test binary (TRAINER_TEST, or
# .gpu/tests/trainer.test from ../shared/gpu/prepare.sh).
set -uo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PRECISION=${PRECISION:-fp32}
PY=${PY:-python3}
MNIST_STEPS=${MNIST_STEPS:-1000}
WIDE_STEPS=${WIDE_STEPS:-100}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== gpu-bench $(date -u +%FT%TZ), precision $PRECISION, runs $RUNS"
if ! "$PY" scripts/gpu_bench.py info >"$tmp/info" 2>&1; then
	echo "no GPU measured: $(cat "$tmp/info")"
	exit 1
fi
val() { awk -v k="$1" '$1 == k {print $2; exit}' "$2"; }
gpu=$(val gpu_name "$tmp/info" | tr _ ' ')
deflim=$(val default_limit_w "$tmp/info")
curlim=$(val limit_w "$tmp/info")
minlim=$(val min_limit_w "$tmp/info")
echo "gpu: $gpu; power limit now $curlim W (default $deflim W, minimum $minlim W)"

# Where the CUDA libraries are, unless JOULE_CUDA_LIB_DIR says: the driver's
# libcuda.so.1 and cuBLAS/NVRTC from the system (ldconfig) or from the
# nvidia-* wheels that PyTorch installs.
if [[ -z ${JOULE_CUDA_LIB_DIR:-} ]]; then
	dirs=()
	for lib in libcuda.so.1 libcublas.so.13 libcublas.so.12 libnvrtc.so.13 libnvrtc.so.12; do
		p=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')
		[[ -n $p ]] && dirs+=("$(dirname "$p")")
	done
	for mod in nvidia.cublas nvidia.cuda_nvrtc nvidia.cu13; do
		p=$("$PY" -c "import $mod, os; print(os.path.join(list($mod.__path__)[0], 'lib'))" 2>/dev/null) && [[ -d $p ]] && dirs+=("$p")
	done
	JOULE_CUDA_LIB_DIR=$(printf '%s\n' "${dirs[@]}" | awk '!seen[$0]++' | paste -sd: -)
	export JOULE_CUDA_LIB_DIR
	export LD_LIBRARY_PATH=${JOULE_CUDA_LIB_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
echo "JOULE_CUDA_LIB_DIR=$JOULE_CUDA_LIB_DIR"

# The trainer's test binary.
bin=${TRAINER_TEST:-}
if [[ -z $bin && -x .gpu/tests/trainer.test ]]; then bin=$PWD/.gpu/tests/trainer.test; fi
if [[ -z $bin ]]; then
	if ! command -v go >/dev/null; then
		echo "no trainer test binary: set TRAINER_TEST or install go"
		exit 1
	fi
	go test -c -o "$tmp/trainer.test" ./trainer || exit 1
	bin=$tmp/trainer.test
fi
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
	echo "note: python3 has no CUDA-enabled torch: the PyTorch columns will be empty"
fi

median() {
	sort -g | awk '{a[NR]=$1} END { if (NR == 0) { print "n/a"; exit }
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.5g\n", m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f\n", a / b }'; }
field() { awk -v k="$1" '$1 == "region" { for (i = 2; i < NF; i++) if ($i == k) print $(i+1) }' "${@:2}"; }

# run LABEL: alternate joule and PyTorch, RUNS times, both models.
run() {
	local label=$1 r
	for r in $(seq "$RUNS"); do
		( cd trainer && JOULE_BENCH_PRECISION=$PRECISION "$PY" ../scripts/gpu_bench.py measure -- "$bin" -test.run '^$' \
			-test.v -test.bench '^BenchmarkGPUStepMNIST$' -test.benchtime "${MNIST_STEPS}x" ) >"$tmp/$label.joule.mnist.$r" 2>&1
		"$PY" scripts/gpu_bench.py measure -- "$PY" scripts/gpu_bench.py torch --model mnist --steps "$MNIST_STEPS" \
			--precision "$PRECISION" >"$tmp/$label.torch.mnist.$r" 2>&1
		( cd trainer && JOULE_BENCH_PRECISION=$PRECISION "$PY" ../scripts/gpu_bench.py measure -- "$bin" -test.run '^$' \
			-test.v -test.bench '^BenchmarkGPUStepWide$' -test.benchtime "${WIDE_STEPS}x" ) >"$tmp/$label.joule.wide.$r" 2>&1
		"$PY" scripts/gpu_bench.py measure -- "$PY" scripts/gpu_bench.py torch --model wide --steps "$WIDE_STEPS" \
			--precision "$PRECISION" >"$tmp/$label.torch.wide.$r" 2>&1
	done
	if ! grep -q '^region' "$tmp/$label.joule.mnist.1"; then
		echo "joule did not run on the GPU ($label):"
		grep -E 'SKIP|FAIL|Error|error|no usable' "$tmp/$label.joule.mnist.1" | head -5 | sed 's/^/  /'
	fi
	if ! grep -q '^region' "$tmp/$label.torch.mnist.1"; then
		echo "PyTorch did not run ($label):"
		tail -3 "$tmp/$label.torch.mnist.1" | sed 's/^/  /'
	fi
}

# report LABEL LIMIT_W: one row per model.
report() {
	local label=$1 lim=$2 m js ts je te jw tw
	for m in mnist wide; do
		# The region lines of the full runs (the benchmark's 1-step probe run is the first, dropped).
		js=$(for f in "$tmp/$label.joule.$m".*; do field samples_s "$f" | tail -1; done | median)
		ts=$(field samples_s "$tmp/$label.torch.$m".* | median)
		je=$(for f in "$tmp/$label.joule.$m".*; do field j_per_60k "$f" | tail -1; done | median)
		te=$(field j_per_60k "$tmp/$label.torch.$m".* | median)
		jw=$(for f in "$tmp/$label.joule.$m".*; do field avg_w "$f" | tail -1; done | median)
		tw=$(field avg_w "$tmp/$label.torch.$m".* | median)
		printf '%-6s %-9s %12s %12s %7s %11s %11s %8s %8s\n' "$m" "$lim" "$js" "$ts" "$(ratio "$js" "$ts")" "$je" "$te" "$jw" "$tw"
	done
}

labels=(current)
limits=("$curlim W")
run current
if [[ ${GPU_BENCH_SET_LIMITS:-} == 1 ]]; then
	changed=0
	trap '[[ $changed == 1 ]] && "$PY" scripts/gpu_bench.py setlimit "$deflim" >/dev/null; rm -rf "$tmp"' EXIT
	for pct in 70 50; do
		w=$(awk -v d="$deflim" -v p="$pct" -v lo="$minlim" 'BEGIN { w = d * p / 100; if (w < lo) w = lo; printf "%.0f\n", w }')
		if msg=$("$PY" scripts/gpu_bench.py setlimit "$w" 2>&1); then
			changed=1
			labels+=("p$pct"); limits+=("$w W")
			run "p$pct"
		else
			echo "$pct% of the default limit ($w W): not measured: $msg"
		fi
	done
	if [[ $changed == 1 ]]; then "$PY" scripts/gpu_bench.py setlimit "$deflim" && changed=0; fi
else
	echo "70% and 50% of the default limit: not measured; GPU_BENCH_SET_LIMITS=1 lets this script set them (root; it restores $deflim W after)"
fi

echo
echo "== samples/s and energy per epoch (60000 samples), medians of $RUNS runs, GEMM $PRECISION"
printf '%-6s %-9s %12s %12s %7s %11s %11s %8s %8s\n' model limit joule torch ratio "joule J/ep" "torch J/ep" "joule W" "torch W"
for i in "${!labels[@]}"; do
	report "${labels[$i]}" "${limits[$i]}"
done
echo "target: ratio >= 0.90 on the wide MLP (joule/PyTorch samples/s)"
echo "torch: $(awk '/^torch_version/ {print $2; exit}' "$tmp"/current.torch.mnist.1 2>/dev/null)"
