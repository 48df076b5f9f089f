"""``mmhash upgrade-report``: which features change hash or pad values between two releases, and why.

The features are a golden dir's entries, or plain feature files and folders. Both sides are
computed with the engine (no SGLang and no recorded values needed), for every feature on both
paths, and
each change is attributed to the part of the scheme that causes it: a content scheme change
(e.g. sha256-f32 -> sha256-raw, gpu-xor-int64 -> gpu-tile-fmix32), a pad scheme change, the
``mask64`` modifier, or a feature-dependent change (e.g. bf16 only changes under sha256-raw).
Either release may be a fork's (``sglang-kt==0.7.2``, as golden manifests name them): sglang-kt
runs upstream 0.5.9's schemes, sglang-omni hashes waveforms on the CPU path only.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .engines import SGLANG, has_cuda_path, key_text, resolve_key, split_key
from .errors import MmhashError
from .golden.model import Manifest
from .golden.store import load_manifest
from .implementations import Observed, describe, resolve_impl
from .ints import M64
from .versions import DEVICES, SHA256_F32, SHA256_RAW

CAUSES = ("content-scheme", "feature-dependent", "pad-scheme", "mask64", "error")


@dataclass(frozen=True)
class Cause:
    """One reason a value changes: ``kind`` is one of :data:`CAUSES`; ``detail`` says what exactly."""

    kind: str
    detail: str


@dataclass(frozen=True)
class Change:
    """One (entry, path) whose hash or pad values differ between two releases."""

    entry_id: str
    device: str
    from_version: str
    to_version: str
    before: dict[str, Any]  # manifest-form value ({"hash","hex","pad_values"}) or {"error": ...}
    after: dict[str, Any]
    causes: tuple[Cause, ...]
    schemes_before: dict[str, Any] | None
    schemes_after: dict[str, Any] | None

    @property
    def hash_changed(self) -> bool:
        """Whether the stored item hash differs (an error on either side counts)."""
        return self.before.get("hash", self.before.get("error")) != self.after.get(
            "hash", self.after.get("error")
        )

    @property
    def pads_changed(self) -> bool:
        """Whether the pad values differ (an error on either side counts)."""
        return self.before.get("pad_values") != self.after.get("pad_values")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = asdict(self)
        d.update(hash_changed=self.hash_changed, pads_changed=self.pads_changed)
        return d


def _changed(b: Observed, a: Observed) -> bool:
    """Whether two engine results differ in value (two errors never count: neither has a value)."""
    if b.is_error and a.is_error:
        return False
    return dict(b.value) != dict(a.value)


def _leaves(feature: Any) -> list:
    from .features import flatten_nested_list

    return flatten_nested_list(feature) if isinstance(feature, list) else [feature]


def _f32_raw_reason(feature: Any) -> str:
    """Why sha256-f32 and sha256-raw read different bytes for this feature."""
    dtypes = sorted(
        {
            str(getattr(x, "dtype", type(x).__name__)).removeprefix("torch.")
            for x in _leaves(feature)
        }
    )
    if len(dtypes) > 1:
        return f"a list mixing dtypes ({', '.join(dtypes)}) is promoted by torch.cat under sha256-f32 and hashed per part in its own dtype under sha256-raw"
    if dtypes == ["bfloat16"]:
        return "bf16 is upcast to fp32 before hashing under sha256-f32 and hashed as its raw 2-byte values under sha256-raw"
    return (
        f"sha256-f32 and sha256-raw read different bytes for dtype {dtypes[0] if dtypes else '?'}"
    )


def _hash_cause(feature: Any, b: Observed, a: Observed) -> Cause | None:
    """What changes the stored hash, or None when it is unchanged."""
    hb, ha = b.value["hash"], a.value["hash"]
    if hb == ha:
        return None
    sb, sa = _scheme(b, "hash"), _scheme(a, "hash")
    if hb & M64 == ha & M64:
        return Cause(
            "mask64",
            f"mask64 stores h & (2^64-1): the signed hash {hb} is stored as {ha}"
            if ha >= 0
            else f"without mask64 the hash {hb} is stored signed, as {ha}",
        )
    if {sb, sa} == {SHA256_F32, SHA256_RAW}:
        return Cause("feature-dependent", f"{sb} -> {sa}: {_f32_raw_reason(feature)}")
    if sb != sa:
        return Cause("content-scheme", f"{sb} -> {sa}")
    return Cause(
        "feature-dependent",
        f"{sb} in both releases, but they hash this feature's bytes differently",
    )


def _causes(feature: Any, b: Observed, a: Observed, old: str, new: str) -> tuple[Cause, ...]:
    """Every part of the scheme that changes this feature's value."""
    if b.is_error or a.is_error:
        err = b.value if b.is_error else a.value
        verbs = ("raises" if b.is_error else "hashes", "raises" if a.is_error else "hashes")
        return (
            Cause(
                "error",
                f"{key_text(old)} {verbs[0]}, {key_text(new)} {verbs[1]} ({err['error']})",
            ),
        )
    out = [c for c in [_hash_cause(feature, b, a)] if c]
    pb, pa = _scheme(b, "pad"), _scheme(a, "pad")
    if pb != pa and b.value["pad_values"] != a.value["pad_values"]:
        out.append(Cause("pad-scheme", f"{pb} -> {pa}"))
    return tuple(out)


