#!/usr/bin/env bash
# Thin wrapper kept for .ci/run, tox and habit: the fork installer ships inside the package
# (pytest_mmhash/recipes/), so `mmhash install-sglang DIST==VERSION PARENT` works for pip users too.
#
#   tools/install-fork.sh DIST VERSION PARENT     e.g. tools/install-fork.sh sglang-kt 0.7.2 .fork-sites
exec bash "$(dirname "$0")/../pytest_mmhash/recipes/install-fork.sh" "$@"
