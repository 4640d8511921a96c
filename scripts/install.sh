#!/usr/bin/env bash
# `make install`: .venv with exactly the versions in requirements.lock (hash-checked), llama-cpp-python compiled for
# any x86-64 CPU with AVX2 rather than for the CPU that happens to build it, and cachetune itself in editable mode.
# One line per step; a failed step names itself, shows the end of its log and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv
LOGS=.build/install
# No -march=native: a native build on an AVX-512/AMX Xeon crashed or wrote garbage on other CPUs. AVX2/FMA/F16C is the
# baseline of every x86-64 server CPU this project runs on (both CPU kinds were checked, see the README).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON \
-DGGML_F16C=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' requirements.lock)
# Built wheels are kept under a name made of the version and the flags, so a wheel is only ever reused for the very
# same build; pip's own wheel cache is never consulted for it (it ignores CMAKE_ARGS).
LLAMA_KEY=$(printf '%s %s' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)
WHEELHOUSE=${CACHETUNE_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/cachetune/wheels}/llama-cpp-python-$LLAMA_VERSION-$LLAMA_KEY

mkdir -p "$LOGS"
STEPS=6
step=0
run_step() {  # run_step "what" command...: one line out, the command's output in its log
  local what=$1 log
  shift
  step=$((step + 1))
  log="$LOGS/$step.log"
  printf '==> [%d/%d] %s\n' "$step" "$STEPS" "$what"
  if ! "$@" >"$log" 2>&1; then
    echo "make install: step $step/$STEPS ($what) failed; the end of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

# The lock with one package left out, or only that package (its line and its --hash continuation lines).
lock_without() { awk -v name="$1" '$0 ~ "^"name"=="{skip=1; next} skip && /^ /{next} {skip=0; print}' requirements.lock; }
lock_only() { awk -v name="$1" '$0 ~ "^"name"=="{keep=1; print; next} keep && /^ /{print; next} {keep=0}' requirements.lock; }

build_llama() {
  if compgen -G "$WHEELHOUSE/*.whl" >/dev/null; then
    echo "reusing $(ls "$WHEELHOUSE"/*.whl)"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  lock_only llama-cpp-python >"$tmp/llama.lock"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$VENV/bin/python" -m pip wheel --no-deps --no-cache-dir --no-build-isolation --require-hashes \
    -r "$tmp/llama.lock" -w "$tmp/wheel"
  mkdir -p "$(dirname "$WHEELHOUSE")"
  rm -rf "$WHEELHOUSE.partial" && mv "$tmp/wheel" "$WHEELHOUSE.partial" && mv "$WHEELHOUSE.partial" "$WHEELHOUSE"
  rm -rf "$tmp"
}

run_step "virtual environment $VENV ($("$PYTHON" --version 2>&1))" \
  bash -c "test -x $VENV/bin/python || $PYTHON -m venv $VENV"
run_step "locked dependencies from requirements.lock (hash-checked)" \
  "$VENV/bin/python" -m pip install --require-hashes --no-deps -r <(lock_without llama-cpp-python)
run_step "llama-cpp-python $LLAMA_VERSION, portable AVX2 build (a few minutes on 2 cores, the first time only)" build_llama
run_step "llama-cpp-python from $WHEELHOUSE" \
  "$VENV/bin/python" -m pip install --no-deps --force-reinstall "$WHEELHOUSE"/*.whl
run_step "cachetune (editable)" "$VENV/bin/python" -m pip install --no-deps --no-build-isolation -e .
run_step "pip check" "$VENV/bin/python" -m pip check
echo "make install: done ($VENV)"
