"""CUDA-path content hashes: bit-exact CPU emulations of SGLang's Triton kernels (docs/spec.md §5).

The bytes are read as little-endian 32-bit words in blocks (:func:`word_blocks`); each scheme sums
a per-word (``gpu-xor-*``) or per-tile (``gpu-tile-fmix32``) value with wrapping arithmetic, so
blocks can be processed in any order. The per-block maths lives in a backend: the numpy reference
below, or a compiled one (:mod:`.numba_backend`) when available.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from ..errors import UnhashableFeatureError
from ..ints import M32, to_signed
from ..schemes import ByteStream
from .constants import (
    TILE_A,
    TILE_B,
    TILE_S1,
    TILE_S2,
    TILE_WORDS,
    XOR_K,
    XOR_P1,
    XOR_P2,
    splitmix64_finalize,
)

#: Most words per block handed to a backend: a multiple of TILE_WORDS, 4 MiB of data.
BLOCK_WORDS = 128 * TILE_WORDS


class Backend(Protocol):
    """Per-block maths. ``start`` is the global index of ``words[0]``."""

    def tile_sum(self, words: np.ndarray, start: int, nbytes_padded: int) -> int:
        """Sum mod 2^64 of the tile values T[j] of the whole tiles in ``words`` (start % 8192 == 0)."""

    def xor64_sum(self, words: np.ndarray, start: int) -> int:
        """Sum mod 2^64 of the gpu-xor-int64 per-word values."""

    def xor32_sum(self, words: np.ndarray, start: int) -> int:
        """Exact (unbounded) sum of the gpu-xor-int32 per-word values."""

    def block_words(self, most: int) -> int:
        """Words per block this backend wants: a multiple of TILE_WORDS, at most ``most``."""

    def held_bytes(self, block_words: int) -> int:
        """Bytes of earlier blocks it may still be reading when it takes the next block."""

    def sum_blocks(self, method: str, blocks: Iterator[tuple[int, np.ndarray]], *args: int) -> int:
        """Sum of ``method(words, start, *args)`` over ``blocks`` (any order, any concurrency)."""


def _fmix32(x: np.ndarray) -> np.ndarray:
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def _rotl32(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


class NumpyBackend:
    """Reference backend: vectorised numpy, one block at a time (wrapping integer arithmetic)."""

    def tile_sum(self, words: np.ndarray, start: int, nbytes_padded: int) -> int:
        n = words.size
        i = np.arange(start, start + n, dtype=np.uint64).astype(np.uint32)  # index mod 2^32
        k1 = _fmix32(words ^ ((i * np.uint32(TILE_A) + np.uint32(TILE_S1)) ^ _rotl32(i, 15)))
        k2 = _fmix32(words ^ ((i * np.uint32(TILE_B) + np.uint32(TILE_S2)) ^ _rotl32(i, 13)))
        bounds = np.arange(0, n, TILE_WORDS)
        nb = np.uint32(nbytes_padded & M32)
        s1 = (np.add.reduceat(k1, bounds, dtype=np.uint64) & np.uint64(M32)).astype(np.uint32)
        s2 = (np.add.reduceat(k2, bounds, dtype=np.uint64) & np.uint64(M32)).astype(np.uint32)
        t = (_fmix32(s1 ^ nb).astype(np.uint64) << np.uint64(32)) | _fmix32(s2 ^ nb).astype(
            np.uint64
        )
        return int(t.sum(dtype=np.uint64))

    def xor64_sum(self, words: np.ndarray, start: int) -> int:
        n = words.size
        x = words.view(np.int32).astype(np.int64)
        x ^= np.arange(start, start + n, dtype=np.int64) + np.int64(to_signed(XOR_P2, 64))
        x *= np.int64(to_signed(XOR_P1, 64))
        x ^= x >> np.int64(16)
        x *= np.int64(XOR_K)
        x ^= x >> np.int64(13)
        return int(x.sum(dtype=np.int64))

    def xor32_sum(self, words: np.ndarray, start: int) -> int:
        n = words.size
        i = np.arange(start, start + n, dtype=np.int64).astype(np.int32)
        x = words.view(np.int32) ^ (i + np.int32(to_signed(XOR_P2, 32)))
        x *= np.int32(to_signed(XOR_P1, 32))
        x ^= x >> np.int32(16)
        x *= np.int32(to_signed(XOR_K, 32))
        x ^= x >> np.int32(13)
        return int(x.sum(dtype=np.int64))

    def block_words(self, most: int) -> int:
        """The largest blocks: one at a time, so only the temporaries of one block are alive."""
        return most

    def held_bytes(self, block_words: int) -> int:
        """Nothing: each block is done before the next one is taken."""
        return 0

    def sum_blocks(self, method: str, blocks: Iterator[tuple[int, np.ndarray]], *args: int) -> int:
        """Sum of ``method(words, start, *args)`` over ``blocks``, one after the other."""
        fn = getattr(self, method)
        return sum(fn(words, start, *args) for start, words in blocks)


def _backend(nbytes: int) -> Backend:
    from . import numba_backend

    return numba_backend.backend(nbytes) or NumpyBackend()


def _sum(method: str, stream: ByteStream, *args: int) -> int:
    """``method`` summed over the stream's blocks, as large as the backend wants them (at most
    ``BLOCK_WORDS``), the stream told how many bytes the backend keeps in flight."""
    backend = _backend(stream.nbytes)
    words = backend.block_words(BLOCK_WORDS)
    return backend.sum_blocks(method, word_blocks(stream, words, backend.held_bytes(words)), *args)


def word_blocks(
    stream: ByteStream, block_words: int = BLOCK_WORDS, held: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_word, uint32 words)`` covering the stream, zero-padded to whole words.

    Every block but the last holds exactly ``block_words`` words; aligned pieces are viewed in
    place, and only bytes that straddle a block boundary are copied into a bounded carry buffer.
    ``held``: bytes of blocks already yielded that the consumer may still read (see
    :class:`ByteStream`).
    """
    block_bytes = 4 * block_words
    carry = bytearray()
    start = 0
    for piece in stream.pieces(held):
        view = memoryview(piece).cast("B")
        if carry:
            take = min(block_bytes - len(carry), view.nbytes)
            carry += view[:take]
            view = view[take:]
            if len(carry) < block_bytes:
                continue
            yield start, np.frombuffer(bytes(carry), dtype="<u4")
            start += block_words
            carry = bytearray()
        whole = view.nbytes // block_bytes * block_bytes
        for off in range(0, whole, block_bytes):
            yield start, np.frombuffer(view[off : off + block_bytes], dtype="<u4")
            start += block_words
        carry += view[whole:]
    if carry:
        carry += b"\0" * (-len(carry) % 4)
        yield start, np.frombuffer(bytes(carry), dtype="<u4")


