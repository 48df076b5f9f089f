"""Golden manifests on disk: load, atomic write (the one writer of the manifest format), entry
add/remove/replace, recording values, and the checks that compare a manifest with its files.

Every change goes through :func:`.validation.validate` before anything is written, so an invalid
manifest is never on disk; :func:`write_manifest` replaces the file atomically.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import os
import platform
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import GoldenError
from .model import MANIFEST_NAME, PAD_VECTORS_NAME, Entry, Manifest, Recorded
from .request_entries import RequestGolden, request_files
from .request_entries import dumps as dumps_requests
from .validation import parse, validate

MAX_MANIFEST_BYTES = 64 << 20


def manifest_path(golden: str | os.PathLike) -> Path:
    """The manifest file of a golden dir (or the file itself when given)."""
    p = Path(golden)
    return p if p.suffix == ".json" else p / MANIFEST_NAME


def read_bytes(path: Path) -> bytes:
    """The manifest's bytes, refusing missing or implausibly large files."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise GoldenError(
                f"{path}: {size} bytes is too large for a golden manifest (limit {MAX_MANIFEST_BYTES})"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise GoldenError(
            f"{path}: no golden manifest here (expected {MANIFEST_NAME} in the golden dir)"
        ) from None
    except OSError as e:
        raise GoldenError(f"{path}: cannot read the golden manifest: {e.strerror}") from None


def load_manifest(golden: str | os.PathLike) -> Manifest:
    """Load and validate the manifest of golden dir ``golden`` (or the manifest file itself)."""
    path = manifest_path(golden)
    return parse(read_bytes(path), path.parent, str(path))