#: ``(label, load)`` for each feature a report covers; ``load()`` reads it when its turn comes.
Features = Iterable[tuple[str, Callable[[], Any]]]


def paths(old: str, new: str) -> tuple[str, ...]:
    """The hash paths both releases have (sglang-omni has no CUDA path)."""
    return tuple(d for d in DEVICES if d == "cpu" or (has_cuda_path(old) and has_cuda_path(new)))


def compare(features: Features, old: str, new: str) -> list[Change]:
    """The features (and paths) whose hash or pad values change from release ``old`` to ``new``
    (release keys), each with the scheme parts that cause it; computed by the engine."""
    engine = resolve_impl("engine")
    changes = []
    for label, load in features:
        feature = load()
        for device in paths(old, new):
            b, a = engine(feature, old, device), engine(feature, new, device)
            if _changed(b, a):
                changes.append(
                    Change(
                        label,
                        device,
                        old,
                        new,
                        dict(b.value),
                        dict(a.value),
                        _causes(feature, b, a, old, new),
                        _schemes(b),
                        _schemes(a),
                    )
                )
    return changes


def golden_features(manifest: Manifest) -> Features:
    """A golden dir's entries, labelled by id."""
    return [(e.id, functools.partial(manifest.load, e.id)) for e in manifest.entries]