def gpu_tile_fmix32(stream: ByteStream) -> int:
    """``gpu-tile-fmix32`` (0.5.1+): unsigned 64-bit; an empty input gives 0 (no finaliser)."""
    if stream.nbytes == 0:
        return 0
    padded = stream.nbytes + (-stream.nbytes % 4)
    return splitmix64_finalize(_sum("tile_sum", stream, padded))


def require_whole_words(nbytes: int, scheme: str) -> None:
    """Refuse what SGLang's int kernels refuse: a byte count that is not a multiple of 4."""
    if nbytes % 4:
        raise UnhashableFeatureError(
            f"{scheme}: the feature has {nbytes} bytes, not a multiple of 4; SGLang's "
            f"kernel launch raises RuntimeError in view(torch.int32)"
        )


def gpu_xor_int64(stream: ByteStream) -> int:
    """``gpu-xor-int64`` (0.4.7-0.4.10.post2): a wrapping int64 sum, returned signed."""
    require_whole_words(stream.nbytes, "gpu-xor-int64")
    return to_signed(_sum("xor64_sum", stream), 64)


def gpu_xor_int32(stream: ByteStream) -> int:
    """``gpu-xor-int32`` (0.4.6.post5, Triton 3.2.0 semantics): int32 words, summed into int64."""
    require_whole_words(stream.nbytes, "gpu-xor-int32")
    return to_signed(_sum("xor32_sum", stream), 64)
