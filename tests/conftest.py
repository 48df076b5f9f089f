"""Test-suite settings: on CI (``CI`` set) Hypothesis runs the deterministic ``mmhash-ci`` profile."""

from __future__ import annotations

import os

from hypothesis import settings

import pytest_mmhash.strategies  # noqa: F401  (registers the mmhash-ci profile)

if os.environ.get("CI"):
    settings.load_profile("mmhash-ci")
