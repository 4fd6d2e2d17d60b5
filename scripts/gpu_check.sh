#!/usr/bin/env bash
# The GPU checks of the fused patch attention, in one run (H100/H200, CUDA 13, torch with CUDA, cmake).
#
#   bash scripts/gpu_check.sh            # from the repository root; no install, no internet needed
#
# Steps: GPU line; CMake configure + build (sm_90) in /tmp; ctest; the kernel test binary; the
# PyTorch extension build; pytest tests/dsrir/ops/test_patch_attention_ops.py (GPU tests run, ONNX Runtime
# tests skip if onnxruntime is missing); benchmarks/patch_attention.py. A failing step does not
# stop the others; each has a time cap inside an overall budget of about 5.5 minutes, and the
# script ends with one summary line per step and exits non-zero if any step failed.
# Log: ${OUT:-/tmp}/gpu_check.log; benchmark JSON: ${OUT:-/tmp}/patch_attention_benchmark.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
OUT_DIR=${OUT:-/tmp}
mkdir -p "$OUT_DIR"
LOG=$OUT_DIR/gpu_check.log
BUILD=${DSRIR_BUILD_DIR:-/tmp/dsrir_gpu_check_build}
BUDGET_S=${GPU_CHECK_BUDGET_S:-330}   # stay under 6 minutes in all
BENCH_RESERVE_S=60                    # kept for the benchmark while earlier steps run
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/dsrir_torch_extensions}
export MAX_JOBS=${MAX_JOBS:-16}
export PYTHONDONTWRITEBYTECODE=1
PY=${PYTHON:-python3}

STEPS=()
CODES=()
TIMES=()

# run_step NAME CAP_SECONDS RESERVE_SECONDS COMMAND...: runs COMMAND with a timeout of
# min(CAP, time left - RESERVE), records its exit code (124: timed out) and never stops the script.
run_step() {
    local name=$1 cap=$2 reserve=$3
    shift 3
    local left=$((BUDGET_S - SECONDS - reserve))
    local limit=$((cap < left ? cap : left))
    local start=$SECONDS code=0
    echo
    echo "=== $name (limit ${limit}s) ==="
    if ((limit < 5)); then
        echo "no time left for $name"
        code=125
    else
        timeout --kill-after=10 "$limit" "$@" || code=$?
    fi
    STEPS+=("$name")
    CODES+=("$code")
    TIMES+=("$((SECONDS - start))")
    echo "=== $name: exit $code in $((SECONDS - start))s ==="
    return 0
}

main() { # the body is not indented: it holds a multi-line Python snippet
echo "gpu_check $(date -u +%FT%TZ) in $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
run_step "nvidia-smi" 20 "$BENCH_RESERVE_S" \
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader
echo "python: $($PY --version 2>&1); $($PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)"
echo "nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo missing); cmake: $(cmake --version 2>/dev/null | head -1 || echo missing)"
echo "ninja: $(command -v ninja || $PY -c 'import ninja; print(ninja.BIN_DIR)' 2>/dev/null || echo 'missing: the extension builds with setuptools')"
for module in numpy onnx onnxruntime onnxruntime_extensions cv2; do
    printf '%s: %s\n' "$module" "$($PY -c "import $module; print(getattr($module, '__version__', 'present'))" 2>/dev/null || echo missing)"
done

run_step "cmake configure" 60 "$BENCH_RESERVE_S" \
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
run_step "cmake build" 150 "$BENCH_RESERVE_S" cmake --build "$BUILD" -j "$MAX_JOBS"
run_step "ctest" 60 "$BENCH_RESERVE_S" ctest --test-dir "$BUILD" --output-on-failure
run_step "kernel test binary" 60 "$BENCH_RESERVE_S" "$BUILD/test_patch_attention_kernels"

run_step "torch extension build" 180 "$BENCH_RESERVE_S" "$PY" -c '
import sys, time, warnings
warnings.simplefilter("ignore")
start = time.time()
from dsrir.ops import patch_attention_cuda as pac
ok = pac.fused_patch_attention_available()
print(f"fused op available: {ok} ({time.time() - start:.0f} s)")
if not ok:
    print(pac.fused_unavailable_reason())
sys.exit(0 if ok else 1)
'

rm -f "$TORCH_EXTENSIONS_DIR"/*/lock # a build killed by its time limit leaves a lock that would block pytest
PYTEST_ARGS=(-q -p no:cacheprovider -rs)
if ! "$PY" -c "import cv2" 2>/dev/null; then
    PYTEST_ARGS+=(--noconftest) # tests/conftest.py needs OpenCV; these tests do not use it
fi
run_step "pytest tests/dsrir/ops/test_patch_attention_ops.py" 240 "$BENCH_RESERVE_S" \
    "$PY" -m pytest "${PYTEST_ARGS[@]}" tests/dsrir/ops/test_patch_attention_ops.py

run_step "benchmark" 120 0 "$PY" benchmarks/patch_attention.py --output "$OUT_DIR/patch_attention_benchmark.json"

echo
echo "=== summary ($SECONDS s, log $LOG) ==="
failed=0
for i in "${!STEPS[@]}"; do
    case ${CODES[$i]} in
    0) verdict=ok ;;
    77) verdict="skipped (exit 77)" ;; # the kernel test found no GPU
    *) verdict="FAILED (exit ${CODES[$i]})" failed=1 ;;
    esac
    printf '%-42s %-22s %4ss\n' "${STEPS[$i]}" "$verdict" "${TIMES[$i]}"
done
return "$failed"
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
