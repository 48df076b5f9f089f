"""``mmhash vectors export DIR``: the golden values as a language-neutral conformance suite.

DIR gets ``parts/<sha256>.bin`` (raw C-order bytes of the features), ``vectors.jsonl`` (protocol
v1 request objects, docs/spec.md section 11, each carrying the expected reply fields ``hash`` and
``pad_values``, or ``error``) and a README. Every expected value is read from files that real
SGLang wrote: the golden manifest and ``pad-vectors.json`` (:mod:`pytest_mmhash.oracle.pad_vectors`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GoldenError, MmhashError
from .exec_protocol import PartStore, feature_request, mm_hash_request, preset_hash_request
from .golden.model import PAD_VECTORS_FORMAT, PAD_VECTORS_NAME, Manifest
from .golden.store import load_manifest
from .versions import DEVICES

#: Request kinds in pad-vectors.json and the builder of their request objects.
_PAD_KINDS: dict[str, Callable[[str, str, Any], dict[str, Any]]] = {
    "preset_hash": preset_hash_request,
    "mm_hash": mm_hash_request,
}

README = """\
# SGLang multimodal hash conformance vectors

Exported by `mmhash vectors export` (pytest-mmhash) from its golden corpus; every expected value
was recorded from real SGLang. Protocol v1 is specified in pytest-mmhash's docs/spec.md,
section 11 ("Conformance protocol for external hashers").

- `vectors.jsonl`: one JSON object per line. Each is a protocol v1 **request** plus the
  **expected reply fields**: `hash` (an integer; may exceed 64 bits or be negative for old
  releases) and `pad_values` (integers), or `error` (`"Type: message"`, the exception SGLang
  raises; compare the type before the colon).
  - Feature requests (`kind`: tensor, ndarray, bytes, list, tuple) list `parts`: `path`
    (relative to this folder), `offset`, `nbytes`, `dtype` (torch name such as `bfloat16`, or a
    numpy `dtype.str` such as `>f4` for ndarrays, byte order as stored) and `shape`. The bytes
    are the C-order bytes as stored, in the order SGLang hashes them. `layout` (lists and
    tuples) nests part indices as the Python list nested its tensors.
    `device` says which path: `cpu` (SHA-256) or `cuda` (SGLang's Triton kernels).
  - Pad-only requests carry `mm_hash` (a caller's `mm_hashes` string, 0.5.13+; an `error`
    means SGLang rejects it, logs a warning and hashes the feature instead) or `preset_hash`
    (an item hash set before `set_pad_value`).
- `parts/`: the raw bytes, one content-addressed file per feature.

To consume: read each line, answer the request with your implementation (resolve part paths
against this folder), and compare with the expected fields. Select the vectors your
implementation covers by `sglang_version`, `device` and the request form; count the rest as
skipped, never as passed.

Contents: {summary}
"""


@dataclass
class Summary:
    """What an export wrote: counts by (sglang_version, form)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, release: str, form: str) -> None:
        """Count one vector."""
        self.counts[(release, form)] = self.counts.get((release, form), 0) + 1

    @property
    def total(self) -> int:
        """All vectors written."""
        return sum(self.counts.values())

    def text(self) -> str:
        """One line per release: how many vectors of each form."""
        releases = sorted({r for r, _ in self.counts}, key=_release_key)
        return "; ".join(
            f"{r}: "
            + ", ".join(f"{n} {form}" for (rr, form), n in sorted(self.counts.items()) if rr == r)
            for r in releases
        )


def _release_key(v: str) -> int:
    """Oldest first."""
    from .versions import RELEASES

    return RELEASES.index(v)


def _expected(value: dict[str, Any]) -> dict[str, Any]:
    """The reply fields of a recorded value (``hex`` is a display form, not a reply field)."""
    if "error" in value:
        return {"error": value["error"]}
    return {"hash": value["hash"], "pad_values": list(value["pad_values"])}


