#!/usr/bin/env bash
# Install a real SGLang release for recording golden values and the oracle harness (CPU only;
# see requirements/README.md). Ships inside the package next to its recipes (sglang-VERSION.txt);
# `mmhash install-sglang VERSION VENV_DIR` runs it, and tools/install-sglang.sh wraps it.
#
#   install-sglang.sh VERSION VENV_DIR
#
# VERSION is a recipe release (0.5.23, 0.5.5, 0.4.10, 0.4.6.post5): VENV_DIR gets torch==2.13.0 + numpy,
#   `pip install --no-deps sglang==VERSION` and the recipe sglang-VERSION.txt beside this script.
# Any other VERSION runs through the venv of its host recipe (see host_recipe below): the host
#   recipe is installed into VENV_DIR first if VENV_DIR does not hold it yet, then the wheel of
#   VERSION is downloaded (--no-deps) and its sglang/ directory unzipped into
#   VENV_DIR/sglang-src/VERSION/sglang.  VENV_DIR/sglang-src/VERSION/env.sh exports the
#   PYTHONPATH (and SHIM_SGL_KERNEL) needed to import it.
# Idempotent: re-running only re-checks what is already there.
set -euo pipefail

usage() { echo "usage: $0 VERSION VENV_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
VERSION=$1
VENV=$(realpath -m "$2")
RECIPES=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3.11}

# ver_le A B: true when version A <= version B (sort -V order; 0.4.10 < 0.4.10.post2).
ver_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }

# host_recipe V: the recipe venv that can import release V (docs/spec.md §9.1), or nothing.
host_recipe() {
  local v=$1
  if ver_le 0.4.9.post4 "$v" && ver_le "$v" 0.4.10.post2; then echo 0.4.10
  elif [ "$v" = 0.4.6.post5 ]; then echo 0.4.6.post5   # stretch recipe: Triton 3.2.0 + numpy<2
  elif ver_le 0.5.1 "$v" && ver_le "$v" 0.5.5; then echo 0.5.5
  # 0.5.12-0.5.19 clash with transformers 5.24 (docs/spec.md §8.5): refused.
  elif { ver_le 0.5.6 "$v" && ver_le "$v" 0.5.11.post99; } || { ver_le 0.5.20 "$v" && ver_le "$v" 0.5.23; }; then echo 0.5.23
  fi
}

# src_extras V: what hosted release V imports that its host venv lacks, installed --no-deps beside
# its source (VENV/sglang-src/V), so only V's PYTHONPATH sees it. 0.5.20's server_args imports
# function_call_parser, whose detectors import xgrammar (0.5.21+ load them lazily); 0.2.1 is the
# version 0.5.20 declares.
src_extras() {
  case $1 in
    0.5.20) echo xgrammar==0.2.1 ;;
  esac
}

# needs_sgl_kernel_stub V: 0.4.x and 0.5.6-0.5.10 import sgl_kernel at module level (shim 2).
needs_sgl_kernel_stub() {
  local v=$1
  { ver_le 0.4.0 "$v" && ver_le "$v" 0.4.10.post2; } || { ver_le 0.5.6 "$v" && ver_le "$v" 0.5.10; }
}

install_recipe() {
  local v=$1 req="$RECIPES/sglang-$1.txt"
  [ -f "$req" ] || { echo "no recipe file $req" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  # pip must find the CPU build of torch==2.13.0 (PIP_FIND_LINKS / PIP_EXTRA_INDEX_URL, as in .ci/run).
  local pip="$VENV/bin/pip"
  # torch first, from the local CPU wheel; every later step is pinned to it so pip never pulls another.
  local numpy_req
  numpy_req=$(grep -i '^numpy' "$req" | head -n1 || true)
  "$pip" install -q torch==2.13.0 "${numpy_req:-numpy}"
  "$pip" install -q --no-deps "sglang==$v"
  "$pip" install -q -r "$req" -c <(echo torch==2.13.0)
  if "$pip" show -q sgl-kernel >/dev/null 2>&1; then
    echo "sgl-kernel got installed; removing it (it must never be present)" >&2
    "$pip" uninstall -y -q sgl-kernel
  fi
  echo "$v" > "$VENV/.sglang-recipe"
  echo "recipe sglang $v installed in $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
}

RECIPE=$(host_recipe "$VERSION")
[ -n "$RECIPE" ] || { echo "no venv recipe known to run sglang $VERSION (recipes: $(cd "$RECIPES" && ls sglang-*.txt | sed "s/^sglang-//; s/[.]txt$//" | xargs); see the project's requirements/README.md)" >&2; exit 1; }

if [ -f "$RECIPES/sglang-$VERSION.txt" ]; then
  install_recipe "$VERSION"
  SRC_ROOT=""
else
  if [ "$(cat "$VENV/.sglang-recipe" 2>/dev/null)" != "$RECIPE" ]; then
    echo "installing host recipe $RECIPE into $VENV first"
    install_recipe "$RECIPE"
  fi
  SRC_ROOT="$VENV/sglang-src/$VERSION"
  if [ ! -f "$SRC_ROOT/sglang/version.py" ]; then
    WHEELS="$VENV/sglang-src/wheels"
    mkdir -p "$WHEELS" "$SRC_ROOT"
    "$VENV/bin/pip" download -q --no-deps "sglang==$VERSION" -d "$WHEELS"
    WHL=$(ls "$WHEELS"/sglang-"$VERSION"-*.whl | head -n1)
    "$VENV/bin/python" - "$WHL" "$SRC_ROOT" <<'EOF'
import sys, zipfile
whl, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("sglang/")])
EOF
  fi
  for req in $(src_extras "$VERSION"); do
    [ -d "$SRC_ROOT/${req/==/-}.dist-info" ] ||
      "$VENV/bin/pip" install -q --no-deps --target "$SRC_ROOT" "$req" -c <(echo torch==2.13.0)
  done
  echo "sglang $VERSION source extracted to $SRC_ROOT/sglang (runs in the $RECIPE venv $VENV)"
fi

ENV_SH="${SRC_ROOT:-$VENV}/sglang-env.sh"
{
  echo "# source this before running python from $VENV against sglang $VERSION"
  [ -n "$SRC_ROOT" ] && echo "export PYTHONPATH=\"$SRC_ROOT\${PYTHONPATH:+:\$PYTHONPATH}\""
  if needs_sgl_kernel_stub "$VERSION"; then echo "export SHIM_SGL_KERNEL=1"; else echo "unset SHIM_SGL_KERNEL"; fi
} > "$ENV_SH"
echo "python: $VENV/bin/python"
echo "env:    source $ENV_SH"
