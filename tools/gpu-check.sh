#!/usr/bin/env bash
# The checks that need a real CUDA device, in one run (tools/gpu_check.py says what each step does).
#
#   tools/gpu-check.sh [--out DIR] [--prepare-only]
#
# Without a CUDA device: one line says so, every step is recorded as skipped, exit 0, nothing is
# built. With one: uses $PYTHON if this project and its test extras are installed there, else makes
# a venv that sees the machine's own torch/triton/transformers (--system-site-packages) and
# installs this project into it with the test and triton extras; takes
# the pinned SGLang's and the older eras' Triton kernel sources from their wheels (downloaded, or
# from $GPU_CHECK_WHEELS for a machine without a package index), then runs every step with a time
# budget each. --prepare-only downloads those wheels and stops (run it where the index is reachable,
# then carry the folder). Results: DIR/gpu-check.json and DIR/summary.txt (DIR: gpu-check-out).
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
    *) echo "usage: $0 [--out DIR] [--prepare-only]" >&2; exit 2 ;;
  esac
done

fetch_wheels() {
  mkdir -p "$WHEELS"
  for v in "${KERNEL_RELEASES[@]}"; do
    compgen -G "$WHEELS/sglang-$v-*.whl" >/dev/null ||
      "$PY" -m pip download -q --no-deps --only-binary=:all: "sglang==$v" -d "$WHEELS"
  done
}

if [ "$PREPARE_ONLY" = 1 ]; then fetch_wheels; echo "gpu-check: wheels in $WHEELS"; exit 0; fi

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  exec "$PY" "$REPO/tools/gpu_check.py" --out "$OUT"   # says "no CUDA device" in one line, exit 0
fi

start=$SECONDS
step() { echo "gpu-check: $1 ($((SECONDS - start)) s)"; }
if "$PY" -c 'import pytest_mmhash, pytest, hypothesis, triton' 2>/dev/null; then
  RUN=$PY   # this project and its test extras are already installed there
else
  step "build: venv with the machine's torch, this project [test,triton]"
  [ -x "$WORK/venv/bin/python" ] || "$PY" -m venv --system-site-packages "$WORK/venv"
  "$WORK/venv/bin/pip" install -q --no-build-isolation -e "$REPO[test,triton]" ||
    "$WORK/venv/bin/pip" install -q --no-build-isolation --no-deps -e "$REPO"
  RUN=$WORK/venv/bin/python
fi
step "build: SGLang kernel sources (${KERNEL_RELEASES[*]})"
fetch_wheels
for v in "${KERNEL_RELEASES[@]}"; do
  "$RUN" - "$WHEELS" "$v" "$WORK/src/$v" <<'PY'
import sys, zipfile
from pathlib import Path
wheels, version, dest = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
wheel = next(wheels.glob(f"sglang-{version}-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.endswith(("layers/multimodal.py", "ops/memory/gpu_tensor_hash.py")):
            zf.extract(name, dest)
PY
done
step "run"
timeout 470 "$RUN" "$REPO/tools/gpu_check.py" --out "$OUT" --kernels "$WORK/src"
