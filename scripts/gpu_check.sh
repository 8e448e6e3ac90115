#!/usr/bin/env bash
# The GPU check: one prepared run of everything that needs a GPU, one report.
#
#   bash scripts/gpu_check.sh            # report in ${OUT:-gpu_check_out}/gpu_report.md
#
# 1. the machine: nvidia-smi, torch's and JAX's view of the devices;
# 2. the torch tests parametrised over devices, CUDA cases only (-k cuda);
# 3. the JAX tests with JAX's default device on the GPU (JAX_PLATFORMS=cuda);
# 4. benchmarks/run.py on W1-W4 for both backends on the GPU: ours, the
#    floors and the mRNNTorch-style loop, medians and ratios.
#
# It uses the machine's own python3 (CUDA builds of torch and JAX) with this
# checkout on PYTHONPATH, never the pinned CPU requirements, and installs
# nothing. On a machine without CUDA it says what it skipped and exits 0.
# Each step has its own time limit so the whole run ends within about
# 8 minutes on one GPU; a step that runs out is reported as such.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
REPORT="$OUT/gpu_report.md"
export PYTHONPATH="$ROOT:$ROOT/backends${PYTHONPATH:+:$PYTHONPATH}"
export MRNN_HYPOTHESIS_PROFILE=${MRNN_HYPOTHESIS_PROFILE:-ci}
export PYTHONUNBUFFERED=1
status=0

say() { echo "$*" | tee -a "$REPORT"; }
block() { echo '```' >>"$REPORT"; cat "$1" >>"$REPORT"; echo '```' >>"$REPORT"; }

# step NAME LIMIT_S COMMAND...: run, keep the output in the report, note the outcome.
step() {
  local name=$1 limit=$2; shift 2
  local log="$OUT/$name.log" t0=$SECONDS rc
  say ""
  say "## $name"
  say ""
  say "\`$*\` (limit ${limit} s)"
  timeout "$limit" "$@" >"$log" 2>&1
  rc=$?
  tail -n 60 "$log" >"$log.tail"
  block "$log.tail"
  case $rc in
    0) say "-> passed in $((SECONDS - t0)) s" ;;
    124) say "-> STOPPED at its ${limit} s limit"; status=1 ;;
    *) say "-> FAILED (exit $rc) after $((SECONDS - t0)) s"; status=1 ;;
  esac
}

: >"$REPORT"
say "# mrnn GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say ""
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/smi.txt" 2>&1
  say "nvidia-smi: $(cat "$OUT/smi.txt")"
else
  say "nvidia-smi: not found"
fi
"$PY" - >"$OUT/versions.txt" 2>&1 <<'EOF'
import platform
print("python", platform.python_version())
try:
    import torch
    cuda = torch.cuda.is_available()
    print("torch", torch.__version__, "cuda available:", cuda,
          "device:", torch.cuda.get_device_name(0) if cuda else "-")
except Exception as err:  # a report, not a test: say what is missing
    print("torch: not importable:", err)
try:
    import jax
    print("jax", jax.__version__, "devices:", jax.devices())
except Exception as err:
    print("jax: not importable:", err)
EOF
block "$OUT/versions.txt"

have_cuda=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
have_jax_gpu=$("$PY" -c "import jax; print(int(any(d.platform == 'gpu' for d in jax.devices())))" 2>/dev/null || echo 0)

if [ "$have_cuda" = 1 ]; then
  step torch_cuda_tests 150 "$PY" -m pytest tests/torch -q -x -p no:cacheprovider -k cuda
else
  say ""
  say "## torch_cuda_tests: SKIPPED (torch sees no CUDA device)"
fi

if [ "$have_jax_gpu" = 1 ]; then
  JAX_PLATFORMS=cuda step jax_gpu_tests 150 "$PY" -m pytest tests/jax -q -x -p no:cacheprovider
else
  say ""
  say "## jax_gpu_tests: SKIPPED (JAX sees no GPU)"
fi

if [ "$have_cuda" = 1 ] || [ "$have_jax_gpu" = 1 ]; then
  backends=""
  [ "$have_cuda" = 1 ] && backends="torch"
  [ "$have_jax_gpu" = 1 ] && backends="${backends:+$backends,}jax"
  step benchmarks 240 "$PY" benchmarks/run.py --device cuda --backends "$backends" \
    --workloads W1,W2,W3,W4 --repeats 3 --budget 20 --timeout 200 --markdown "$OUT/benchmarks.md"
else
  say ""
  say "## benchmarks: SKIPPED (no GPU for either backend)"
fi

say ""
say "Report: $REPORT (exit $status)"
exit "$status"
