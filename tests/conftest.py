"""Test-suite settings: the ``mmhash-ci`` Hypothesis profile (deterministic: ``derandomize=True``,
no example database, 50 examples, no deadline), loaded on CI (``CI`` set).

It is registered here, not by :mod:`pytest_mmhash.strategies`: importing a library module changes
no Hypothesis settings.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "mmhash-ci",
    derandomize=True,
    database=None,
    max_examples=50,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

if os.environ.get("CI"):
    settings.load_profile("mmhash-ci")


@pytest.fixture(scope="session")
def oracle_device() -> str:
    """Where the processor oracle tests preprocess: ``MMHASH_ORACLE_DEVICE`` (``cpu``, the default,
    or ``cuda``, which tools/gpu_check.py sets on a CUDA machine to run them on the GPU)."""
    device = os.environ.get("MMHASH_ORACLE_DEVICE", "cpu")
    if device not in ("cpu", "cuda"):
        raise pytest.UsageError(f"MMHASH_ORACLE_DEVICE={device!r}: expected cpu or cuda")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("MMHASH_ORACLE_DEVICE=cuda and torch.cuda.is_available() is False")
    return device
