"""CPU-path content hashes: the first 8 bytes of SHA-256, read big-endian (docs/spec.md §4).

``sha256-f32`` and ``sha256-raw`` share this digest; they differ only in which bytes the front end
feeds it (promoted and bf16-widened vs each part's raw bytes), see :mod:`pytest_mmhash.features`.
"""

from __future__ import annotations

import hashlib

from . import ByteStream


def digest8(data: bytes | bytearray | memoryview) -> int:
    """``int.from_bytes(sha256(data)[:8], "big")``: SGLang's ``data_hash``."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def sha256_digest8(stream: ByteStream) -> int:
    """:func:`digest8` of a whole stream, fed piece by piece (no concatenation)."""
    h = hashlib.sha256()
    for piece in stream.pieces(0):  # each piece is done with once hashed
        h.update(piece)
    return int.from_bytes(h.digest()[:8], "big")
