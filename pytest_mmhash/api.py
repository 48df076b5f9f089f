"""The public hashing API: :func:`hash_feature`, :func:`pad_values` and the :class:`MMHash` result."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from . import engines as E
from . import versions as V
from .cuda import emulation, on_device
from .errors import (
    BadArgumentError,
    UnhashableFeatureError,
    UnreproducibleHashError,
    UnsupportedDeviceError,
)
from .features import plan_feature
from .ints import hex64
from .schemes import cpu, pad

_SHA256_SCHEMES = (V.SHA256_F32, V.SHA256_RAW)
_CUDA_SCHEMES = {
    V.GPU_XOR_INT32: emulation.gpu_xor_int32,
    V.GPU_XOR_INT64: emulation.gpu_xor_int64,
    V.GPU_TILE_FMIX32: emulation.gpu_tile_fmix32,
}
_PAD_SCHEMES = {
    V.PAD_MOD30: pad.pad_mod30,
    V.PAD_SHIFT_1E6: pad.pad_shift_1e6,
    V.PAD_WIDE4: pad.pad_wide4,
}


@dataclass(frozen=True)
class MMHash:
    """What one SGLang release stores for one multimodal item: its hash and pad value(s)."""

    hash: int
    pad_values: tuple[int, ...]
    sglang_version: str
    device: str | None  # the path that hashed the content ("cpu"/"cuda"); None for given hashes
    hash_scheme: str  # e.g. "sha256-raw", "gpu-tile-fmix32", "mm-hash", "identity", "ns-mix-v1"
    pad_scheme: str
    modifiers: tuple[str, ...] = field(default=())
    engine: str = E.SGLANG  # sglang_version is this engine's release
    upstream_version: str | None = None  # a fork's: the upstream release whose schemes apply
    #: hex SHA-256 of every byte a SHA-256 scheme hashed (its first 16 digits give the hash), so
    #: callers that also report the feature's digest hash it once; ``None`` for other schemes.
    content_sha256: str | None = field(default=None, compare=False, repr=False)

    @property
    def hex(self) -> str:
        """The hash as 16 hex digits (two's complement mod 2^64 for signed int64 hashes)."""
        return hex64(self.hash)

    @property
    def pad_value(self) -> int:
        """The item's ``pad_value``: the first pad (the only one before pad-wide4)."""
        return self.pad_values[0]

    @property
    def schemes(self) -> dict[str, Any]:
        """The scheme ids that produced this value, e.g. for JSON output."""
        return {"hash": self.hash_scheme, "pad": self.pad_scheme, "modifiers": list(self.modifiers)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "engine": self.engine,
            "sglang_version": self.sglang_version,
            "upstream_version": self.upstream_version,
            "device": self.device,
            "hash": self.hash,
            "hex": self.hex,
            "pad_value": self.pad_value,
            "pad_values": list(self.pad_values),
            "schemes": self.schemes,
        }


def _check_device(device: str | None) -> None:
    if device is not None and device not in V.DEVICES:
        raise UnsupportedDeviceError(f"device {device!r} is not one of 'cpu', 'cuda'")


def _reproducible(release: V.Release) -> None:
    era = release.era
    if era.cpu == V.PY_HASH_V0:
        raise UnreproducibleHashError(
            f"sglang {release.version} hashes features with Python's built-in hash() (py-hash-v0, "
            f"0.4.4.post4-0.4.5): tensors hash by object identity and bytes by PYTHONHASHSEED, so "
            f"the value changes in every process and cannot be reproduced"
        )
    if era.cpu == V.PROCESSOR_PY_HASH:
        raise UnreproducibleHashError(
            f"sglang {release.version} has no MultimodalDataItem: processors pass Python hash() "
            f"values of the image data, which depend on PYTHONHASHSEED and cannot be reproduced"
        )


def _item(h: int, er: E.EngineRelease, device: str | None, scheme: str) -> MMHash:
    era = er.upstream.era
    stored = pad.mask64(h) if era.mask64 else h
    return MMHash(
        hash=stored,
        pad_values=_PAD_SCHEMES[era.pad](stored),
        sglang_version=er.version,
        device=device,
        hash_scheme=scheme,
        pad_scheme=era.pad,
        modifiers=(V.MASK64,) if era.mask64 else (),
        engine=er.engine,
        upstream_version=None if er.engine == E.SGLANG else er.upstream.version,
    )


def hash_feature(
    feature: Any,
    *,
    sglang_version: str | None = None,
    device: str | None = None,
    allow_newer: bool = False,
    engine: str | None = None,
) -> MMHash:
    """The hash and pad value(s) release ``sglang_version`` of ``engine`` gives ``feature``.

    ``feature`` is a torch tensor, a (nested) list of tensors, a numpy array or a bytes-like
    object. ``device`` forces the CPU or CUDA path; by default the tensors' own device decides,
    as in SGLang. Raises :class:`UnhashableFeatureError` where SGLang itself raises.
    ``engine`` is ``sglang``, ``sglang-kt`` or ``sglang-omni`` (default: the installed one, see
    :func:`pytest_mmhash.engines.detect`); for ``sglang-omni`` the feature is the float32 waveform
    of a speech-recognition item.
    """
    _check_device(device)
    er = E.resolve(engine, sglang_version, allow_newer=allow_newer)
    if er.waveform is not None:
        return _item(_waveform_hash(feature, er, device), er, "cpu", er.waveform)
    release = er.upstream
    _reproducible(release)
    p = plan_feature(feature, release, device)
    scheme = release.era.cuda if p.path == "cuda" else release.era.cpu
    if scheme in _SHA256_SCHEMES:
        sha = cpu.sha256_stream(p.stream)
        value = _item(cpu.digest8_of(sha), er, p.path, scheme)
        return replace(value, content_sha256=sha.hexdigest())
    h = on_device.try_hash_on_device(p, scheme) if p.path == "cuda" else None
    if h is None:
        h = _CUDA_SCHEMES[scheme](p.stream)
    return _item(h, er, p.path, scheme)


def _waveform_hash(waveform: Any, er: E.EngineRelease, device: str | None) -> int:
    """sglang-omni's item hash of an ASR waveform (numpy on the CPU: it has no CUDA path).

    Anything numpy can cast to float32 by value is hashed as omni would; what it cannot cast
    raises what omni raises (as :class:`UnhashableFeatureError`).
    """
    from .omni import waveform_f32
    from .schemes import omni

    if device == "cuda":
        raise UnsupportedDeviceError(
            "sglang-omni hashes waveforms with numpy on the CPU; it has no CUDA path"
        )
    try:
        samples = waveform_f32(waveform)
    except (TypeError, ValueError, RuntimeError) as e:
        raise UnhashableFeatureError(
            f"sglang-omni {er.version} cannot cast this waveform to float32: {type(e).__name__}: {e}"
        ) from None
    scheme = omni.blake2b_128_hash if er.waveform == E.OMNI_BLAKE2B else omni.xxh3_128_hash
    return scheme(samples)


def pad_values(
    h: int,
    *,
    sglang_version: str | None = None,
    allow_newer: bool = False,
    engine: str | None = None,
) -> tuple[int, ...]:
    """The pad value(s) SGLang ``sglang_version`` derives from an item hash ``h`` (``set_hash``)."""
    return from_hash(
        h, sglang_version=sglang_version, allow_newer=allow_newer, engine=engine
    ).pad_values


def from_hash(
    h: int,
    *,
    sglang_version: str | None = None,
    allow_newer: bool = False,
    engine: str | None = None,
) -> MMHash:
    """The item SGLang stores when its hash is set to ``h`` (a preset hash, then ``set_pad_value``).

    For sglang-omni this is an ASR item whose hash the caller supplies (the pinned sglang's pad).
    """
    if isinstance(h, bool) or not isinstance(h, int):
        raise TypeError(f"an item hash is an int, got {type(h).__name__}")
    return _item(h, E.resolve(engine, sglang_version, allow_newer=allow_newer), None, "given")


def _release_with(
    engine: str | None,
    sglang_version: str | None,
    allow_newer: bool,
    feature: str,
    missing: str,
) -> E.EngineRelease:
    """The engine release, refusing one whose upstream era lacks ``feature`` (an :class:`Era` flag).

    sglang-omni builds its items itself, so upstream's request paths are never its own.
    """
    er = E.resolve(engine, sglang_version, allow_newer=allow_newer)
    if er.waveform is not None:
        raise UnhashableFeatureError(
            f"sglang-omni {er.version} has no {feature} path: it builds its items itself (a "
            f"waveform hash, or a cache-key pad: see omni_key_pad)"
        )
    if not getattr(er.upstream.era, feature):
        raise UnhashableFeatureError(f"{er.engine} {er.version} {missing}")
    return er


def from_mm_hash(
    text: str,
    *,
    sglang_version: str | None = None,
    allow_newer: bool = False,
    engine: str | None = None,
) -> MMHash:
    """The item SGLang builds from a caller's ``mm_hashes`` hex string (0.5.13+): ``int(text, 16)``."""
    er = _release_with(
        engine,
        sglang_version,
        allow_newer,
        "mm_hashes",
        "does not accept mm_hashes (the request field exists from sglang 0.5.13)",
    )
    try:
        h = pad.hash_of_mm_hash(text)
    except ValueError:
        raise BadArgumentError(
            f"mm_hash {text!r} is not a hex string: sglang raises ValueError in int(..., 16)"
        ) from None
    return _item(h, er, None, "mm-hash")


def from_identity(
    identity: bytes | str,
    *,
    sglang_version: str | None = None,
    allow_newer: bool = False,
    engine: str | None = None,
) -> MMHash:
    """The item SGLang builds with ``set_identity`` (0.5.23+) from a 32-byte identity (or 64 hex digits)."""
    er = _release_with(
        engine,
        sglang_version,
        allow_newer,
        "identity",
        "has no set_identity (32-byte identities exist from sglang 0.5.23)",
    )
    if isinstance(identity, str):
        try:
            identity = bytes.fromhex(identity)
        except ValueError:
            raise BadArgumentError(f"identity {identity!r} is not hex") from None
    if len(identity) != 32:
        raise BadArgumentError(
            f"an identity is 32 bytes, got {len(identity)}: sglang's set_identity raises ValueError"
        )
    item = _item(pad.hash_of_identity(identity), er, None, "identity")
    return replace(item, pad_values=pad.wide4_from_identity(identity))


def namespaced(
    h: int,
    namespace: str,
    *,
    sglang_version: str | None = None,
    allow_newer: bool = False,
    engine: str | None = None,
) -> MMHash:
    """The item a model processor builds with ``ns-mix-v1`` (0.5.18+) from a hash and a namespace."""
    er = _release_with(
        engine,
        sglang_version,
        allow_newer,
        "namespaces",
        "has no namespaced hashes (ns-mix-v1 exists from sglang 0.5.18)",
    )
    try:
        mixed = pad.ns_mix_v1(h, namespace)
    except ValueError as e:
        raise UnhashableFeatureError(f"{er.engine} {er.version} raises ValueError: {e}") from None
    return _item(mixed, er, None, "ns-mix-v1")
