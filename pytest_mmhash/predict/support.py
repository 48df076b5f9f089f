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

TABLE_MARKERS = ("<!-- processor-table:start -->", "<!-- processor-table:end -->")
VERIFIED = "verified offline"
BY_READING = "by reading"
NOT_YET = "not supported yet"

#: processor class -> (status, evidence: the test that shows it, or what was read)
STATUS: dict[str, tuple[str, str]] = {
    "QwenVLImageProcessor": (
        VERIFIED,
        "Qwen2-VL, Qwen2.5-VL: tests/test_processor_oracle.py (per file, joint, both backends), "
        "tests/test_predict_oracle.py (the `mmhash predict` command on photographs used nowhere "
        "else, on our hand-written model directories and on ones transformers' `save_pretrained` "
        "writes from its defaults); "
        "Qwen3-VL(-MoE) image identity: tests/test_predict_identity.py; other architectures of "
        "this class not checked",
    ),
    "LlavaMultimodalProcessor": (
        VERIFIED,
        "LLaVA-1.5 (LlavaForConditionalGeneration): tests/test_processor_oracle.py::test_per_file",
    ),
    "Gemma3SGLangImageProcessor": (BY_READING, "base HF path, split per image on dim 0"),
    "Mllama4ImageProcessor": (BY_READING, "base HF path, split per image on dim 0"),
    "Qwen2AudioMultimodalProcessor": (
        VERIFIED,
        "Qwen2-Audio with SGLang's soundfile + torchaudio decoding (no torchcodec): "
        "tests/test_audio_oracle.py (per file, together, chat and /generate requests, on "
        "recordings pyannote-audio and pygame ship); torchcodec decoding not checked",
    ),
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
    "WhisperProcessor": (
        VERIFIED,
        "Whisper with SGLang's soundfile + torchaudio decoding (no torchcodec): "
        "tests/test_audio_oracle.py (per file on the same recordings; one audio per request); "
        "torchcodec decoding not checked",
    ),
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


def table(data: dict[str, Any]) -> str:
    """The README table: one row per processor class, then the modules that did not import."""
    counts: dict[str, int] = {}
    rows = [
        f"Every multimodal processor class registered in SGLang {data['sglang_version']} "
        f"(regenerate: `tools/sglang_processor_table.py`).",
        "",
        "| processor class | architectures | status | evidence |",
        "|---|---|---|---|",
    ]
    for p in data["processors"]:
        state, evidence = status(p["class"])
        counts[state] = counts.get(state, 0) + 1
        rows.append(f"| `{p['class']}` | {', '.join(p['architectures'])} | {state} | {evidence} |")
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    rows += ["", f"{len(data['processors'])} classes: {summary}."]
    if data["import_failed"]:
        names = ", ".join(f"`{f['module'].rsplit('.', 1)[1]}`" for f in data["import_failed"])
        rows.append(
            f"Modules that do not import on a CPU-only machine (SGLang skips them there; not "
            f"supported yet): {names}."
        )
    return "\n".join(rows)
