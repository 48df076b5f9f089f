"""The golden manifest format: load, validate and atomically rewrite ``golden/manifest.json``.

A manifest binds feature files (by SHA-256) to the hash and pad values real SGLang releases
recorded for them, per path (``cpu``/``cuda``). This module is plain library code (no pytest):
the pytest plugin, the upgrade report and the CLI all build on it. What is checked against the
recorded values lives in :mod:`pytest_mmhash.implementations`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import GoldenError, MmhashError

FORMAT = "pytest-mmhash-golden"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DEVICES = ("cpu", "cuda")
CUDA_PATHS = ("triton-interpreter", "cuda-device")
PROVENANCE_KEYS = ("sglang", "torch", "triton", "numpy", "python", "cuda_path", "date")
ENTRY_KEYS = ("id", "file", "key", "sha256", "kind", "description", "values")
TOP_KEYS = ("format", "format_version", "pin", "provenance", "entries")
MAX_MANIFEST_BYTES = 64 << 20
M64 = (1 << 64) - 1
#: Files under the golden dir that are documentation or tooling, never feature files.
NOT_FEATURE_SUFFIXES = frozenset(
    ".md .rst .txt .py .pyc .json .toml .cfg .ini .sh .yml .yaml .lock".split()
)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SHA = re.compile(r"[0-9a-f]{64}\Z")
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_ERROR = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(: .*)?\Z", re.S)


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class Entry:
    """One golden feature: a file (and key inside it) plus the values each release recorded."""

    id: str
    file: str
    key: str | None
    sha256: str
    kind: str
    description: str
    values: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def value(self, release: str, device: str) -> dict[str, Any] | None:
        """The recorded value for ``release`` on path ``device``, or None when not recorded."""
        v = self.values.get(release, {}).get(device)
        return dict(v) if v is not None else None

    def to_json(self) -> dict[str, Any]:
        """The entry as manifest JSON."""
        return {k: copy.deepcopy(getattr(self, k)) for k in ENTRY_KEYS}


@dataclass(frozen=True)
class Manifest:
    """A validated golden manifest; ``root`` is the directory its ``file`` paths are relative to."""

    root: Path
    pin: str
    provenance: Mapping[str, Mapping[str, str]]
    entries: tuple[Entry, ...]

    @property
    def path(self) -> Path:
        """The manifest file."""
        return self.root / MANIFEST_NAME

    @property
    def ids(self) -> tuple[str, ...]:
        """Entry ids, sorted."""
        return tuple(e.id for e in self.entries)

    def __getitem__(self, entry_id: str) -> Entry:
        """The entry with id ``entry_id`` (KeyError names the known ids' count)."""
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(f"no golden entry {entry_id!r} in {self.path} ({len(self.entries)} entries)")

    def releases(self) -> tuple[str, ...]:
        """Releases with at least one recorded value, in release order."""
        seen = {r for e in self.entries for r in e.values}
        return tuple(sorted(seen, key=_release_index))

    def feature_path(self, entry: Entry) -> Path:
        """The entry's file, refusing paths that resolve outside the golden dir (symlinks)."""
        p = self.root / entry.file
        if not p.resolve().is_relative_to(self.root.resolve()):
            raise GoldenError(
                f"{self.path}: entry {entry.id!r}: file {entry.file!r} resolves outside {self.root}"
            )
        return p

    def load(self, entry_id: str) -> Any:
        """Load an entry's feature with :func:`pytest_mmhash.loaders.load_feature`."""
        from .loaders import load_feature

        e = self[entry_id]
        return load_feature(self.feature_path(e), e.key)

    def to_json(self) -> dict[str, Any]:
        """Canonical manifest JSON: entries sorted by id."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "pin": self.pin,
            "provenance": copy.deepcopy(dict(self.provenance)),
            "entries": [e.to_json() for e in sorted(self.entries, key=lambda e: e.id)],
        }


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
    m = Manifest(Path(root), pin, {}, tuple(entries))
    return validate(m.to_json(), Path(root), str(m.path))


def _release_index(release: str) -> int:
    from .versions import RELEASES

    return RELEASES.index(release)


# --------------------------------------------------------------------------- validation


class _Problems:
    """Collects schema problems, each located as ``entries[3] (id 'x'): field 'sha256'``."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, msg: str) -> None:
        self.items.append(f"{where}: {msg}" if where else msg)

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            head = f"{self.source}: invalid golden manifest ({n} problem{'s' * (n != 1)}): "
            raise GoldenError(head + "; ".join(self.items))


def _canonical_release(text: Any) -> str | None:
    """``text`` when it is a known release spelled canonically, else None."""
    from .versions import RELEASES

    return text if isinstance(text, str) and text in RELEASES else None


def is_int(x: Any) -> bool:
    """Whether ``x`` is a JSON integer (an ``int`` that is not a ``bool``)."""
    return isinstance(x, int) and not isinstance(x, bool)


def check_value(v: Any) -> str | None:
    """Why ``v`` is not a valid recorded value (``{"hash","hex","pad_values"}`` or ``{"error"}``), or None."""
    if not isinstance(v, dict):
        return f"must be an object, got {type(v).__name__}"
    if "error" in v:
        if set(v) != {"error"}:
            return f"an error value has only the key 'error', got {sorted(v)}"
        if not isinstance(v["error"], str) or not _ERROR.match(v["error"]):
            return f"'error' must read 'ExceptionType: message', got {v['error']!r}"
        return None
    if set(v) != {"hash", "hex", "pad_values"}:
        return f"keys must be hash, hex, pad_values (or only error), got {sorted(v)}"
    h, hx, pads = v["hash"], v["hex"], v["pad_values"]
    if not is_int(h) or not -(1 << 63) <= h <= M64:
        return f"'hash' must be an integer in [-2^63, 2^64), got {h!r}"
    if not isinstance(hx, str) or not _HEX16.match(hx):
        return f"'hex' must be 16 lowercase hex digits, got {hx!r}"
    if hx != format(h & M64, "016x"):
        return f"'hex' {hx} does not match 'hash' {h} (expected {h & M64:016x})"
    if not isinstance(pads, list) or not pads or not all(is_int(p) and p >= 0 for p in pads):
        return f"'pad_values' must be a non-empty list of non-negative integers, got {pads!r}"
    return None


def _check_top(data: Any, p: _Problems) -> bool:
    if not isinstance(data, dict):
        p.add("", f"the top level must be an object, got {type(data).__name__}")
        return False
    for k in sorted(set(data) - set(TOP_KEYS)):
        p.add(f"field {k!r}", "unknown top-level field")
    for k in TOP_KEYS:
        if k not in data:
            p.add(f"field {k!r}", "missing")
    if "format" in data and data["format"] != FORMAT:
        p.add("field 'format'", f"must be {FORMAT!r}, got {data['format']!r}")
    fv = data.get("format_version", FORMAT_VERSION)
    if fv != FORMAT_VERSION or not is_int(fv):
        newer = is_int(fv) and fv > FORMAT_VERSION
        hint = "; upgrade pytest-mmhash" if newer else ""
        p.add(
            "field 'format_version'",
            f"this pytest-mmhash reads version {FORMAT_VERSION}, got {fv!r}{hint}",
        )
    if "pin" in data and _canonical_release(data["pin"]) is None:
        p.add("field 'pin'", f"must be a known sglang release like '0.5.23', got {data['pin']!r}")
    return True


def _check_provenance(prov: Any, p: _Problems) -> None:
    if not isinstance(prov, dict):
        p.add("field 'provenance'", f"must be an object, got {type(prov).__name__}")
        return
    for rel, rec in prov.items():
        where = f"provenance[{rel!r}]"
        if _canonical_release(rel) is None:
            p.add(where, "key must be a known sglang release, spelled like '0.5.23'")
        if not isinstance(rec, dict):
            p.add(where, f"must be an object, got {type(rec).__name__}")
            continue
        if set(rec) != set(PROVENANCE_KEYS):
            p.add(where, f"keys must be {', '.join(PROVENANCE_KEYS)}, got {sorted(rec)}")
        for k in PROVENANCE_KEYS:
            if k in rec and not isinstance(rec[k], str):
                p.add(f"{where} field {k!r}", f"must be a string, got {rec[k]!r}")
        if rec.get("cuda_path") not in CUDA_PATHS:
            p.add(
                f"{where} field 'cuda_path'",
                f"must be one of {CUDA_PATHS}, got {rec.get('cuda_path')!r}",
            )
        if not isinstance(rec.get("date"), str) or not _DATE.match(rec["date"]):
            p.add(f"{where} field 'date'", f"must be YYYY-MM-DD, got {rec.get('date')!r}")
        if isinstance(rec.get("sglang"), str) and _same_release(rec["sglang"]) != rel:
            p.add(f"{where} field 'sglang'", f"{rec['sglang']!r} is not release {rel}")


def _same_release(text: str) -> str | None:
    """The release ``text`` (e.g. ``0.5.23+cu128``) names, or None."""
    from .versions import resolve

    try:
        return resolve(text).version
    except MmhashError:
        return None


def _check_file(f: Any) -> str | None:
    if not isinstance(f, str) or not f:
        return f"must be a non-empty string, got {f!r}"
    pp = PurePosixPath(f)
    if "\\" in f or pp.is_absolute() or ".." in pp.parts or str(pp) != f or f.startswith("./"):
        return f"must be a normalised relative path inside the golden dir (forward slashes, no '..'), got {f!r}"
    return None


def _check_entry(e: Any, where: str, p: _Problems) -> None:
    if not isinstance(e, dict):
        p.add(where, f"must be an object, got {type(e).__name__}")
        return
    for k in sorted(set(e) - set(ENTRY_KEYS)):
        p.add(f"{where} field {k!r}", "unknown field")
    for k in ENTRY_KEYS:
        if k not in e:
            p.add(f"{where} field {k!r}", "missing")
    checks: dict[str, Callable[[Any], str | None]] = {
        "id": lambda x: (
            None if isinstance(x, str) and _ID.match(x) else f"must match {_ID.pattern}, got {x!r}"
        ),
        "file": _check_file,
        "key": lambda x: (
            None
            if x is None or (isinstance(x, str) and x)
            else f"must be null or a non-empty string, got {x!r}"
        ),
        "sha256": lambda x: (
            None
            if isinstance(x, str) and _SHA.match(x)
            else f"must be 64 lowercase hex digits, got {x!r}"
        ),
        "kind": lambda x: None if isinstance(x, str) else f"must be a string, got {x!r}",
        "description": lambda x: None if isinstance(x, str) else f"must be a string, got {x!r}",
    }
    for k, check in checks.items():
        msg = check(e[k]) if k in e else None
        if msg:
            p.add(f"{where} field {k!r}", msg)
    if "values" in e:
        _check_values(e["values"], f"{where} field 'values'", p)


def _check_values(values: Any, where: str, p: _Problems) -> None:
    if not isinstance(values, dict):
        p.add(where, f"must be an object, got {type(values).__name__}")
        return
    for rel, by_dev in values.items():
        w = f"{where}[{rel!r}]"
        if _canonical_release(rel) is None:
            p.add(w, "key must be a known sglang release, spelled like '0.5.23'")
        if not isinstance(by_dev, dict):
            p.add(w, f"must be an object keyed by 'cpu'/'cuda', got {type(by_dev).__name__}")
            continue
        for dev, v in by_dev.items():
            if dev not in DEVICES:
                p.add(f"{w}[{dev!r}]", "path must be 'cpu' or 'cuda'")
            msg = check_value(v)
            if msg:
                p.add(f"{w}[{dev!r}]", msg)


def _entry_where(i: int, e: Any) -> str:
    eid = e.get("id") if isinstance(e, dict) else None
    return f"entries[{i}] (id {eid!r})" if isinstance(eid, str) else f"entries[{i}]"


def _check_entries(data: dict, p: _Problems) -> None:
    entries = data.get("entries", [])
    if not isinstance(entries, list):
        p.add("field 'entries'", f"must be a list, got {type(entries).__name__}")
        return
    seen_ids: dict[str, int] = {}
    seen_files: dict[tuple, int] = {}
    prov = data["provenance"] if isinstance(data.get("provenance"), dict) else {}
    for i, e in enumerate(entries):
        where = _entry_where(i, e)
        _check_entry(e, where, p)
        if not isinstance(e, dict):
            continue
        eid, src = e.get("id"), (e.get("file"), e.get("key"))
        if isinstance(eid, str):
            if eid in seen_ids:
                p.add(f"{where} field 'id'", f"duplicate of entries[{seen_ids[eid]}]")
            seen_ids.setdefault(eid, i)
        if all(isinstance(x, (str, type(None))) for x in src):
            if src in seen_files:
                p.add(
                    f"{where} fields 'file'/'key'",
                    f"same file and key as entries[{seen_files[src]}]",
                )
            seen_files.setdefault(src, i)
        for rel in e.get("values", {}) if isinstance(e.get("values"), dict) else ():
            if rel not in prov:
                p.add(
                    f"{where} field 'values'[{rel!r}]",
                    f"release {rel!r} has values but no provenance[{rel!r}] record of the real SGLang that made them",
                )


def validate(data: Any, root: Path, source: str = MANIFEST_NAME) -> Manifest:
    """Check manifest JSON ``data`` against the schema; a :class:`Manifest`, or one :class:`GoldenError`
    listing every problem with its location (entry index, id and field)."""
    p = _Problems(source)
    if _check_top(data, p):
        _check_provenance(data.get("provenance", {}), p)
        _check_entries(data, p)
    p.raise_if_any()
    entries = tuple(Entry(**{k: e[k] for k in ENTRY_KEYS}) for e in data["entries"])
    return Manifest(
        Path(root), data["pin"], data["provenance"], tuple(sorted(entries, key=lambda e: e.id))
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise GoldenError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise GoldenError(f"{name} is not valid in a golden manifest")


def manifest_path(golden: str | os.PathLike) -> Path:
    """The manifest file of a golden dir (or the file itself when given)."""
    p = Path(golden)
    return p if p.suffix == ".json" else p / MANIFEST_NAME


def parse(text: str | bytes, root: Path, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest text (UTF-8 when bytes)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except UnicodeDecodeError as e:
        raise GoldenError(f"{source}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise GoldenError(
            f"{source}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except GoldenError as e:
        raise GoldenError(f"{source}: {e}") from None
    except (ValueError, RecursionError) as e:  # integers past Python's digit limit, absurd nesting
        raise GoldenError(
            f"{source}: not a usable JSON manifest: {type(e).__name__}: {e}"
        ) from None
    return validate(data, root, source)


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
    """Feature files under the golden dir that no entry names (posix paths relative to the dir).

    Hidden files and dirs, ``__pycache__`` and documentation/tooling suffixes
    (:data:`NOT_FEATURE_SUFFIXES`) are not feature files.
    """
    listed = {e.file for e in manifest.entries}
    out = []
    for p in sorted(manifest.root.rglob("*")):
        rel = p.relative_to(manifest.root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if (
            p.is_file()
            and p.suffix.lower() not in NOT_FEATURE_SUFFIXES
            and rel.as_posix() not in listed
        ):
            out.append(rel.as_posix())
    return out


@dataclass(frozen=True)
class Diagnosis:
    """Why a golden check fails: the feature file changed, or the scheme/implementation did."""

    bytes_changed: bool
    summary: str
    detail: str


def iter_items(manifest: Manifest) -> Iterator[tuple[Entry, str]]:
    """Every (entry, path) pair a golden run covers."""
    for e in manifest.entries:
        for d in DEVICES:
            yield e, d


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
            f"{entry.sha256[:16]}..., so the same bytes now give a different result"
        ),
    )


# --------------------------------------------------------------------------- atomic write


def write_manifest(manifest: Manifest, path: str | os.PathLike | None = None) -> Path:
    """Write ``manifest`` canonically and atomically: temp file in the same dir, fsync, os.replace.

    A crash or kill at any point leaves either the old file or the new one, never half of one.
    The old file's permission bits are kept.
    """
    target = Path(path) if path is not None else manifest.path
    text = dumps(manifest).encode("utf-8")
    mode = _mode_for(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
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


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Recorded:
    """One value recorded from real SGLang for one entry, release and path."""

    entry_id: str
    release: str
    device: str
    value: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for xdist's workeroutput)."""
        return {
            "entry_id": self.entry_id,
            "release": self.release,
            "device": self.device,
            "value": dict(self.value),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Recorded:
        """Inverse of :meth:`to_json`."""
        return cls(d["entry_id"], d["release"], d["device"], d["value"])


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


def changed_count(old: Manifest, new: Manifest) -> int:
    """How many (entry, release, path) values differ between two manifests."""

    def flat(m: Manifest) -> dict:
        return {
            (e.id, r, d): v for e in m.entries for r, bd in e.values.items() for d, v in bd.items()
        }

    a, b = flat(old), flat(new)
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


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
