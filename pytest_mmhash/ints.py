"""Fixed-width integer helpers shared by every layer: the 32/64-bit masks, two's-complement wrap,
and the 16-hex-digit form of a hash. Imports nothing."""

from __future__ import annotations

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1


def to_signed(x: int, bits: int) -> int:
    """``x`` wrapped to a two's-complement integer of ``bits`` bits."""
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def hex64(h: int) -> str:
    """``h`` as 16 hex digits: two's complement mod 2^64, so signed int64 hashes print as stored."""
    return format(h & M64, "016x")
