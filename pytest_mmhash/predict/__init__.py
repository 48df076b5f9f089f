"""Request-level prediction: what SGLang assigns to the items of a request with these media.

``predict(media, model=DIR, sglang_version=..., deployment=Deployment(...))`` returns one
:class:`ItemPrediction` per multimodal item. Also callable as ``pytest_mmhash.predict(...)``: this
module object is callable, because importing the subpackage makes ``pytest_mmhash.predict`` the
module, not the function. Nothing heavy is imported until a prediction runs.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from .predictor import Request, predict, predict_requests
from .types import Deployment, ItemPrediction, Media, ProcessedItem

__all__ = [
    "predict",
    "predict_requests",
    "Request",
    "ItemPrediction",
    "Deployment",
    "Media",
    "ProcessedItem",
]


class _CallableModule(ModuleType):
    """This module, callable as :func:`predict`."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[ItemPrediction]:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
