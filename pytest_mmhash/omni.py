"""sglang-omni's cache-key pads and media keys (Qwen3-Omni, Ming-Omni, MiniCPM-o), as a library.

These models give every placeholder of one modality in a request the pad
``vocab_size + XXH3_64(cache_key) mod 2^62``, where the cache key is built from media keys.
The media key of bytes, arrays, tensors, PIL images, strings and local files is reproduced here.
What omni passes in is its own *decoded* media (from 0.1.5 for audio, 0.1.8 for everything), so a
request's key also depends on omni's decoders and request parameters: those are not reproduced.
The waveform hash of ASR items is :func:`pytest_mmhash.hash_feature` with ``engine="sglang-omni"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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


def waveform_f32(waveform: Any) -> Any:
    """The waveform as omni hashes it: C-contiguous float32 by *value* (``np.ascontiguousarray``)."""
    import numpy as np

    return np.ascontiguousarray(waveform, dtype=np.float32)


def _file_sample(p: Path) -> tuple[bytes, bytes, int]:
    size = p.stat().st_size
    with open(p, "rb") as f:
        head, tail = f.read(omni.FILE_SAMPLE_BYTES), b""
        if size > 2 * omni.FILE_SAMPLE_BYTES:
            f.seek(-omni.FILE_SAMPLE_BYTES, 2)
            tail = f.read(omni.FILE_SAMPLE_BYTES)
    return head, tail, size


def media_part(item: Any, url_keys: bool) -> str | None:
    """``hash_media_item`` of one item: which bytes each input type contributes, then the scheme."""
    if isinstance(item, (str, Path)):
        text = str(item)
        scheme = urlparse(text).scheme
        if scheme in omni.URL_SCHEMES:
            return omni.url_part(text, scheme, url_keys)
        p = Path(text)
        if p.exists() and p.is_file():
            return f"file:{omni.sampled_file_hex(*_file_sample(p))}"
        return f"url:{omni.hash_hex(text.encode())}"  # any other string: keyed by its text
    from PIL import Image

    if isinstance(item, Image.Image):
        return omni.typed_part("pil", f"{item.mode}|{item.size}", item.tobytes())
    import numpy as np

    if isinstance(item, np.ndarray):
        return omni.typed_part("np", f"{item.dtype}|{item.shape}", item.tobytes())
    import torch

    if isinstance(item, torch.Tensor):
        cpu = item.detach().cpu()
        return omni.typed_part("pt", f"{cpu.dtype}|{tuple(cpu.shape)}", cpu.numpy().tobytes())
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"bytes:{omni.hash_hex(item)}"
    return None


def omni_media_part(item: Any, *, sglang_version: str | None = None) -> str | None:
    """``hash_media_item``: the key part of one media item, or None where omni keys nothing.

    None for unsupported types and, from 0.1.8, for http/https/file URLs. A string naming an
    existing local file is keyed by a sample of its bytes (first and last 8 KiB, and its size).
    """
    er = _release(sglang_version, False)
    try:
        return media_part(item, er.url_keys)
    except TypeError as e:  # e.g. a bfloat16 tensor: torch cannot give numpy its bytes
        raise UnhashableFeatureError(f"sglang-omni {er.version} raises TypeError: {e}") from None


def omni_media_cache_key(
    items: Any, *, prefix: str, sglang_version: str | None = None
) -> str | None:
    """``compute_media_cache_key``: ``f"{prefix}:{XXH3_64('|'.join(parts))}"``; None if a part is."""
    if items is None:
        return None
    seq = items if isinstance(items, list) else [items]
    parts = [omni_media_part(x, sglang_version=sglang_version) for x in seq]
    if not parts or None in parts:
        return None
    return omni.joined_key(prefix, parts)  # type: ignore[arg-type]


def omni_contextualize(base_key: str | None, **context: Any) -> str | None:
    """``contextualize_cache_key`` (Qwen3-Omni): ``base|k=v|...`` over sorted, non-None context."""
    return omni.contextualize(base_key, **context)