def file_features(
    paths: Iterable[str], key: str | None = None
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Every feature in plain files and folders (each container entry on its own), labelled by path."""
    from .loaders import iter_features, iter_paths

    for path in iter_paths(paths):
        for loaded in iter_features(path, key):
            label = path if loaded.key is None else f"{path}[{loaded.key}]"
            yield label, functools.partial(_same, loaded.feature)


def _same(x: Any) -> Any:
    return x


def upgrade_report(
    golden_dir: str, to_version: str, from_version: str | None = None
) -> list[Change]:
    """The golden entries (and paths) whose values change from ``from_version`` (default: the
    manifest pin) to ``to_version`` (each ``V`` or a fork's ``ENGINE==V``); see :func:`compare`."""
    manifest = load_manifest(golden_dir)
    old = resolve_key(from_version) if from_version else manifest.pin
    return compare(golden_features(manifest), old, resolve_key(to_version))


def _schemes(o: Observed) -> dict[str, Any] | None:
    return dict(o.schemes) if o.schemes else None


def _scheme(o: Observed, part: str) -> str:
    """The scheme id of ``part`` ("hash" or "pad") of an engine value (the engine always names them)."""
    if o.schemes is None:
        raise AssertionError("an engine value without scheme ids")
    return str(o.schemes[part])


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash upgrade-report",
        description="Which features change hash or pad values from one SGLang release to another, "
        "and why. Computed by the engine: needs neither SGLang nor recorded values.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="GOLDEN_DIR|FILE|DIR",
        help="a golden dir (with manifest.json: its entries), or feature files and folders",
    )
    p.add_argument(
        "--to",
        required=True,
        dest="to_version",
        metavar="V",
        help="the release to upgrade to: an sglang release, or a fork's ENGINE==V "
        "(e.g. sglang-kt==0.7.2)",
    )
    p.add_argument(
        "--from",
        dest="from_version",
        metavar="V",
        help="the release to upgrade from, spelled as --to (default: a golden dir's pin; "
        "required for files)",
    )
    p.add_argument("--key", metavar="K", help="only this entry of each container file")
    p.add_argument(
        "--allow-newer",
        action="store_true",
        help="accept a version newer than the newest known release (uses its schemes)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def render_text(changes: list[Change], total: int, old: str, new: str) -> str:
    """The human-readable report."""
    span = (
        f"sglang {old} -> {new}"
        if split_key(old)[0] == split_key(new)[0] == SGLANG
        else f"{key_text(old)} -> {key_text(new)}"
    )
    lines = [f"{span}: {len(changes)} of {total} values change"]
    counts = {k: sum(any(c.kind == k for c in ch.causes) for ch in changes) for k in CAUSES}
    lines += [f"  {k}: {n}" for k, n in counts.items() if n]
    for ch in changes:
        lines.append(f"{ch.entry_id} [{ch.device}]")
        lines.append(f"    before: {describe(ch.before)}")
        lines.append(f"    after:  {describe(ch.after)}")
        lines += [f"    cause:  {c.kind}: {c.detail}" for c in ch.causes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``mmhash upgrade-report GOLDEN_DIR|FILE|DIR... --to V [--from V] [--json]``; exit 0, or the
    error's exit code."""
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            golden = _golden_dir(args.paths)
            manifest = load_manifest(golden) if golden else None
            old, new = _versions(manifest, args)
            features = list(
                golden_features(manifest) if manifest else file_features(args.paths, args.key)
            )
            changes = compare(features, old, new)
    except MmhashError as e:
        print(f"mmhash upgrade-report: error: {e}", file=sys.stderr)
        return e.exit_code
    for w in caught:
        print(f"mmhash upgrade-report: warning: {w.message}", file=sys.stderr)
    total = len(features) * len(paths(old, new))
    if args.json:
        print(
            json.dumps(
                {
                    "golden": golden,
                    "paths": args.paths,
                    "from": old,
                    "to": new,
                    "values": total,
                    "changes": [c.to_dict() for c in changes],
                },
                indent=2,
            )
        )
    else:
        print(render_text(changes, total, old, new))
    return 0


def _golden_dir(paths: list[str]) -> str | None:
    """The golden dir when the one path given holds a manifest (or is one), else None."""
    from .golden.model import MANIFEST_NAME

    if len(paths) == 1 and (
        (Path(paths[0]) / MANIFEST_NAME).is_file() or Path(paths[0]).name == MANIFEST_NAME
    ):
        return paths[0]
    return None


def _versions(manifest: Manifest | None, args: argparse.Namespace) -> tuple[str, str]:
    """The (from, to) release keys the arguments name; from defaults to a golden dir's pin."""
    from .errors import BadArgumentError

    new = resolve_key(args.to_version, allow_newer=args.allow_newer)
    if args.from_version is not None:
        return resolve_key(args.from_version, allow_newer=args.allow_newer), new
    if manifest is None:
        raise BadArgumentError(
            "--from V is needed for feature files and folders (only a golden dir has a pin to start from)"
        )
    return manifest.pin, new


if __name__ == "__main__":
    sys.exit(main())
