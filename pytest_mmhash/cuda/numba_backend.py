"""The compiled backend of :mod:`.emulation` (the default): numba kernels on every core.

numba is imported only when :func:`backend` is first asked for an input large enough to repay
loading it. Where numba cannot be imported the numpy reference is used, and a
:class:`~pytest_mmhash.errors.NumpyFallbackWarning` says so once per process. Blocks run on a
thread pool (the kernels release the GIL), two per worker in flight; blocks shrink as workers grow,
so the bytes in flight (what a streamed file must keep resident) stay under ``IN_FLIGHT_BYTES``
on any core count, and a core taken by another process stalls nothing.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType

import numpy as np

from ..errors import BadArgumentError, NumpyFallbackWarning, first_line
from ..ints import M32
from .constants import TILE_WORDS

#: Inputs smaller than this use the numpy reference until numba is loaded: importing numba and
#: loading the kernels from its disk cache takes ~0.2 s, what the numpy backend (0.7-1 GB/s) needs
#: for ~150-250 MB (benchmarks/README.md, "first call" table).
MIN_BYTES = 128 << 20
#: Blocks queued per worker thread, so that no worker waits for its next block.
BLOCKS_PER_WORKER = 2
#: Bytes of blocks in flight at most, whatever the number of workers.
IN_FLIGHT_BYTES = 16 << 20
#: Workers at most: each needs its blocks of at least one tile in flight.
MAX_WORKERS = IN_FLIGHT_BYTES // (BLOCKS_PER_WORKER * 4 * TILE_WORDS)

_LOAD = threading.Lock()


def workers() -> int:
    """Worker threads: ``$MMHASH_THREADS`` when set, else the CPUs this process may run on."""
    given = os.environ.get("MMHASH_THREADS", "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise BadArgumentError(f"MMHASH_THREADS={given!r}: not a positive integer")
        n = int(given)
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count() or 1
    return min(n, MAX_WORKERS)


@functools.cache
def _pool(pid: int, threads: int) -> ThreadPoolExecutor:
    """One pool per process and size (``pid`` keys it: a forked child must not reuse its parent's)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="mmhash")


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

    def block_words(self, most: int) -> int:
        """Words per block: ``most`` or fewer (whole tiles), so the window fits ``IN_FLIGHT_BYTES``."""
        fit = IN_FLIGHT_BYTES // (4 * BLOCKS_PER_WORKER * workers()) // TILE_WORDS * TILE_WORDS
        return max(TILE_WORDS, min(most, fit))

    def held_bytes(self, block_words: int) -> int:
        """Bytes of earlier blocks still being read when the next one is taken: the window of
        ``BLOCKS_PER_WORKER`` blocks per worker, plus the partial block a reader carries."""
        return (BLOCKS_PER_WORKER * workers() + 1) * 4 * block_words

    def sum_blocks(self, method: str, blocks: Iterator[tuple[int, np.ndarray]], *args: int) -> int:
        """Sum of ``method(words, start, *args)`` over ``blocks``, ``BLOCKS_PER_WORKER`` per worker
        in flight."""
        threads = workers()
        pool = _pool(os.getpid(), threads)
        window = BLOCKS_PER_WORKER * threads
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
    """The numba backend, or ``None`` (with a warning, once) where numba cannot be imported."""
    try:
        from . import numba_kernels
    except ImportError as e:
        warnings.warn(
            f"numba cannot be imported ({first_line(e)}); the CUDA-path emulation runs on the "
            f"numpy fallback: the same values, 5-40x slower (pip install numba)",
            NumpyFallbackWarning,
            stacklevel=2,
        )
        return None
    return NumbaBackend(numba_kernels)


def backend(nbytes: int = MIN_BYTES) -> NumbaBackend | None:
    """The compiled backend for an input of ``nbytes``, or ``None`` to use the numpy reference."""
    if nbytes < MIN_BYTES and not _numba_backend.cache_info().currsize:
        return None
    with _LOAD:  # one import attempt, so one warning, when threads hash files at once
        return _numba_backend()
