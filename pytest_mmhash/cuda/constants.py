"""The fixed numbers of SGLang's CUDA-path schemes (docs/spec.md §5.2-§5.4) and the host-side finaliser.

The leaf of :mod:`pytest_mmhash.cuda`: every backend reads its constants from here, and it imports
nothing but the integer helpers of :mod:`pytest_mmhash.ints`.
"""

from __future__ import annotations

from ..ints import M32, M64

# gpu-tile-fmix32 constants (docs/spec.md §5.4).
TILE_WORDS = 8192
TILE_S1 = 0x243F6A88
TILE_S2 = ((0x243F6A88 * 0x9E3779B1) ^ 0xDEADBEEF) & M32
TILE_A = 0x27D4EB2D
TILE_B = 0x165667B1

# gpu-xor-int64 / gpu-xor-int32 constants (docs/spec.md §5.2, §5.3): xxHash64 primes.
XOR_P1 = 0x9E3779B185EBCA87
XOR_P2 = 0xC2B2AE3D27D4EB4F
XOR_K = XOR_P1 ^ XOR_P2


def splitmix64_finalize(x: int) -> int:
    """The splitmix64 finaliser applied to the uint64 sum of tile values (docs/spec.md §5.4)."""
    x &= M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x
