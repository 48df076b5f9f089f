"""sglang-omni's cache-key pads and media keys (Qwen3-Omni, Ming-Omni, MiniCPM-o), as a library.

These models give every placeholder of one modality in a request the pad
``vocab_size + XXH3_64(cache_key) mod 2^62``, where the cache key is built from media keys.
The media key of bytes, arrays, tensors, PIL images, strings and local files is reproduced here.
What omni passes in is its own *decoded* media (from 0.1.5 for audio, 0.1.8 for everything), so a
request's key also depends on omni's decoders and request parameters: those are not reproduced.
The waveform hash of ASR items is :func:`pytest_mmhash.hash_feature` with ``engine="sglang-omni"``.
"""

from __future__ import annotations

from typing import Any

from . import engines as E
from .errors import BadArgumentError, UnhashableFeatureError
from .schemes import omni


def _release(sglang_version: str | None, allow_newer: bool) -> E.EngineRelease:
    return E.resolve(E.SGLANG_OMNI, sglang_version, allow_newer=allow_newer)


def omni_key_pad(
    cache_key: str,
    *,
    vocab_size: int,
    sglang_version: str | None = None,
    allow_newer: bool = False,
) -> int:
    """The pad sglang-omni gives a modality whose cache key is ``cache_key`` (same in 0.1.1-0.1.9).

    ``vocab_size`` is the thinker's ``model_config.vocab_size``. MiniCPM-o uses the modality name
    (``"image"``, ``"audio"``) as the key when a request has none.
    """
    _release(sglang_version, allow_newer)
    if not isinstance(cache_key, str):
        raise BadArgumentError(f"a cache key is a string, got {type(cache_key).__name__}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= 0:
        raise BadArgumentError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    try:
        return omni.key_pad(cache_key, vocab_size)
    except UnicodeEncodeError as e:
        raise BadArgumentError(
            f"cache key {cache_key!r} is not UTF-8 encodable (sglang-omni raises {e.reason})"
        ) from None


def omni_media_part(item: Any, *, sglang_version: str | None = None) -> str | None:
    """``hash_media_item``: the key part of one media item, or None where omni keys nothing.

    None for unsupported types and, from 0.1.8, for http/https/file URLs. A string naming an
    existing local file is keyed by a sample of its bytes (first and last 8 KiB, and its size).
    """
    er = _release(sglang_version, False)
    try:
        return omni.media_part(item, url_keys=er.url_keys)
    except TypeError as e:  # e.g. a bfloat16 tensor: torch cannot give numpy its bytes
        raise UnhashableFeatureError(f"sglang-omni {er.version} raises TypeError: {e}") from None


def omni_media_cache_key(
    items: Any, *, prefix: str, sglang_version: str | None = None
) -> str | None:
    """``compute_media_cache_key``: ``f"{prefix}:{XXH3_64('|'.join(parts))}"``; None if a part is."""
    er = _release(sglang_version, False)
    try:
        return omni.media_cache_key(items, prefix=prefix, url_keys=er.url_keys)
    except TypeError as e:
        raise UnhashableFeatureError(f"sglang-omni {er.version} raises TypeError: {e}") from None


def omni_contextualize(base_key: str | None, **context: Any) -> str | None:
    """``contextualize_cache_key`` (Qwen3-Omni): ``base|k=v|...`` over sorted, non-None context."""
    return omni.contextualize(base_key, **context)
