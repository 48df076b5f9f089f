"""sglang-omni's own hash schemes: the waveform hash of ASR items, the cache-key pad, media keys.

Pure functions of their inputs, written from sglang-omni's ``utils/audio.py``,
``preprocessing/cache_key.py``, ``models/qwen3_omni/components/preprocessor.py`` and the pad line
of its Qwen3-Omni, Ming-Omni and MiniCPM-o request builders; none knows about releases.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import xxhash

KEY_PAD_MODULUS = 1 << 62
FILE_SAMPLE_BYTES = 8192


def waveform_f32(waveform: Any) -> np.ndarray:
    """The waveform as omni hashes it: C-contiguous float32 by *value* (``np.ascontiguousarray``)."""
    return np.ascontiguousarray(waveform, dtype=np.float32)


def blake2b_128_hash(data: Any) -> int:
    """sglang-omni 0.1.1: the first 8 bytes (big-endian) of BLAKE2b with a 16-byte digest."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest()[:8], "big")


def xxh3_128_hash(data: Any) -> int:
    """sglang-omni 0.1.2+: the high 64 bits of XXH3-128 (seed 0), ``int(hexdigest[:16], 16)``."""
    return xxhash.xxh3_128_intdigest(data) >> 64


def key_pad(cache_key: str, vocab_size: int) -> int:
    """The pad of a request's modality: ``vocab_size + XXH3_64(cache_key) mod 2^62``."""
    return vocab_size + xxhash.xxh3_64_intdigest(cache_key.encode()) % KEY_PAD_MODULUS


def hash_hex(data: Any) -> str:
    """``hash_bytes``: the 16-hex-digit XXH3-64 of a buffer."""
    return xxhash.xxh3_64_hexdigest(data)


def _sampled_file_hex(path: Path) -> str:
    """``hash_file_sampled``: XXH3-64 of the first and last 8 KiB (all of a small file) + ``|size:N``."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(FILE_SAMPLE_BYTES)
        tail = b""
        if size > 2 * FILE_SAMPLE_BYTES:
            f.seek(-FILE_SAMPLE_BYTES, 2)
            tail = f.read(FILE_SAMPLE_BYTES)
    return hash_hex(head + tail + f"|size:{size}".encode())


def _string_part(s: str, url_keys: bool) -> str | None:
    scheme = urlparse(s).scheme
    if scheme in ("http", "https", "data", "file"):
        return f"url:{hash_hex(s.encode())}" if url_keys or scheme == "data" else None
    p = Path(s)
    if p.exists() and p.is_file():
        return f"file:{_sampled_file_hex(p)}"
    return f"url:{hash_hex(s.encode())}"


def media_part(item: Any, *, url_keys: bool) -> str | None:
    """``hash_media_item``: one item's key part, or None for what omni does not key.

    ``url_keys``: http/https/file URL strings are keyed by their text (0.1.1-0.1.7); from 0.1.8
    they give None and only ``data:`` URLs are keyed as strings.
    """
    if isinstance(item, (str, Path)):
        return _string_part(str(item), url_keys)
    from PIL import Image

    if isinstance(item, Image.Image):
        return f"pil:{item.mode}|{item.size}:{hash_hex(item.tobytes())}"
    if isinstance(item, np.ndarray):
        return f"np:{item.dtype}|{item.shape}:{hash_hex(item.tobytes())}"
    import torch

    if isinstance(item, torch.Tensor):
        cpu = item.detach().cpu()
        return f"pt:{cpu.dtype}|{tuple(cpu.shape)}:{hash_hex(cpu.numpy().tobytes())}"
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"bytes:{hash_hex(item)}"
    return None


def media_cache_key(items: Any, *, prefix: str, url_keys: bool) -> str | None:
    """``compute_media_cache_key``: ``prefix:XXH3_64('|'.join(parts))``, None if any part is None."""
    if items is None:
        return None
    seq = items if isinstance(items, list) else [items]
    parts = [media_part(x, url_keys=url_keys) for x in seq]
    if not parts or None in parts:
        return None
    return f"{prefix}:{hash_hex('|'.join(parts).encode('utf-8'))}"  # type: ignore[arg-type]


def contextualize(base_key: str | None, **context: Any) -> str | None:
    """``contextualize_cache_key``: ``base|k=v|...`` over the sorted keys whose value is not None."""
    if base_key is None:
        return None
    return "|".join(
        [base_key, *(f"{k}={context[k]}" for k in sorted(context) if context[k] is not None)]
    )
