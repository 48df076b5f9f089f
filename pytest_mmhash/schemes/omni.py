"""sglang-omni's own hash schemes, as pure functions of bytes and strings (docs/spec.md §12).

The waveform hash of ASR items (per era), the cache-key pad, and the pieces of its media keys,
written from sglang-omni's ``utils/audio.py``, ``preprocessing/cache_key.py``,
``models/qwen3_omni/components/preprocessor.py`` and the pad line of its request builders. What
bytes an input gives is :mod:`pytest_mmhash.omni`'s job; none of these knows about releases.
"""

from __future__ import annotations

import hashlib
from typing import Any

import xxhash

KEY_PAD_MODULUS = 1 << 62
FILE_SAMPLE_BYTES = 8192
URL_SCHEMES = ("http", "https", "data", "file")


def blake2b_128_hash(data: Any) -> int:
    """sglang-omni 0.1.1: the first 8 bytes (big-endian) of BLAKE2b with a 16-byte digest."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest()[:8], "big")


def xxh3_128_hash(data: Any) -> int:
    """sglang-omni 0.1.2+: the high 64 bits of XXH3-128 (seed 0), ``int(hexdigest[:16], 16)``."""
    return xxhash.xxh3_128_intdigest(data) >> 64


def key_pad(cache_key: str, vocab_size: int) -> int:
    """The pad of a request's modality: ``vocab_size + XXH3_64(utf-8 cache_key) mod 2^62``."""
    return vocab_size + xxhash.xxh3_64_intdigest(cache_key.encode()) % KEY_PAD_MODULUS


def hash_hex(data: Any) -> str:
    """``hash_bytes``: the 16-hex-digit XXH3-64 of a buffer."""
    return xxhash.xxh3_64_hexdigest(data)


def sampled_file_hex(head: bytes, tail: bytes, size: int) -> str:
    """``hash_file_sampled``: XXH3-64 of a file's first 8 KiB, its last 8 KiB (only when the file
    is longer than 16 KiB, else empty) and ``|size:N``."""
    return hash_hex(head + tail + f"|size:{size}".encode())


def url_part(text: str, scheme: str, url_keys: bool) -> str | None:
    """The part of a URL string: keyed by its text, except (from 0.1.8, ``url_keys`` False) an
    http/https/file URL, which gives None; only ``data:`` URLs carry their bytes."""
    return f"url:{hash_hex(text.encode())}" if url_keys or scheme == "data" else None


def typed_part(kind: str, meta: str, content: bytes | memoryview) -> str:
    """``pil:``/``np:``/``pt:`` parts: ``KIND:META:XXH3_64(content)``."""
    return f"{kind}:{meta}:{hash_hex(content)}"


def joined_key(prefix: str, parts: list[str]) -> str:
    """``compute_media_cache_key``'s result: ``PREFIX:XXH3_64('|'.join(parts))``."""
    return f"{prefix}:{hash_hex('|'.join(parts).encode('utf-8'))}"


def contextualize(base_key: str | None, **context: Any) -> str | None:
    """``contextualize_cache_key``: ``base|k=v|...`` over the sorted keys whose value is not None."""
    if base_key is None:
        return None
    extra = [f"{k}={context[k]}" for k in sorted(context) if context[k] is not None]
    return "|".join([base_key, *extra])
