"""CPU-path content hashes: the first 8 bytes of SHA-256, read big-endian (docs/spec.md §4).

``sha256-f32`` and ``sha256-raw`` share this digest; they differ only in which bytes the front end
feeds it (promoted and bf16-widened vs each part's raw bytes), see :mod:`pytest_mmhash.features`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import ByteStream


def digest8(data: bytes | bytearray | memoryview) -> int:
    """``int.from_bytes(sha256(data)[:8], "big")``: SGLang's ``data_hash``."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def sha256_stream(stream: ByteStream) -> Any:
    """The ``hashlib`` SHA-256 object fed a whole stream, piece by piece (no concatenation)."""
    h = hashlib.sha256()
    for piece in stream.pieces(0):  # each piece is done with once hashed
        h.update(piece)
    return h


def digest8_of(h: Any) -> int:
    """The first 8 bytes of a finished SHA-256 object, read big-endian (SGLang's ``data_hash``)."""
    return int.from_bytes(h.digest()[:8], "big")
