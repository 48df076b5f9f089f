#!/usr/bin/env bash
# Thin wrapper kept for .ci/run, tox and habit: the installer and its recipes ship inside the
# package (pytest_mmhash/recipes/), so `mmhash install-sglang VERSION VENV` works for pip users too.
#
#   tools/install-sglang.sh VERSION VENV_DIR
exec bash "$(dirname "$0")/../pytest_mmhash/recipes/install-sglang.sh" "$@"
