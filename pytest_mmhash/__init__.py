"""pytest-mmhash: the multimodal item hash and pad values of every SGLang release, exactly.

``hash_feature(feature, sglang_version=..., device=...)`` computes what SGLang stores for a feature
on its CPU or CUDA path, on any machine, without SGLang or a GPU. See ``mmhash --help``.
"""

from __future__ import annotations

from .api import MMHash, from_hash, from_identity, from_mm_hash, hash_feature, namespaced, pad_values
from .errors import (
    BadArgumentError,
    FeatureLoadError,
    FeatureTooLargeError,
    GoldenError,
    MmhashError,
    UnhashableFeatureError,
    UnknownVersionError,
    UnreproducibleHashError,
    UnsupportedDeviceError,
)
from .loaders import load_feature
from .versions import NEWEST, RELEASES

__version__ = "0.1.0"

__all__ = [
    "MMHash",
    "hash_feature",
    "pad_values",
    "from_hash",
    "from_mm_hash",
    "from_identity",
    "namespaced",
    "load_feature",
    "RELEASES",
    "NEWEST",
    "MmhashError",
    "BadArgumentError",
    "UnknownVersionError",
    "UnsupportedDeviceError",
    "FeatureLoadError",
    "FeatureTooLargeError",
    "UnhashableFeatureError",
    "UnreproducibleHashError",
    "GoldenError",
]
