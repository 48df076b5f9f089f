#!/usr/bin/env bash
# Install one release of an SGLang fork, or the upstream sglang that a sglang-omni release pins,
# into a directory of its own for the fork oracle (pytest_mmhash/oracle/forks.py): its files and
# its distribution metadata, no dependencies, nothing imported.
#
#   tools/install-fork.sh DIST VERSION DIR      e.g. tools/install-fork.sh sglang-kt 0.7.2 .fork-sites/kt
#
# Then: MMHASH_FORK_SITES=DIR[:DIR...] pytest -m oracle tests/test_fork_oracle.py
# Idempotent: a DIR that already holds DIST==VERSION is left as it is.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 DIST VERSION DIR" >&2; exit 2; }
DIST=$1 VERSION=$2 DIR=$3
PY=${PYTHON:-python3}
if [ "$(cat "$DIR/.mmhash-installed" 2>/dev/null)" = "$DIST==$VERSION" ]; then
  echo "$DIST $VERSION already in $DIR"
  exit 0
fi
rm -rf "$DIR"
"$PY" -m pip install -q --no-deps --no-compile --target "$DIR" "$DIST==$VERSION"
echo "$DIST==$VERSION" > "$DIR/.mmhash-installed"
echo "$DIST $VERSION installed in $DIR"
