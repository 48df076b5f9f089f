#!/usr/bin/env bash
# Run every ```bash block of a Markdown page, in order, as one script in a fresh temporary folder
# (`set -euo pipefail`: any failing command fails the run). CI uses it to keep docs/quickstart.md
# true. The tools it calls (mmhash, pytest, python) come from PATH; VENV, when set, is passed on.
#
#   tools/run-doc.sh DOC.md
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DOC.md" >&2; exit 2; }
DOC=$(realpath "$1")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
awk '/^```bash$/ {on=1; next} /^```$/ {on=0} on' "$DOC" > "$WORK/doc.sh"
[ -s "$WORK/doc.sh" ] || { echo "$DOC has no bash blocks" >&2; exit 2; }
cd "$WORK"
bash -euo pipefail -x doc.sh
echo "run-doc: every command of $DOC passed"
