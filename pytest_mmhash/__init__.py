"""pytest-mmhash: the multimodal item hash and pad values of every SGLang release, exactly.

``hash_feature(feature, sglang_version=..., device=...)`` computes what SGLang stores for a feature
on its CPU or CUDA path, on any machine, without SGLang or a GPU. ``predict(media, model=DIR)``
says what SGLang assigns to a request's images (``mmhash predict``). See ``mmhash --help``.

The hashing names are imported on first use (PEP 562), so importing a submodule such as the pytest
plugin does not import numpy or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BadArgumentError,
    FeatureLoadError,
    FeatureTooLargeError,
    GoldenError,
    MmhashError,
    NewerReleaseError,
    NumpyFallbackWarning,
    UnhashableFeatureError,
    UnknownVersionError,
    UnreproducibleHashError,
    UnsupportedDeviceError,
)

__version__ = "0.1.0"

_LAZY = {
    "MMHash": "api",
    "hash_feature": "api",
    "pad_values": "api",
    "from_hash": "api",
    "from_mm_hash": "api",
    "from_identity": "api",
    "namespaced": "api",
    "load_feature": "loaders",
    "RELEASES": "versions",
    "NEWEST": "versions",
    "ENGINES": "engines",
    "omni_key_pad": "omni",
    "omni_media_part": "omni",
    "omni_media_cache_key": "omni",
    "omni_contextualize": "omni",
}
#: Subpackages reached as attributes; ``predict`` is a callable module (``pytest_mmhash.predict(...)``).
_SUBPACKAGES = ("predict",)
__all__ = [
    *_LAZY,
    *_SUBPACKAGES,
    "MmhashError",
    "BadArgumentError",
    "UnknownVersionError",
    "NewerReleaseError",
    "UnsupportedDeviceError",
    "FeatureLoadError",
    "FeatureTooLargeError",
    "UnhashableFeatureError",
    "UnreproducibleHashError",
    "GoldenError",
    "NumpyFallbackWarning",
]


def __getattr__(name: str) -> Any:
    """Import a hashing name's module (or a subpackage) on first use."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from .api import (
        MMHash,
        from_hash,
        from_identity,
        from_mm_hash,
        hash_feature,
        namespaced,
        pad_values,
    )
    from .engines import ENGINES
    from .loaders import load_feature
    from .omni import omni_contextualize, omni_key_pad, omni_media_cache_key, omni_media_part
    from .versions import NEWEST, RELEASES
