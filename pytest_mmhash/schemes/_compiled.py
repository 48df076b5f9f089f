"""Optional compiled backend for :mod:`pytest_mmhash.schemes.cuda`: numba kernels on every core.

Nothing here imports numba until :func:`backend` is first called with an input large enough to
repay it; without numba (``pip install pytest-mmhash[fast]``) the numpy reference is used.
"""

from __future__ import annotations

import functools
from types import ModuleType

import numpy as np

#: Inputs smaller than this use the numpy reference: numba's import and first call (even from its
#: on-disk cache) cost more than the numpy backend needs for them (benchmarks/README.md).
MIN_BYTES = 8 << 20

M32 = (1 << 32) - 1


class NumbaBackend:
    """The :class:`cuda.Backend` protocol on the numba kernels (bit-exact with ``NumpyBackend``)."""

    def __init__(self, kernels: ModuleType) -> None:
        self._k = kernels

    def tile_sum(self, words: np.ndarray, start: int, nbytes_padded: int) -> int:
        """Sum mod 2^64 of the tile values of ``words`` (``start % 8192 == 0``)."""
        return int(self._k.tile_sum(words, np.uint32(start & M32), np.uint32(nbytes_padded & M32)))

    def xor64_sum(self, words: np.ndarray, start: int) -> int:
        """Sum mod 2^64 (as signed int64) of the gpu-xor-int64 per-word values."""
        return int(self._k.xor64_sum(words, np.int64(start)))

    def xor32_sum(self, words: np.ndarray, start: int) -> int:
        """Exact sum of the gpu-xor-int32 per-word values."""
        return int(self._k.xor32_sum(words, np.int64(start)))


@functools.cache
def _numba_backend() -> NumbaBackend | None:
    try:
        from . import _kernels
    except ImportError:
        return None
    return NumbaBackend(_kernels)


def backend(nbytes: int = MIN_BYTES) -> NumbaBackend | None:
    """The compiled backend for an input of ``nbytes``, or ``None`` to use the numpy reference."""
    return _numba_backend() if nbytes >= MIN_BYTES else None