def dumps(manifest: Manifest) -> str:
    """Canonical manifest text: 2-space indent, sorted keys, entries by id, trailing newline."""
    return json.dumps(manifest.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- atomic write


def write_manifest(manifest: Manifest, path: str | os.PathLike | None = None) -> Path:
    """Write ``manifest`` canonically (:func:`dumps`) and atomically (:func:`write_atomic`)."""
    return write_atomic(Path(path) if path is not None else manifest.path, dumps(manifest))


def write_requests(golden: RequestGolden) -> Path:
    """Write a request golden file canonically and atomically."""
    return write_atomic(golden.path, dumps_requests(golden))


def write_atomic(target: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target``: temp file in the same dir, fsync, os.replace.

    A crash or kill at any point leaves either the old file or the new one, never half of one.
    The old file's permission bits are kept.
    """
    data = text.encode("utf-8")
    mode = _mode_for(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def _mode_for(target: Path) -> int:
    """The existing file's permission bits, or 0o666 less the umask for a new file."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(d: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- entries


def make_entry(
    root: str | os.PathLike,
    entry_id: str,
    file: str,
    key: str | None = None,
    kind: str = "",
    description: str = "",
) -> Entry:
    """A new entry (no values yet) for the feature file ``root/file``, with its sha256."""
    return Entry(entry_id, file, key, content_sha256(Path(root) / file), kind, description, {})


def new_manifest(root: str | os.PathLike, pin: str, entries: Iterable[Entry]) -> Manifest:
    """A validated manifest with no recorded values, for a golden dir ``root`` (write it with
    :func:`write_manifest`, then record values from real SGLang)."""
    return _with_entries(Manifest(Path(root), pin, {}, ()), tuple(entries))


def add_entry(manifest: Manifest, entry: Entry) -> Manifest:
    """``manifest`` with ``entry`` added; a duplicate id or file/key is refused (re-validated)."""
    return _with_entries(manifest, (*manifest.entries, entry))


def remove_entry(manifest: Manifest, entry_id: str) -> Manifest:
    """``manifest`` without entry ``entry_id`` (its recorded values go with it)."""
    if entry_id not in manifest.ids:
        raise GoldenError(f"{manifest.path}: no entry {entry_id!r} to remove")
    return _with_entries(manifest, tuple(e for e in manifest.entries if e.id != entry_id))


def replace_entries(manifest: Manifest, entries: Iterable[Entry]) -> tuple[Manifest, list[str]]:
    """``manifest`` with exactly ``entries``, and the ids whose recorded values were dropped.

    An entry keeps the values recorded for it when its id, file, key and sha256 are unchanged;
    values recorded for other bytes would be stale, so they are dropped. Pin and provenance stay.
    """
    old = {e.id: e for e in manifest.entries}
    kept, dropped = [], []
    for e in entries:
        prev = old.get(e.id)
        if prev is not None and prev.values:
            if (prev.file, prev.key, prev.sha256) == (e.file, e.key, e.sha256):
                e = replace(e, values=prev.values)
            else:
                dropped.append(e.id)
        kept.append(e)
    return _with_entries(manifest, tuple(kept)), dropped


def _with_entries(manifest: Manifest, entries: tuple[Entry, ...]) -> Manifest:
    data = replace(manifest, entries=entries).to_json()
    return validate(data, manifest.root, str(manifest.path))


def record_values(
    manifest: Manifest,
    updates: Iterable[Recorded],
    provenance: Mapping[str, Mapping[str, str]] | None = None,
    pin: str | None = None,
) -> Manifest:
    """A new manifest with ``updates`` merged in (later updates win), plus provenance and pin.

    The result is re-validated, so an invalid value or unknown entry id raises
    :class:`GoldenError` and nothing is written.
    """
    data = manifest.to_json()
    by_id = {e["id"]: e for e in data["entries"]}
    for u in updates:
        if u.entry_id not in by_id:
            raise GoldenError(
                f"{manifest.path}: cannot record a value for unknown entry {u.entry_id!r}"
            )
        by_id[u.entry_id]["values"].setdefault(u.release, {})[u.device] = dict(u.value)
    data["provenance"].update(copy.deepcopy(dict(provenance or {})))
    data["pin"] = pin or data["pin"]
    return validate(data, manifest.root, str(manifest.path))


def current_provenance(sglang_version: str) -> dict[str, str]:
    """The provenance record of values recorded now, in this environment, from real SGLang."""
    from importlib import metadata

    import torch

    def ver(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "sglang": sglang_version,
        "torch": ver("torch"),
        "triton": ver("triton"),
        "numpy": ver("numpy"),
        "python": platform.python_version(),
        "cuda_path": "cuda-device" if torch.cuda.is_available() else "triton-interpreter",
        "date": _dt.date.today().isoformat(),
    }


# --------------------------------------------------------------------------- files


def content_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in chunks (what an entry's ``sha256`` records)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def missing_files(manifest: Manifest) -> list[Entry]:
    """Entries whose feature file does not exist."""
    return [e for e in manifest.entries if not (manifest.root / e.file).is_file()]


def unlisted_files(manifest: Manifest) -> list[str]:
    """Files under the golden dir that no entry names (posix paths relative to the dir).

    A golden dir holds its manifest, its pad vectors and feature files, and the request entries'
    ``requests.json`` with the media and model files it names (scripts and docs live elsewhere), so
    any other file is a forgotten entry or a leftover; hidden files and dirs (the atomic writer's
    temp files) and ``__pycache__`` are skipped.
    """
    listed = (
        {e.file for e in manifest.entries}
        | {MANIFEST_NAME, PAD_VECTORS_NAME}
        | request_files(manifest.root)
    )
    out = []
    for p in sorted(manifest.root.rglob("*")):
        rel = p.relative_to(manifest.root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if p.is_file() and rel.as_posix() not in listed:
            out.append(rel.as_posix())
    return out


@dataclass(frozen=True)
class Diagnosis:
    """Why a golden check fails: the feature file changed, or the scheme/implementation did."""

    bytes_changed: bool
    summary: str
    detail: str


def diagnose(manifest: Manifest, entry: Entry) -> Diagnosis:
    """Compare the file's sha256 with the recorded one to tell bytes changes from scheme changes."""
    path = manifest.root / entry.file
    if not path.is_file():
        return Diagnosis(
            True,
            "the feature file is missing",
            f"the feature file is missing: {path} does not exist",
        )
    actual = content_sha256(path)
    if actual != entry.sha256:
        return Diagnosis(
            True,
            "the feature bytes changed",
            (
                f"the feature bytes changed: {entry.file} has sha256 {actual[:16]}..., the manifest "
                f"recorded {entry.sha256[:16]}..., so the recorded values belong to other bytes"
            ),
        )
    return Diagnosis(
        False,
        "the hash scheme/implementation changed",
        (
            f"the hash scheme/implementation changed: {entry.file} still has the recorded sha256 "
            f"{entry.sha256[:16]}..., so the same bytes now give a different result (unless that "
            f"sha256 was edited by hand: mmhash golden refresh drops the values of old bytes)"
        ),
    )
