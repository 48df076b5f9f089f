#!/usr/bin/env bash
# Record golden values (manifest.json and pad-vectors.json) from REAL SGLang for the pin and one
# release of every earlier era.
#
#   tools/record-golden.sh [VENV_ROOT]      (default VENV_ROOT: ./.sglang-venvs)
#
# Each release runs in a venv made by tools/install-sglang.sh; its own Triton kernels run under
# TRITON_INTERPRET=1 when there is no GPU. This project's engine never writes golden values.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(realpath -m "${1:-$REPO/.sglang-venvs}")
[ -z "${CI:-}" ] || { echo "refusing to record golden values with CI set" >&2; exit 2; }

# release -> recipe venv that runs it (requirements/README.md)
RELEASES=(0.5.23:0.5.23 0.5.22:0.5.23 0.5.10:0.5.23 0.5.9:0.5.23 0.5.5:0.5.5 0.4.10:0.4.10 0.4.6.post5:0.4.6.post5)
cd "$REPO"
for pair in "${RELEASES[@]}"; do
  rel=${pair%%:*} recipe=${pair#*:} venv="$ROOT/sglang-$recipe"
  bash tools/install-sglang.sh "$rel" "$venv" >/dev/null
  "$venv/bin/pip" install -q -c constraints.txt --no-deps -e . pytest pluggy iniconfig hypothesis \
      sortedcontainers pytest-xdist execnet
  env_sh="$venv/sglang-env.sh"; [ -f "$venv/sglang-src/$rel/sglang-env.sh" ] && env_sh="$venv/sglang-src/$rel/sglang-env.sh"
  # shellcheck disable=SC1090
  ( source "$env_sh"
    extra=(); [ "$rel" = "$(python3 -c 'import json;print(json.load(open("golden/manifest.json"))["pin"])')" ] || extra=(--mmhash-sglang-version "$rel")
    TRITON_INTERPRET=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        --mmhash-golden golden/ golden/manifest.json --mmhash-update "${extra[@]}"
    TRITON_INTERPRET=1 "$venv/bin/python" -m pytest_mmhash.oracle.pad_vectors golden/pad-vectors.json )
done
