"""The SGLang family as data: each engine's releases and the upstream schemes each one uses.

An engine is a distribution that assigns multimodal item hashes and pad values: upstream ``sglang``,
KTransformers' fork ``sglang-kt`` (it installs the ``sglang`` package, with its own version
numbers) and ``sglang-omni`` (its own package, which pins an upstream ``sglang``). :func:`resolve`
turns ``(engine, version)`` into an :class:`EngineRelease`: the engine's release, the upstream
:class:`~pytest_mmhash.versions.Release` whose schemes it runs, and what the engine adds.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

from . import versions as V
from .errors import BadArgumentError

SGLANG = "sglang"
SGLANG_KT = "sglang-kt"
SGLANG_OMNI = "sglang-omni"
ENGINES = (SGLANG, SGLANG_KT, SGLANG_OMNI)

# Scheme ids of sglang-omni's waveform hash (the item hash of its speech-recognition requests).
OMNI_BLAKE2B = "omni-blake2b-128-f32"
OMNI_XXH3 = "omni-xxh3-128-f32"

#: Every release of each fork on the package index, oldest first.
KT_RELEASES: tuple[str, ...] = tuple(
    """
    0.5.2 0.5.2.post1 0.5.2.post2 0.5.3 0.6.1 0.6.1.post1 0.6.1.post2 0.6.2 0.6.2.post1 0.6.2.post2
    0.6.2.post3 0.6.3 0.6.3.post1 0.6.4 0.7.0 0.7.0.post1 0.7.0.post2 0.7.0.post3 0.7.0.post4 0.7.2
    """.split()
)
OMNI_RELEASES: tuple[str, ...] = tuple(f"0.1.{i}" for i in range(1, 10))


@dataclass(frozen=True)
class Span:
    """A range of one fork's releases that behave alike: the upstream release whose schemes they
    run (for sglang-omni: the sglang it pins) and what the fork adds."""

    first: str
    last: str
    upstream: str
    waveform: str | None = None  # sglang-omni: the waveform hash scheme of ASR items
    url_keys: bool = False  # sglang-omni: http/https/file URL strings get a media key part


_SPANS: dict[str, tuple[Span, ...]] = {
    SGLANG_KT: (Span("0.5.2", "0.7.2", "0.5.9"),),
    SGLANG_OMNI: (
        Span("0.1.1", "0.1.1", "0.5.16", OMNI_BLAKE2B, url_keys=True),
        Span("0.1.2", "0.1.3", "0.5.16", OMNI_XXH3, url_keys=True),
        Span("0.1.4", "0.1.4", "0.5.18", OMNI_XXH3, url_keys=True),
        Span("0.1.5", "0.1.6", "0.5.19", OMNI_XXH3, url_keys=True),
        Span("0.1.7", "0.1.7", "0.5.20", OMNI_XXH3, url_keys=True),
        Span("0.1.8", "0.1.8", "0.5.21", OMNI_XXH3),
        Span("0.1.9", "0.1.9", "0.5.22", OMNI_XXH3),
    ),
}
_RELEASES = {SGLANG: V.RELEASES, SGLANG_KT: KT_RELEASES, SGLANG_OMNI: OMNI_RELEASES}


@dataclass(frozen=True)
class EngineRelease:
    """One engine's release: its version, the upstream release whose schemes apply, and extras."""

    engine: str
    version: str
    upstream: V.Release
    waveform: str | None = None
    url_keys: bool = False


def releases(engine: str) -> tuple[str, ...]:
    """Every known release of ``engine``, oldest first."""
    return _RELEASES[check_engine(engine)]


def spans(engine: str) -> tuple[Span, ...]:
    """The ranges of a fork's releases, oldest first (upstream's are :func:`versions.eras`)."""
    return _SPANS[check_engine(engine)]


def check_engine(engine: str) -> str:
    """``engine`` when it is a known engine name, else a :class:`BadArgumentError`."""
    if engine not in ENGINES:
        raise BadArgumentError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    return engine


def _span_of(engine: str, release: str) -> Span:
    rel = releases(engine)
    i = rel.index(release)
    return next(s for s in spans(engine) if rel.index(s.first) <= i <= rel.index(s.last))


def resolve(engine: str | None, version: str | None, *, allow_newer: bool = False) -> EngineRelease:
    """The release ``version`` of ``engine``; ``None`` means the installed one (see :func:`detect`).

    A fork release newer than its newest known one is an error unless ``allow_newer``, which then
    uses the newest known release of *that fork* (never upstream's newest) and warns.
    """
    if engine is None:
        engine = default_engine()
    check_engine(engine)
    if engine == SGLANG:
        r = V.resolve(version, allow_newer=allow_newer)
        return EngineRelease(SGLANG, r.version, r)
    if version is None:
        version = installed_version(engine) or releases(engine)[-1]
    text = V.match(version, releases(engine), name=engine, allow_newer=allow_newer)
    span = _span_of(engine, text)
    return EngineRelease(engine, text, V.resolve(span.upstream), span.waveform, span.url_keys)


