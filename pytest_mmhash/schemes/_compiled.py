"""Optional compiled backend for :mod:`pytest_mmhash.schemes.cuda` (filled in by the speed work)."""

from __future__ import annotations


def backend():
    """The compiled backend, or ``None`` when it is unavailable (the numpy reference is used)."""
    return None
