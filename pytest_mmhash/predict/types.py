"""The values request-level prediction passes around: media, deployment, processor items, results.

Plain frozen dataclasses with no behaviour beyond JSON output, so every other predict module (and
the SGLang processor runner) can share them without importing each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Modality = Literal["image", "video", "audio"]
Method = Literal["sglang-processor", "identity", "mm_hashes"]


@dataclass(frozen=True)
class Media:
    """One media item of a request: ``source`` is what the user named (a path, ``file://...`` or
    ``data:...``), ``data`` its raw bytes (SGLang hashes or decodes these bytes). ``options`` are
    the request's per-item fields besides the URL (OpenAI ``image_url.detail``,
    ``max_dynamic_patch``, ...), which SGLang puts into Qwen3-VL artifact keys."""

    source: str
    data: bytes = field(repr=False)
    modality: Modality = "image"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """The server settings that change an item's hash; ``None`` device means the release's default.

    ``env`` holds the SGLang environment variables of the server (``SGLANG_MM_BUFFER_SIZE_MB``,
    ``SGLANG_ENABLE_MM_SPLITTING``, ...); ``mm_process_config`` is ``--mm-process-config``.
    ``audio_decoder`` is what the server's SGLang decodes audio with: ``torchcodec`` where it
    imports (SGLang pins it on x86-64; it needs FFmpeg), else ``soundfile`` (+ torchaudio).
    """

    image_processor_backend: Literal["auto", "torchvision", "pil"] = "auto"
    preprocess_device: Literal["cpu", "cuda"] | None = None
    mm_feature_transport: Literal["cpu", "cuda_ipc", "cuda_vmm"] = "cpu"
    mm_process_config: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    disable_fast_image_processor: bool = False
    audio_decoder: Literal["torchcodec", "soundfile"] = "torchcodec"


@dataclass(frozen=True)
class ProcessedItem:
    """One item as SGLang's processor and ``MultimodalInputs.from_processor_output`` gave it.

    ``feature`` is ``item.feature`` as the scheduler hashes it; ``sglang_hash``/``sglang_pad_values``
    are what real SGLang set on the item (``None`` when the runner did not let SGLang hash).
    """

    modality: Modality
    feature: Any
    sglang_hash: int | None
    sglang_pad_values: tuple[int, ...] | None
    audio_decoder: str | None = None  # audio items: what SGLang decoded with here


@dataclass(frozen=True)
class ItemPrediction:
    """The hash and pad values one SGLang release assigns to one item of a request, and how sure."""

    item: int
    modality: Modality
    hash: int
    hex: str
    pad_values: tuple[int, ...]
    sglang_version: str
    method: Method
    exact: bool
    reasons: tuple[str, ...]
    feature_shape: tuple[int, ...] | None = None
    feature_dtype: str | None = None
    feature_sha256: str | None = None
    # Added after the contract (defaults keep old constructors valid):
    source: str | None = None  # the media this item came from (None for a joint multi-image item)
    hash_path: str | None = None  # "cpu"/"cuda" for hashed features, None for given hashes
    stack: Mapping[str, str] = field(default_factory=dict)  # library versions that made the feature
    engine: str = "sglang"  # the engine whose release sglang_version is (sglang-kt: a fork's)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {
            "item": self.item,
            "source": self.source,
            "modality": self.modality,
            "hash": self.hash,
            "hex": self.hex,
            "pad_values": list(self.pad_values),
            "engine": self.engine,
            "sglang_version": self.sglang_version,
            "method": self.method,
            "exact": self.exact,
            "reasons": list(self.reasons),
            "hash_path": self.hash_path,
            "feature_shape": None if self.feature_shape is None else list(self.feature_shape),
            "feature_dtype": self.feature_dtype,
            "feature_sha256": self.feature_sha256,
            "stack": dict(self.stack),
        }

    def to_json(self) -> str:
        """One JSON object (a line of ``mmhash predict --json``)."""
        return json.dumps(self.to_dict())
