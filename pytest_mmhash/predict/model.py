"""A local model directory (Hugging Face layout) as prediction needs it: config, processor config.

Weights are never read. Every failure is a :class:`ModelDirError` naming the directory and file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelDirError

#: Architectures served by SGLang's ``QwenVLImageProcessor`` that hash image-only requests by
#: artifact identity (0.5.20+), when the config's model_type is one of IDENTITY_MODEL_TYPES.
IDENTITY_ARCHITECTURES = ("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration")
IDENTITY_MODEL_TYPES = ("qwen3_vl", "qwen3_vl_moe")
#: Architectures whose processors refuse client ``mm_hashes`` (``kimi_common.py``).
KIMI_PREFIX = "Kimi"


@dataclass(frozen=True)
class ModelDir:
    """What prediction reads from a model directory."""

    path: Path
    config: Mapping[str, Any]
    preprocessor_config: Mapping[str, Any] | None
    processor_config: Mapping[str, Any] | None = None

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architecture(self) -> str:
        """The first architecture: the one SGLang's processor registry matches."""
        archs = self.config.get("architectures") or [""]
        return str(archs[0])

    @property
    def uses_identity(self) -> bool:
        return (
            self.architecture in IDENTITY_ARCHITECTURES and self.model_type in IDENTITY_MODEL_TYPES
        )

    @property
    def refuses_mm_hashes(self) -> bool:
        return self.architecture.startswith(KIMI_PREFIX)


def read_model_dir(path: str | os.PathLike[str]) -> ModelDir:
    """Read ``config.json`` (required) and the processor configs (if present)."""
    root = Path(path)
    if not root.is_dir():
        raise ModelDirError(f"{root}: model directory does not exist")
    config = _read_json(root / "config.json", required=True)
    assert config is not None
    if not config.get("architectures"):
        raise ModelDirError(f"{root / 'config.json'}: has no 'architectures' list")
    return ModelDir(
        root,
        config,
        _read_json(root / "preprocessor_config.json", required=False),
        _read_json(root / "processor_config.json", required=False),
    )


def _read_json(file: Path, *, required: bool) -> dict[str, Any] | None:
    if not file.is_file():
        if required:
            raise ModelDirError(f"{file}: missing (a model directory needs it)")
        return None
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelDirError(f"{file}: not readable JSON ({e})") from None
    if not isinstance(value, dict):
        raise ModelDirError(f"{file}: expected a JSON object, got {type(value).__name__}")
    return value
