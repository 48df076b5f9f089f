"""The golden manifest's data model: entries, the manifest, recorded values (no I/O, no schema).

A manifest binds feature files (by SHA-256) to the hash and pad values real SGLang releases
recorded for them, per path (``cpu``/``cuda``). Its JSON form is :meth:`Manifest.to_json`; reading
and checking that form is :mod:`.validation`, files on disk are :mod:`.store`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GoldenError
from ..versions import DEVICES

FORMAT = "pytest-mmhash-golden"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: Pad values of feature-less item hashes, recorded from real SGLang (mmhash vectors export).
PAD_VECTORS_NAME = "pad-vectors.json"
PAD_VECTORS_FORMAT = "pytest-mmhash-pad-vectors"
CUDA_PATHS = ("triton-interpreter", "cuda-device")
PROVENANCE_KEYS = ("sglang", "torch", "triton", "numpy", "python", "cuda_path", "date")
ENTRY_KEYS = ("id", "file", "key", "sha256", "kind", "description", "values")
TOP_KEYS = ("format", "format_version", "pin", "provenance", "entries")


class RecordedValue(dict):
    """A recorded value (``{"hash","hex","pad_values"}`` or ``{"error"}``) that remembers the
    release and path it was recorded for, so ``mmhash_equal`` compares there."""

    def __init__(self, value: Mapping[str, Any], release: str, device: str) -> None:
        super().__init__(value)
        self.release = release
        self.device = device


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

    def value(self, release: str, device: str) -> RecordedValue | None:
        """The recorded value for ``release`` on path ``device``, or None when not recorded."""
        v = self.values.get(release, {}).get(device)
        return RecordedValue(v, release, device) if v is not None else None

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
        from ..loaders import load_feature

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


def _release_index(release: str) -> tuple[int, int]:
    from ..engines import key_order

    return key_order(release)


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


def iter_items(manifest: Manifest) -> Iterator[tuple[Entry, str]]:
    """Every (entry, path) pair a golden run covers."""
    for e in manifest.entries:
        for d in DEVICES:
            yield e, d


def changed_count(old: Manifest, new: Manifest) -> int:
    """How many (entry, release, path) values differ between two manifests."""

    def flat(m: Manifest) -> dict:
        return {
            (e.id, r, d): v for e in m.entries for r, bd in e.values.items() for d, v in bd.items()
        }

    a, b = flat(old), flat(new)
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def empty_pad_vectors() -> dict[str, Any]:
    """A ``pad-vectors.json`` document with no release recorded yet (releases -> vectors)."""
    return {"format": PAD_VECTORS_FORMAT, "format_version": FORMAT_VERSION, "releases": {}}