# --------------------------------------------------------------------------- installed engines


def installed_version(engine: str) -> str | None:
    """The installed distribution ``engine``'s version, from its metadata (nothing is imported)."""
    if engine == SGLANG:
        return V.installed_sglang_version()
    from importlib import metadata

    try:
        return metadata.version(check_engine(engine))
    except metadata.PackageNotFoundError:
        return None


def sglang_providers() -> tuple[str, ...]:
    """The installed distributions that provide the top-level ``sglang`` package (normally one):
    ``sglang-kt`` and ``sglang``, looked up by name in distribution metadata, because
    ``sglang-kt`` installs ``sglang`` with no ``sglang`` distribution and ``sglang.__version__``
    says ``0.0.0.dev0``. Remembered per ``sys.path``: every default-engine hash asks."""
    return _providers(tuple(sys.path))


@lru_cache(maxsize=8)
def _providers(path: tuple[str, ...]) -> tuple[str, ...]:
    from importlib import metadata

    found = []
    for dist in (SGLANG_KT, SGLANG):
        try:
            metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return tuple(found)


def default_engine() -> str:
    """The engine used when none is named: ``sglang-kt`` when it provides ``sglang``, else sglang."""
    return SGLANG_KT if SGLANG_KT in sglang_providers() else SGLANG


@dataclass(frozen=True)
class Detected:
    """The engine that provides the installed ``sglang`` package, and how that was found."""

    engine: str
    version: str | None
    note: str


def detect() -> Detected:
    """Which engine the installed ``sglang`` package belongs to, from distribution metadata.

    ``sglang-kt`` and ``sglang`` both install the ``sglang`` package; ``sglang-omni`` (its own
    package, pinning an upstream sglang) is reported but never the default engine, because its
    items are waveforms, not processor features.
    """
    providers = sglang_providers()
    omni = installed_version(SGLANG_OMNI)
    also = f"; sglang-omni {omni} is installed too (--engine sglang-omni)" if omni else ""
    if not providers:
        return Detected(SGLANG, None, f"newest known release; sglang is not installed{also}")
    engine = default_engine()
    version = installed_version(engine)
    both = (
        "; both sglang and sglang-kt distributions claim the sglang package, sglang-kt assumed"
        if len(providers) > 1
        else ""
    )
    return Detected(
        engine,
        version,
        f"installed {engine} {version} (distribution metadata of the sglang package){both}{also}",
    )


# --------------------------------------------------------------------------- release keys


def release_key(engine: str, version: str) -> str:
    """How a golden manifest names a release: ``0.5.23`` for sglang, ``sglang-kt==0.7.2`` for a fork
    (so a manifest written before engines existed reads unchanged)."""
    return version if engine == SGLANG else f"{check_engine(engine)}=={version}"


def resolve_key(text: str, *, allow_newer: bool = False) -> str:
    """The canonical release key ``text`` names: ``V`` is an sglang release (``v0.5.23`` ->
    ``0.5.23``), ``ENGINE==V`` a fork's (``sglang-kt==v0.7.2`` -> ``sglang-kt==0.7.2``)."""
    engine, version = split_key(text)
    er = resolve(engine, version, allow_newer=allow_newer)
    return release_key(er.engine, er.version)


def has_cuda_path(key: str) -> bool:
    """Whether the engine of a release key hashes on a CUDA path (sglang-omni's waveforms do not)."""
    return split_key(key)[0] != SGLANG_OMNI


def split_key(key: str) -> tuple[str, str]:
    """``(engine, version)`` of a release key; a key without ``==`` is an sglang release."""
    engine, sep, version = key.partition("==")
    return (engine, version) if sep else (SGLANG, key)


def key_text(key: str) -> str:
    """A release key in words, as messages name it: ``sglang 0.5.9``, ``sglang-kt 0.7.2``."""
    return " ".join(split_key(key))


def known_key(key: object) -> bool:
    """Whether ``key`` names a known release of a known engine, spelled canonically."""
    if not isinstance(key, str):
        return False
    engine, version = split_key(key)
    return engine in ENGINES and version in releases(engine)


def key_order(key: str) -> tuple[int, int]:
    """Sort key of a known release key: engines in :data:`ENGINES` order, then release order."""
    engine, version = split_key(key)
    return ENGINES.index(engine), releases(engine).index(version)
