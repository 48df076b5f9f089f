"""How far this project has checked each SGLang multimodal processor class, and the registry data.

``processors.json`` lists every processor class the pinned SGLang registers (and the
architectures each serves); it is written by ``tools/sglang_processor_table.py`` from the
installed SGLang, so a new release's classes appear there as "not supported yet" until someone
checks them and adds them to :data:`STATUS`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

VERIFIED = "verified offline"
BY_READING = "by reading"
NOT_YET = "not supported yet"

#: processor class -> (status, evidence: the test that shows it, or what was read)
STATUS: dict[str, tuple[str, str]] = {
    "QwenVLImageProcessor": (
        VERIFIED,
        "Qwen2-VL, Qwen2.5-VL: tests/test_processor_oracle.py; Qwen3-VL(-MoE) image identity: "
        "tests/test_predict_identity.py",
    ),
    "Gemma3SGLangImageProcessor": (BY_READING, "base HF path, split per image on dim 0"),
    "Mllama4ImageProcessor": (BY_READING, "base HF path, split per image on dim 0"),
    "Qwen2AudioMultimodalProcessor": (BY_READING, "base HF path (audio)"),
    "LlavaImageProcessor": (
        BY_READING,
        "Pillow decode, SGLang's own expand2square/anyres, CLIP/SigLIP processor on CPU, fp16",
    ),
    "InternVLProcessor": (
        BY_READING,
        "own pipeline: normalises on the GPU, float bicubic without antialias, bf16 tiles",
    ),
    "MiniCPMMultimodalProcessor": (BY_READING, "remote-code slow processor on CPU, list feature"),
    "KimiVLImageProcessor": (BY_READING, "remote-code slow processor on CPU"),
    "KimiK2_5VLImageProcessor": (BY_READING, "hashes the GPU tensor before the CPU copy"),
    "WhisperProcessor": (BY_READING, "HF feature extractor on CPU, padding to max_length"),
}


def status(processor_class: str) -> tuple[str, str]:
    """``(status, evidence)`` of a processor class; unknown classes are not supported yet."""
    return STATUS.get(processor_class, (NOT_YET, ""))


@cache
def registry() -> dict[str, Any]:
    """The pinned SGLang's processor registry as recorded in ``processors.json``."""
    text = resources.files(__package__).joinpath("processors.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def processor_of(architecture: str) -> str | None:
    """The processor class the pinned SGLang uses for ``architecture`` (``None``: none)."""
    for entry in registry()["processors"]:
        if architecture in entry["architectures"]:
            return str(entry["class"])
    return None
