"""Pure hash and pad schemes: ``cpu`` (SHA-256 digests) and ``pad`` (hash -> pad values and hash
modifiers), plus the :class:`ByteStream` every content scheme reads (the CUDA-path schemes live in
:mod:`pytest_mmhash.cuda`, with the backends that run them).

Schemes take a :class:`ByteStream` (the feature's logical bytes, in pieces) or an int, and know
nothing about tensors, files or versions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ByteStream:
    """A feature's logical byte sequence: its total length and a way to read it in order.

    ``pieces(held)`` may be called more than once; each call yields buffers (bytes-like,
    C-contiguous) whose concatenation is the whole sequence. ``held`` is the reader's promise:
    whenever it asks for the next piece, it still uses at most the last ``held`` bytes it was
    given, so the producer may release anything older (a memory-mapped file drops those pages).
    """

    nbytes: int
    pieces: Callable[[int], Iterator[memoryview]]

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> ByteStream:
        """A stream over one in-memory buffer (not copied)."""
        view = memoryview(data).cast("B")
        return cls(view.nbytes, lambda held: iter((view,)))
