"""The ``identity`` method: SGLang's artifact-identity item hash for Qwen3-VL image requests.

From 0.5.20 SGLang's ``QwenVLImageProcessor`` hashes a Qwen3-VL / Qwen3-VL-MoE image-only request
without looking at pixels: ``ns-mix-v1(0, artifact_key)``, where the artifact key commits to the
media bytes, a processor fingerprint and the request's per-image options. The fingerprint payload
was read from the 0.5.20, 0.5.21, 0.5.22 and 0.5.23 wheels (``multimodal/cache/identity.py`` and
``BaseMultimodalProcessor.preprocess_fingerprint_payload`` are identical in all four) and checked
against each release's own processor (``tests/data/identity_vectors.json``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .. import versions as V
from ..schemes import pad
from .canonical import canonical_json, digest
from .errors import UnsupportedModelError
from .model import ModelDir
from .types import Deployment, Media

#: First release that hashes Qwen3-VL images by artifact identity.
FIRST = "0.5.20"
MODEL_TYPES = ("qwen3_vl", "qwen3_vl_moe")
SGLANG_PROCESSOR = "sglang.srt.multimodal.processors.qwen_vl.QwenVLImageProcessor"
HF_PROCESSORS = {"Qwen3VLProcessor": "transformers.models.qwen3_vl.processing_qwen3_vl"}
#: Per-image request options that never enter the key (``_MEDIA_ENVELOPE_FIELDS``).
ENVELOPE = frozenset({"type", "format", "url", "image", "video", "audio", "content_hash"})
#: Options whose default value is dropped (``artifact_option_defaults``).
OPTION_DEFAULTS: Mapping[str, Any] = {"detail": "auto"}


def applies(release: V.Release, model: ModelDir, media: tuple[Media, ...] | list[Media]) -> bool:
    """Whether SGLang takes the identity path for this request (image-only, Qwen3-VL, 0.5.20+)."""
    return (
        V.RELEASES.index(release.version) >= V.RELEASES.index(FIRST)
        and model.uses_identity
        and bool(media)
        and all(m.modality == "image" for m in media)
    )


def hf_processor_class(model: ModelDir) -> str:
    """The qualified class ``AutoProcessor`` builds for the model directory (SGLang's wrapper)."""
    names = {
        str(cfg["processor_class"])
        for cfg in (model.processor_config, model.preprocessor_config)
        if cfg and cfg.get("processor_class")
    } or {"Qwen3VLProcessor"}
    unknown = names - set(HF_PROCESSORS)
    if len(names) != 1 or unknown:
        raise UnsupportedModelError(
            f"{model.path}: processor_class {', '.join(sorted(names))} is not Qwen3VLProcessor; "
            f"the identity method cannot name the processor SGLang would wrap"
        )
    (name,) = names
    return f"{HF_PROCESSORS[name]}.{name}"


def fingerprint_payload(
    model: ModelDir, dep: Deployment, *, transformers_version: str, revision: str | None
) -> dict[str, Any]:
    """``build_processor_fingerprint``'s payload for the Qwen-VL processor of this deployment.

    ``dep.disable_fast_image_processor`` is the server flag as given (SGLang records it as is),
    while the backend is ``pil`` when either it or ``--image-processor-backend pil`` is set.
    """
    config = dict(dep.mm_process_config)
    backend = "pil" if dep.disable_fast_image_processor else dep.image_processor_backend
    return {
        "transformers": transformers_version,
        "processor_class": SGLANG_PROCESSOR,
        "model_type": model.config.get("model_type"),
        "architectures": model.config.get("architectures"),
        "model_revision": revision,
        "processor_revision": revision,
        "disable_fast_image_processor": dep.disable_fast_image_processor,
        "mm_process_config": config,
        "processor": {
            "wrapper_class": hf_processor_class(model),
            "gpu_image_decode": True,
            "image_processor_backend": backend,
            "feature_transport": dep.mm_feature_transport,
            "image_config": config.get("image", {}),
            "video_config": config.get("video", {}),
            "audio_config": config.get("audio", {}),
            "wrapped_processor": None,
        },
        "extra": {},
    }


def processor_fingerprint(payload: Mapping[str, Any]) -> str:
    """``sha256:`` digest of the canonical fingerprint payload."""
    return digest(canonical_json(payload))


def preprocess_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """SGLang's ``media_preprocess_kwargs``: the per-image options that enter the artifact key."""
    out = {}
    for key, value in options.items():
        if key in ENVELOPE or value is None or (isinstance(value, Mapping) and not value):
            continue
        if key in OPTION_DEFAULTS and canonical_json(value) == canonical_json(OPTION_DEFAULTS[key]):
            continue
        out[key] = value
    return out


def content_digest(data: bytes) -> str:
    """SGLang's content digest of a medium given as bytes, a path or a URL: its raw bytes' SHA-256."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def artifact_key(content: str, fingerprint: str, options: Mapping[str, Any]) -> str:
    """``build_artifact_key`` for one image with content digest ``content``."""
    payload = {
        "content_digest": content,
        "modality": "image",
        "processor_fingerprint": fingerprint,
        "preprocess_kwargs": preprocess_kwargs(options),
    }
    return digest(canonical_json(payload))


def item_hash(content: str, fingerprint: str, options: Mapping[str, Any]) -> int:
    """The item hash SGLang sets: ``ns-mix-v1(0, artifact_key)``."""
    return pad.ns_mix_v1(0, artifact_key(content, fingerprint, options))
