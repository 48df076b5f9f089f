"""Every released SGLang version and the hashing schemes each one uses (docs/spec.md §2).

The registry is data: a sorted table of release ranges, each naming its CPU content scheme, CUDA
content scheme, pad scheme and value-relevant modifiers. :func:`resolve` turns a version string
into an :class:`Era`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

from .errors import NewerReleaseError, UnknownVersionError

#: Every PyPI release of sglang from 0.4.0 on, oldest first (92 wheels; PyPI has no 0.5.0).
RELEASES: tuple[str, ...] = tuple(
    """
    0.4.0 0.4.0.post1 0.4.0.post2 0.4.1 0.4.1.post1 0.4.1.post2 0.4.1.post3 0.4.1.post4 0.4.1.post5
    0.4.1.post6 0.4.1.post7 0.4.2 0.4.2.post1 0.4.2.post2 0.4.2.post3 0.4.2.post4 0.4.3 0.4.3.post1
    0.4.3.post2 0.4.3.post3 0.4.3.post4 0.4.4 0.4.4.post1 0.4.4.post2 0.4.4.post3 0.4.4.post4 0.4.5
    0.4.5.post1 0.4.5.post2 0.4.5.post3 0.4.6 0.4.6.post1 0.4.6.post2 0.4.6.post3 0.4.6.post4
    0.4.6.post5 0.4.7 0.4.7.post1 0.4.8 0.4.8.post1 0.4.9 0.4.9.post1 0.4.9.post2 0.4.9.post3
    0.4.9.post4 0.4.9.post5 0.4.9.post6 0.4.10 0.4.10.post1 0.4.10.post2 0.5.1 0.5.1.post1 0.5.1.post2
    0.5.1.post3 0.5.2 0.5.3 0.5.3.post1 0.5.3.post2 0.5.3.post3 0.5.4 0.5.4.post1 0.5.4.post2
    0.5.4.post3 0.5.5 0.5.5.post1 0.5.5.post2 0.5.5.post3 0.5.6 0.5.6.post1 0.5.6.post2 0.5.7 0.5.8
    0.5.8.post1 0.5.9 0.5.10 0.5.10.post1 0.5.11 0.5.12 0.5.12.post1 0.5.13 0.5.13.post1 0.5.14 0.5.15
    0.5.15.post1 0.5.16 0.5.17 0.5.18 0.5.19 0.5.20 0.5.21 0.5.22 0.5.23
    """.split()
)
NEWEST = RELEASES[-1]

#: The two paths SGLang hashes on: its CPU path (SHA-256) and its CUDA path (Triton kernels).
DEVICES = ("cpu", "cuda")

# Scheme ids, as named in docs/spec.md §2.3.
PY_HASH_V0 = "py-hash-v0"
PROCESSOR_PY_HASH = "processor-py-hash"
SHA256_F32 = "sha256-f32"
SHA256_RAW = "sha256-raw"
GPU_XOR_INT32 = "gpu-xor-int32"
GPU_XOR_INT64 = "gpu-xor-int64"
GPU_TILE_FMIX32 = "gpu-tile-fmix32"
PAD_MOD30 = "pad-mod30"
PAD_SHIFT_1E6 = "pad-shift-1e6"
PAD_WIDE4 = "pad-wide4"
MASK64 = "mask64"


@dataclass(frozen=True)
class Era:
    """The value-relevant behaviour of one range of releases."""

    first: str
    last: str
    cpu: str
    cuda: str
    pad: str
    mask64: bool = False
    empty_list_error: str = "IndexError"  # what SGLang raises for hash_feature([])
    mm_hashes: bool = False  # 0.5.13+: the request field ``mm_hashes`` sets the item hash
    namespaces: bool = False  # 0.5.18+: ``ns-mix-v1`` exists
    identity: bool = False  # 0.5.23+: ``set_identity`` with a 32-byte identity


def _v(s: str) -> int:
    return RELEASES.index(s)


# (first, last, cpu, cuda, pad, extra flags); ranges are contiguous and cover RELEASES.
_TABLE: tuple[Era, ...] = (
    Era("0.4.0", "0.4.4.post3", PROCESSOR_PY_HASH, PROCESSOR_PY_HASH, PAD_MOD30),
    Era("0.4.4.post4", "0.4.5", PY_HASH_V0, PY_HASH_V0, PAD_MOD30),
    Era("0.4.5.post1", "0.4.6.post4", SHA256_F32, SHA256_F32, PAD_MOD30),
    Era("0.4.6.post5", "0.4.6.post5", SHA256_F32, GPU_XOR_INT32, PAD_MOD30),
    Era("0.4.7", "0.4.10.post2", SHA256_F32, GPU_XOR_INT64, PAD_MOD30),
    Era("0.5.1", "0.5.8.post1", SHA256_F32, GPU_TILE_FMIX32, PAD_MOD30),
    Era("0.5.9", "0.5.9", SHA256_F32, GPU_TILE_FMIX32, PAD_SHIFT_1E6),
    Era("0.5.10", "0.5.12.post1", SHA256_RAW, GPU_TILE_FMIX32, PAD_SHIFT_1E6),
    Era(
        "0.5.13",
        "0.5.13.post1",
        SHA256_RAW,
        GPU_TILE_FMIX32,
        PAD_SHIFT_1E6,
        mm_hashes=True,
    ),
    Era(
        "0.5.14",
        "0.5.17",
        SHA256_RAW,
        GPU_TILE_FMIX32,
        PAD_SHIFT_1E6,
        empty_list_error="TypeError",
        mm_hashes=True,
    ),
    Era(
        "0.5.18",
        "0.5.18",
        SHA256_RAW,
        GPU_TILE_FMIX32,
        PAD_SHIFT_1E6,
        empty_list_error="TypeError",
        mm_hashes=True,
        namespaces=True,
    ),
    Era(
        "0.5.19",
        "0.5.22",
        SHA256_RAW,
        GPU_TILE_FMIX32,
        PAD_SHIFT_1E6,
        mask64=True,
        empty_list_error="TypeError",
        mm_hashes=True,
        namespaces=True,
    ),
    Era(
        "0.5.23",
        "0.5.23",
        SHA256_RAW,
        GPU_TILE_FMIX32,
        PAD_WIDE4,
        mask64=True,
        empty_list_error="TypeError",
        mm_hashes=True,
        namespaces=True,
        identity=True,
    ),
)


@dataclass(frozen=True)
class Release:
    """A resolved SGLang version: the release it is, and its :class:`Era`."""

    version: str
    era: Era


def _parse(version: str) -> Version:
    text = str(version).strip()
    try:
        return Version(text[1:] if text[:1] in "vV" else text)
    except InvalidVersion:
        raise UnknownVersionError(
            f"{version!r} is not a version number (expected e.g. 0.5.23)"
        ) from None


@lru_cache(maxsize=256)  # every hash resolves its version: parse each spelling once
def base_version(version: str) -> Version:
    """``version`` parsed, without a local label (``0.5.9+cu128`` -> 0.5.9); a leading v is allowed."""
    return _parse(_parse(version).public)


@cache
def _known_releases() -> dict[Version, Release]:
    """Every release by its parsed version, oldest first: :func:`resolve` is one lookup."""
    return {_parse(r): Release(r, _era_of(r)) for r in RELEASES}


@cache
def _index(releases: tuple[str, ...]) -> dict[Version, str]:
    """``releases`` by parsed version, oldest first: :func:`match` is one lookup."""
    return {_parse(r): r for r in releases}


def _era_of(release: str) -> Era:
    i = _v(release)
    for era in _TABLE:
        if _v(era.first) <= i <= _v(era.last):
            return era
    raise AssertionError(release)  # pragma: no cover - the table covers RELEASES


def match(
    version: str, releases: tuple[str, ...], *, name: str = "sglang", allow_newer: bool = False
) -> str:
    """The entry of ``releases`` (oldest first) that ``version`` names, local label ignored.

    A version newer than the newest is an error unless ``allow_newer``, which then gives the newest
    release and warns; one between two releases or before the first is an error. ``name`` is the
    engine named in the messages.
    """
    base = base_version(version)
    index = _index(releases)
    if base in index:
        return index[base]
    parsed = tuple(index)
    newest = releases[-1]
    if base > parsed[-1]:
        if not allow_newer:
            raise NewerReleaseError(
                f"{name} {version} is newer than the newest release this pytest-mmhash knows "
                f"({newest}); upgrade pytest-mmhash, or pass --allow-newer / allow_newer=True to "
                f"assume {newest}'s schemes",
                newest,
            )
        warnings.warn(
            f"{name} {version} is newer than {newest}; assuming {newest}'s hash schemes",
            stacklevel=3,
        )
        return newest
    if base < parsed[0]:
        raise UnknownVersionError(
            f"{name} {version} predates {releases[0]}, its first release this pytest-mmhash knows"
        )
    below = max(r for r in parsed if r < base)
    above = min(r for r in parsed if r > base)
    raise UnknownVersionError(
        f"{name} {version} is not a released version (nearest releases: {below}, {above}); "
        f"see mmhash --list-versions"
    )


def resolve(version: str | None, *, allow_newer: bool = False) -> Release:
    """Map a version string (``0.5.23``, ``v0.4.10.post2``, ``0.5.9+cu128``) to its release.

    ``None`` means the installed sglang's version when it is installed, else the newest known
    release. A version newer than the newest known release is an error unless ``allow_newer``,
    which then uses the newest release's schemes and warns.
    """
    if version is None:
        version = installed_sglang_version() or NEWEST
    base = base_version(version)
    known = _known_releases()
    if base in known:
        return known[base]
    if base < next(iter(known)):
        raise UnknownVersionError(
            f"sglang {version} predates 0.4.0; its pad values come from Python hash() of the "
            f"image data and are not reproducible"
        )
    return known[_parse(match(version, RELEASES, allow_newer=allow_newer))]


def installed_sglang_version() -> str | None:
    """The installed sglang distribution's version, read from its metadata without importing it.

    Remembered per ``sys.path``: the lookup scans every path entry (1-6 ms), and every hash with
    the default release asks.
    """
    return _installed_sglang(tuple(sys.path))


@lru_cache(maxsize=8)
def _installed_sglang(path: tuple[str, ...]) -> str | None:
    from importlib import metadata

    try:
        return metadata.version("sglang")
    except metadata.PackageNotFoundError:
        return None


def eras() -> tuple[Era, ...]:
    """The release ranges, oldest first, for ``mmhash --list-versions``."""
    return _TABLE


def schemes_line(s: Mapping[str, Any] | None) -> str:
    """Scheme ids as one line, e.g. ``hash sha256-raw, pad pad-wide4, modifiers mask64``."""
    if not s:
        return "(not reported by this implementation)"
    return (
        f"hash {s['hash']}, pad {s['pad']}, modifiers {'+'.join(s.get('modifiers', [])) or 'none'}"
    )