def read_pad_vectors(golden: Path) -> dict[str, Any]:
    """``pad-vectors.json`` of a golden dir (releases -> recorded vectors); {} when absent."""
    path = golden / PAD_VECTORS_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise GoldenError(f"{path}: not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != PAD_VECTORS_FORMAT:
        raise GoldenError(f"{path}: not a {PAD_VECTORS_FORMAT} file")
    return dict(data["releases"])


def _golden_vectors(
    manifest: Manifest, store: PartStore, releases: set[str], summary: Summary
) -> Iterator[dict[str, Any]]:
    for entry in manifest.entries:
        feature = manifest.load(entry.id)
        for release in sorted(releases & set(entry.values), key=_release_key):
            for device in DEVICES:
                value = entry.value(release, device)
                if value is None:
                    continue
                rid = f"golden/{entry.id}/{release}/{device}"
                req = feature_request(store, rid, release, device, feature)
                summary.add(release, f"{device} feature")
                yield {**req, **_expected(dict(value))}


def _pad_vectors(
    recorded: dict[str, Any], releases: set[str], summary: Summary
) -> Iterator[dict[str, Any]]:
    for release in sorted(releases & set(recorded), key=_release_key):
        for form, build in _PAD_KINDS.items():
            for i, v in enumerate(recorded[release].get(form, [])):
                summary.add(release, form)
                yield {**build(f"{form}/{release}/{i}", release, v["input"]), **_expected(v)}


def export(
    out_dir: str | os.PathLike, golden: str | os.PathLike, releases: Sequence[str] | None = None
) -> Summary:
    """Write the suite to ``out_dir`` (which must not exist or be empty), all or nothing."""
    from .engines import SGLANG, split_key
    from .versions import resolve

    manifest = load_manifest(golden)
    recorded = read_pad_vectors(manifest.root)
    # protocol v1 names upstream releases only: a fork's recorded values are not exported
    upstream = {r for r in manifest.releases() if split_key(r)[0] == SGLANG}
    available = upstream | set(recorded)
    wanted = {resolve(v).version for v in releases} if releases else available
    missing = sorted(wanted - available)
    if missing:
        raise GoldenError(
            f"no values are recorded for sglang {', '.join(missing)} in {manifest.root} "
            f"(recorded: {', '.join(sorted(available, key=_release_key))})"
        )
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GoldenError(f"{out} exists and is not an empty folder; not overwriting it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        summary = Summary()
        store = PartStore(tmp / "parts", relative_to=tmp)
        with open(tmp / "vectors.jsonl", "w", encoding="utf-8") as f:
            for obj in _golden_vectors(manifest, store, wanted, summary):
                f.write(json.dumps(obj) + "\n")
            for obj in _pad_vectors(recorded, wanted, summary):
                f.write(json.dumps(obj) + "\n")
        (tmp / "README.md").write_text(README.format(summary=summary.text()), encoding="utf-8")
        os.replace(tmp, out)  # an empty out is replaced; a concurrent writer makes this fail
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash vectors",
        description="Conformance vectors for hashers in other languages (protocol v1).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser(
        "export",
        help="write DIR/vectors.jsonl, DIR/parts/*.bin and DIR/README.md",
        description="Export the golden corpus and the recorded pad vectors as protocol v1 "
        "requests with the values real SGLang gave.",
    )
    e.add_argument("dir", metavar="DIR", help="output folder (must not exist, or be empty)")
    e.add_argument("--golden", default="golden", metavar="G", help="golden dir (default: golden)")
    e.add_argument(
        "--sglang-version",
        nargs="+",
        metavar="V",
        help="only these recorded releases (default: every recorded release)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``mmhash vectors export DIR [--golden G] [--sglang-version V ...]``; 0, or 2 on bad input."""
    args = _parser().parse_args(argv)
    try:
        summary = export(args.dir, args.golden, args.sglang_version)
    except MmhashError as e:
        print(f"mmhash vectors: error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"mmhash vectors: wrote {summary.total} vectors to {args.dir} ({summary.text()})")
    return 0
