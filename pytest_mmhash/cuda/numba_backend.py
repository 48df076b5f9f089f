"""Optional compiled backend for :mod:`.emulation`: numba kernels on every core.

numba (``pip install pytest-mmhash[fast]``) is imported only when :func:`backend` is first asked
for an input large enough to repay loading it; without numba the numpy reference is used. Blocks
run on a thread pool (the kernels release the GIL) with a bounded number in flight, so memory stays
a few blocks whatever the feature size, and a core taken by another process stalls nothing.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType

import numpy as np

from ..ints import M32

#: Inputs smaller than this use the numpy reference until numba is loaded: importing numba and
#: loading the kernels from its disk cache takes ~0.2 s, what the numpy backend (0.7-1 GB/s) needs
#: for ~150-250 MB (benchmarks/README.md, "first call" table).
MIN_BYTES = 128 << 20


def _threads() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _pool(pid: int) -> ThreadPoolExecutor:
    """One pool per process (``pid`` keys it: a forked child must not reuse its parent's)."""
    return ThreadPoolExecutor(_threads(), thread_name_prefix="mmhash")


def _readonly(words: np.ndarray) -> np.ndarray:
    """A read-only view, so that one compiled specialisation serves every block."""
    view = words.view()
    view.flags.writeable = False
    return view


class NumbaBackend:
    """The :class:`.emulation.Backend` protocol on the numba kernels (bit-exact with ``NumpyBackend``)."""

    def __init__(self, kernels: ModuleType) -> None:
        self._k = kernels

    def tile_sum(self, words: np.ndarray, start: int, nbytes_padded: int) -> int:
        """Sum mod 2^64 of the tile values of ``words`` (``start % 8192 == 0``)."""
        return int(
            self._k.tile_sum(
                _readonly(words), np.uint32(start & M32), np.uint32(nbytes_padded & M32)
            )
        )

    def xor64_sum(self, words: np.ndarray, start: int) -> int:
        """Sum mod 2^64 (as signed int64) of the gpu-xor-int64 per-word values."""
        return int(self._k.xor64_sum(_readonly(words), np.int64(start)))

    def xor32_sum(self, words: np.ndarray, start: int) -> int:
        """Exact sum of the gpu-xor-int32 per-word values."""
        return int(self._k.xor32_sum(_readonly(words), np.int64(start)))

    def sum_blocks(self, method: str, blocks: Iterator[tuple[int, np.ndarray]], *args: int) -> int:
        """Sum of ``method(words, start, *args)`` over ``blocks``, two blocks in flight per thread."""
        pool = _pool(os.getpid())
        window = 2 * _threads()
        fn = getattr(self, method)
        pending: deque[Future[int]] = deque()
        acc = 0
        for start, words in blocks:
            pending.append(pool.submit(fn, words, start, *args))
            if len(pending) > window:
                acc += pending.popleft().result()
        return acc + sum(f.result() for f in pending)


@functools.cache
def _numba_backend() -> NumbaBackend | None:
    try:
        from . import numba_kernels
    except ImportError:
        return None
    return NumbaBackend(numba_kernels)


def backend(nbytes: int = MIN_BYTES) -> NumbaBackend | None:
    """The compiled backend for an input of ``nbytes``, or ``None`` to use the numpy reference."""
    if nbytes < MIN_BYTES and not _numba_backend.cache_info().currsize:
        return None
    return _numba_backend()
