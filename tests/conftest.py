"""Test-suite settings: the ``mmhash-ci`` Hypothesis profile (deterministic: ``derandomize=True``,
no example database, 50 examples, no deadline), loaded on CI (``CI`` set).

It is registered here, not by :mod:`pytest_mmhash.strategies`: importing a library module changes
no Hypothesis settings.
"""

from __future__ import annotations

import os

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
