#!/usr/bin/env bash
# The checks that need a real CUDA device, in one run (tools/gpu_check.py says what each step does).
#
#   tools/gpu-check.sh [--out DIR] [--prepare-only] [-- GPU_CHECK_PY_ARGS...]
#
# Without a CUDA device: one line says so, every step is recorded as skipped, exit 0, nothing is
# built. With one: uses $PYTHON if this project and its test extras are installed there, else
# installs any wheels in $GPU_CHECK_WHEELS (the real SGLang processor path that steps 5 and 6 run)
# into $GPU_CHECK_WORK/site, offline and without dependencies, and runs this project from the
# checkout, so the machine's own torch, triton and transformers serve the rest. The pinned SGLang's and
# the older eras' Triton kernel sources come from $GPU_CHECK_WORK/src. Every step has a time
# budget; the whole run is capped at $GPU_CHECK_TIMEOUT seconds (default 470).
#
# --prepare-only (run it where the package index is reachable, then carry $GPU_CHECK_WORK to a
# machine that has none): extracts the kernel sources from the three releases' wheels into
# $GPU_CHECK_WORK/src and, where $SGLANG_VENV names a venv made by `mmhash install-sglang 0.5.23`,
# downloads that venv's packages as wheels for the GPU machine's Python ($GPU_CHECK_PYTHON_VERSION,
# default 3.12), leaving out the GPU stack (torch, torchvision, triton, numpy, pillow: the
# machine's own CUDA builds are used) and every name listed in $GPU_CHECK_TARGET_HAS (a file, one
# distribution name per line: what the GPU machine's Python already has).
# Results: DIR/gpu-check.json and DIR/summary.txt (DIR: gpu-check-out).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
WORK=${GPU_CHECK_WORK:-$REPO/.gpu-check}
WHEELS=${GPU_CHECK_WHEELS:-$WORK/wheels}
OUT=gpu-check-out
PREPARE_ONLY=0
KERNEL_RELEASES=(0.4.6.post5 0.4.10 0.5.23)
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --prepare-only) PREPARE_ONLY=1; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--out DIR] [--prepare-only] [-- GPU_CHECK_PY_ARGS...]" >&2; exit 2 ;;
  esac
done

PREP="$REPO/tools/gpu_check_prepare.py"

# extract_kernels: each release's kernel sources, from its wheel, into $WORK/src/VERSION.
extract_kernels() {
  local tmp
  tmp=$(mktemp -d)
  for v in "${KERNEL_RELEASES[@]}"; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: "sglang==$v" -d "$tmp"
    "$PY" "$PREP" kernels "$(compgen -G "$tmp/sglang-$v-*.whl" | head -n1)" "$WORK/src/$v"
  done
  rm -rf "$tmp"
}

# fetch_processor_wheels: $SGLANG_VENV's packages as wheels for the GPU machine's Python, less the
# GPU stack and what the target has; the sglang wheel slimmed (gpu_check_prepare.py says why).
fetch_processor_wheels() {
  local has=${GPU_CHECK_TARGET_HAS:-/dev/null} pyver=${GPU_CHECK_PYTHON_VERSION:-3.12} plat=()
  for p in manylinux_2_17 manylinux_2_24 manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34; do
    plat+=(--platform "${p}_x86_64")
  done
  mkdir -p "$WHEELS"
  "$SGLANG_VENV/bin/python" -m pip freeze --exclude-editable | "$PY" "$PREP" select "$has" |
    while IFS= read -r req; do
      "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
        --implementation cp "${plat[@]}" --platform any -d "$WHEELS" "$req"
    done
  for w in "$WHEELS"/sglang-*.whl; do if [ -e "$w" ]; then "$PY" "$PREP" slim "$w"; fi; done
}

if [ "$PREPARE_ONLY" = 1 ]; then
  extract_kernels
  if [ -n "${SGLANG_VENV:-}" ]; then fetch_processor_wheels; fi
  echo "gpu-check: kernel sources in $WORK/src; $(find "$WHEELS" -name '*.whl' 2>/dev/null | wc -l) wheels in $WHEELS"
  exit 0
fi

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  exec "$PY" "$REPO/tools/gpu_check.py" --out "$OUT" "$@"   # says "no CUDA device" in one line, exit 0
fi

start=$SECONDS
step() { echo "gpu-check: $1 ($((SECONDS - start)) s)"; }
# has_dist NAME...: every distribution is installed for $PY (asked from /, so that the checkout
# itself does not count).
has_dist() {
  (cd / && "$PY" -c 'import importlib.metadata as m, sys; [m.distribution(d) for d in sys.argv[1:]]' \
    "$@") 2>/dev/null
}
if has_dist pytest-mmhash pytest hypothesis triton; then
  RUN=$PY   # this project and its test extras are already installed there
else
  # The wheels go to $WORK/site with --target (a venv made from a venv's python would not see that
  # venv's torch); this project runs from the checkout (nothing to build offline).
  step "build: the wheels in $WHEELS into $WORK/site; this project from $REPO"
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --disable-pip-version-check --upgrade \
      --target "$WORK/site" "$WHEELS"/*.whl
  fi
  export PYTHONPATH=$WORK/site:$REPO${PYTHONPATH:+:$PYTHONPATH}
  # the plugin by name, unless metadata in the checkout (an editable install's egg-info) has it
  has_dist pytest-mmhash || export PYTEST_PLUGINS=pytest_mmhash.plugin
  RUN=$PY
fi
[ -d "$WORK/src" ] || { step "build: SGLang kernel sources (${KERNEL_RELEASES[*]})"; extract_kernels; }
step "run"
timeout "${GPU_CHECK_TIMEOUT:-470}" "$RUN" "$REPO/tools/gpu_check.py" --out "$OUT" --kernels "$WORK/src" "$@"
