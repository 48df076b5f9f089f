#!/usr/bin/env bash
# Install real SGLang with its multimodal processor path on CPU, for the sglang-processor method,
# its oracle tests and the request golden entries (see requirements/README.md, spec §10).
#
#   tools/install-sglang-processor.sh VERSION VENV_DIR      VERSION: 0.5.23 or 0.5.9
#
# 0.5.23: the pinned recipe (tools/install-sglang.sh 0.5.23; its extras include what the processor
#   path imports: transformers, tokenizers, torchvision, einops, uvicorn, uvloop).
# 0.5.9: its own venv, because 0.5.9's processors need transformers 4.x: torch==2.13.0 + numpy,
#   `pip install --no-deps sglang==0.5.9`, requirements/processor-0.5.9.txt.
# Both: requirements/processor-test.txt (pytest, and scikit-image + matplotlib for their sample
#   photographs), then this checkout (--no-deps, editable). Idempotent.
# 0.5.23 also gets its audio path (requirements/processor-audio*.txt): soundfile, torchaudio 2.11.0
#   without its CUDA-only C extension (unused by sglang's audio loading), the packages that ship the
#   test recordings; torchcodec is kept out (PyPI's is a CUDA build: importing it raises OSError,
#   which sglang does not catch).
# At run time call pytest_mmhash.oracle.shims.apply_processor_shims() before SGLang is imported
# (sgl_kernel and decord stubs, torchvision fake-op tolerance); the tests and benchmark do.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 VERSION VENV_DIR" >&2; exit 2; }
VERSION=$1
VENV=$(realpath -m "$2")
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3.11}
TORCH=(-c "$REPO/constraints.txt")

case "$VERSION" in
  0.5.23)
    bash "$REPO/tools/install-sglang.sh" 0.5.23 "$VENV" ;;
  0.5.9)
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q "${TORCH[@]}" torch numpy==2.4.6
    "$VENV/bin/pip" install -q --no-deps sglang==0.5.9
    "$VENV/bin/pip" install -q "${TORCH[@]}" -r "$REPO/requirements/processor-0.5.9.txt"
    if "$VENV/bin/pip" show -q sgl-kernel >/dev/null 2>&1; then "$VENV/bin/pip" uninstall -y -q sgl-kernel; fi
    echo "0.5.9-processor" > "$VENV/.sglang-recipe" ;;
  *)
    echo "no processor recipe for sglang $VERSION (have: 0.5.23, 0.5.9)" >&2; exit 1 ;;
esac
"$VENV/bin/pip" install -q "${TORCH[@]}" -r "$REPO/requirements/processor-test.txt"
if [ "$VERSION" = 0.5.23 ]; then
  "$VENV/bin/pip" install -q "${TORCH[@]}" -r "$REPO/requirements/processor-audio.txt"
  "$VENV/bin/pip" install -q --no-deps -r "$REPO/requirements/processor-audio-nodeps.txt"
  SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -f "$SITE"/torchaudio/lib/*.so
  if "$VENV/bin/pip" show -q torchcodec >/dev/null 2>&1; then "$VENV/bin/pip" uninstall -y -q torchcodec; fi
fi
"$VENV/bin/pip" install -q "${TORCH[@]}" --no-deps -e "$REPO"
echo "sglang $VERSION processor path installed in $VENV: $("$VENV/bin/python" -c \
  'from importlib.metadata import version as v; print("transformers", v("transformers"), "torch", v("torch"))')"
