#!/usr/bin/env bash
# Install one release of an SGLang fork for recording its golden values and the fork oracle
# (pytest_mmhash/oracle/forks.py): `pip install --no-deps --target PARENT/DIST-VERSION`, so its files
# and distribution metadata are there and nothing of it is imported. For sglang-omni, the upstream
# sglang it pins (read from its own metadata, Requires-Dist: sglang==X) is installed the same way
# beside it. Ships inside the package; `mmhash install-sglang DIST==VERSION PARENT` runs it, and
# tools/install-fork.sh wraps it.
#
#   install-fork.sh DIST VERSION PARENT     e.g. install-fork.sh sglang-kt 0.7.2 .fork-sites
#
# Then MMHASH_FORK_SITES=PARENT names them: record with the command `mmhash install-sglang` prints,
# or (from a checkout) MMHASH_FORK_SITES=PARENT pytest -m oracle tests/test_fork_oracle.py.
# Idempotent: an install dir that already holds DIST==VERSION is kept. PYTHON: the python whose pip
# installs (default python3).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 DIST VERSION PARENT" >&2; exit 2; }
DIST=$1 VERSION=$2 PARENT=$3
PY=${PYTHON:-python3}

install_one() {  # install_one DIST VERSION -> PARENT/DIST-VERSION
  local dir="$PARENT/$1-$2"
  if [ "$(cat "$dir/.mmhash-installed" 2>/dev/null)" = "$1==$2" ]; then
    echo "$1 $2 already in $dir"
    return
  fi
  rm -rf "$dir"
  "$PY" -m pip install -q --no-deps --no-compile --target "$dir" "$1==$2"
  echo "$1==$2" > "$dir/.mmhash-installed"
  echo "$1 $2 installed in $dir"
}

mkdir -p "$PARENT"
install_one "$DIST" "$VERSION"
if [ "$DIST" = sglang-omni ]; then
  PIN=$(sed -n 's/^Requires-Dist: sglang==\([0-9][0-9a-z.]*\).*/\1/p' \
    "$PARENT/$DIST-$VERSION"/sglang_omni-*.dist-info/METADATA | head -n1)
  [ -n "$PIN" ] || { echo "sglang-omni $VERSION names no sglang==X pin" >&2; exit 1; }
  install_one sglang "$PIN"
fi
