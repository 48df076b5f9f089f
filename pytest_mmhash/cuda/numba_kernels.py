"""numba kernels for the CUDA-path schemes: the maths of :class:`.emulation.NumpyBackend`, compiled.

Imported only by :func:`.numba_backend.backend`. Each kernel handles one block on one core and
releases the GIL, so the backend runs blocks on a thread pool. Kernels compile on first call and
are cached on disk (``cache=True``: next to this file, or in ``$NUMBA_CACHE_DIR``, else numba's
per-user cache), so the compile is paid once per machine; where no cache directory is writable they
compile once per process.

numba widens integer arithmetic to 64 bits, so every 32-bit step is truncated back explicitly
(``np.uint32``/``np.int32``); LLVM narrows those operations again, so the loops vectorise.
Shifts are logical on unsigned values and arithmetic on signed ones, as in the numpy reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numba
import numpy as np

from ..ints import to_signed
from .constants import TILE_A, TILE_B, TILE_S1, TILE_S2, TILE_WORDS, XOR_K, XOR_P1, XOR_P2

_A = np.uint32(TILE_A)
_B = np.uint32(TILE_B)
_S1 = np.uint32(TILE_S1)
_S2 = np.uint32(TILE_S2)
_P1 = np.int64(to_signed(XOR_P1, 64))
_P2 = np.int64(to_signed(XOR_P2, 64))
_K = np.int64(XOR_K)
_P1_32 = np.int32(to_signed(XOR_P1, 32))
_P2_32 = np.int32(to_signed(XOR_P2, 32))
_K_32 = np.int32(to_signed(XOR_K, 32))


def _jit(
    *, inline: Literal["never", "always"] = "never", nogil: bool = False
) -> Callable[[Callable], Callable]:
    """``numba.njit(cache=True, ...)``, without the disk cache where none is writable."""

    def wrap(fn: Callable) -> Callable:
        try:
            return numba.njit(cache=True, inline=inline, nogil=nogil)(fn)
        except RuntimeError:  # "no locator available": no writable cache directory anywhere
            return numba.njit(inline=inline, nogil=nogil)(fn)

    return wrap


@_jit(inline="always")
def _fmix32(x: np.uint32) -> np.uint32:
    x = np.uint32(x ^ (x >> np.uint32(16)))
    x = np.uint32(x * np.uint32(0x85EBCA6B))
    x = np.uint32(x ^ (x >> np.uint32(13)))
    x = np.uint32(x * np.uint32(0xC2B2AE35))
    return np.uint32(x ^ (x >> np.uint32(16)))


@_jit(inline="always")
def _rotl32(x: np.uint32, r: np.uint32) -> np.uint32:
    return np.uint32((x << r) | (x >> np.uint32(np.uint32(32) - r)))


@_jit(inline="always")
def _tile_value(words: np.ndarray, lo: int, hi: int, i0: np.uint32, nb: np.uint32) -> np.uint64:
    s1 = np.uint32(0)
    s2 = np.uint32(0)
    for k in range(hi - lo):
        w = words[lo + k]
        i = np.uint32(i0 + np.uint32(k))
        m1 = np.uint32(np.uint32(i * _A + _S1) ^ _rotl32(i, np.uint32(15)))
        m2 = np.uint32(np.uint32(i * _B + _S2) ^ _rotl32(i, np.uint32(13)))
        s1 = np.uint32(s1 + _fmix32(np.uint32(w ^ m1)))
        s2 = np.uint32(s2 + _fmix32(np.uint32(w ^ m2)))
    hi32 = np.uint64(_fmix32(np.uint32(s1 ^ nb)))
    return np.uint64((hi32 << np.uint64(32)) | np.uint64(_fmix32(np.uint32(s2 ^ nb))))


@_jit(nogil=True)
def tile_sum(words: np.ndarray, start: np.uint32, nb: np.uint32) -> np.uint64:
    """Sum mod 2^64 of the tile values; ``start`` and ``nb`` already reduced mod 2^32."""
    n = words.size
    ntiles = (n + TILE_WORDS - 1) // TILE_WORDS
    acc = np.uint64(0)
    for j in range(ntiles):
        lo = j * TILE_WORDS
        i0 = np.uint32(start + np.uint32(lo))
        acc = np.uint64(acc + _tile_value(words, lo, min(lo + TILE_WORDS, n), i0, nb))
    return acc


@_jit(nogil=True)
def xor64_sum(words: np.ndarray, start: np.int64) -> np.int64:
    """Wrapping int64 sum of the gpu-xor-int64 per-word values."""
    base = np.int64(start + _P2)
    acc = np.int64(0)
    for k in range(words.size):
        x = np.int64(np.int32(words[k])) ^ np.int64(base + k)
        x = np.int64(x * _P1)
        x ^= x >> 16
        x = np.int64(x * _K)
        x ^= x >> 13
        acc += x
    return acc


@_jit(nogil=True)
def xor32_sum(words: np.ndarray, start: np.int64) -> np.int64:
    """Exact int64 sum of the gpu-xor-int32 per-word values (each in [0, 2^31))."""
    base = np.int32(np.int32(start) + _P2_32)
    acc = np.int64(0)
    for k in range(words.size):
        x = np.int32(np.int32(words[k]) ^ np.int32(base + np.int32(k)))
        x = np.int32(x * _P1_32)
        x = np.int32(x ^ (x >> 16))
        x = np.int32(x * _K_32)
        x = np.int32(x ^ (x >> 13))
        acc += x
    return acc
