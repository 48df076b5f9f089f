"""The content-hash test vectors of docs/spec.md §7.1, as data; each was computed by real SGLang.

One table for everyone who checks against the spec: the engine's tests
(``tests/test_spec_vectors.py``) and the oracle's selftest, which checks an installed real SGLang.
A value that is a ``str`` names the exception SGLang raises for that input.
"""

from __future__ import annotations

from typing import Any

#: Content hash of each spec input (:func:`inputs`) under each content scheme.
HASHES: dict[str, dict[str, int | str]] = {
    "sha256-f32": {
        "A": 6195373761911486496,
        "B7": 12325294725044462236,
        "B8": 392323221453916089,
        "M": 12329395046253440683,
        "I": 13589998309442005720,
    },
    "sha256-raw": {
        "A": 6195373761911486496,
        "B7": 16244085110033407481,
        "B8": 15551355311054656151,
        "M": 16533680723886250405,
        "I": 13589998309442005720,
    },
    "gpu-xor-int32": {"A": 1059033198886, "B8": 3060212859, "M": 5395639539, "B7": "RuntimeError"},
    "gpu-xor-int64": {
        "A": -1899298369056619034,
        "B8": 24157705902139387,
        "M": -8123164300371323469,
        "B7": "RuntimeError",
    },
    "gpu-tile-fmix32": {
        "A": 14660478606431258911,
        "B7": 7695844872513631682,
        "I": 4588543558511414631,
        "M": 17787887286460750404,
    },
}


def inputs() -> dict[str, Any]:
    """The spec's inputs by name (imports torch)."""
    import torch

    return {
        "A": torch.arange(1000, dtype=torch.float32).reshape(10, 100),
        "B7": torch.arange(7, dtype=torch.bfloat16),
        "B8": torch.arange(8, dtype=torch.bfloat16),
        "M": [torch.ones(3), torch.arange(4)],
        "I": torch.arange(20000, dtype=torch.int32),
    }
