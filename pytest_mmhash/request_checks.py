"""Check and record request-level golden entries (``requests.json``) with SGLang's own processor.

Recording (``--mmhash-update``) stores what real SGLang assigned: each item's ``hash`` and
``pad_values`` as its scheduler set them. Checking runs the same processor for the item features
and hashes them with this project's engine (the ``sglang-processor`` prediction method), or, with
``--mmhash-impl sglang``, compares real SGLang's own values again (the regression job).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytest_mmhash.golden.request_entries import RequestEntry, RequestGolden
from pytest_mmhash.predict.media import sniff_modality
from pytest_mmhash.predict.sglang_processor import SGLangProcessor
from pytest_mmhash.predict.types import Deployment, Media, ProcessedItem


def deployment_of(entry: RequestEntry) -> Deployment:
    """The entry's deployment settings (SGLang's CPU preprocessing: the exact case)."""
    return Deployment(preprocess_device="cpu", **entry.deployment)


def media_of(golden: RequestGolden, entry: RequestEntry) -> list[Media]:
    """The entry's media files (images, audio), read from the golden dir, as one request."""
    out = []
    for m in entry.media:
        data = (golden.root / m).read_bytes()
        out.append(Media(m, data, sniff_modality(m, data)))
    return out


class ProcessorPool:
    """One SGLang processor per (model directory, deployment), built on first use and reused."""

    def __init__(self) -> None:
        from pytest_mmhash.oracle.shims import apply_processor_shims

        apply_processor_shims()  # the golden harness runs SGLang's processor on CPU torch
        self._procs: dict[tuple[str, str], SGLangProcessor] = {}

    def get(self, model: Path, deployment: Deployment) -> SGLangProcessor:
        """The processor for this model and deployment (built once)."""
        key = (str(model), json.dumps(asdict(deployment), sort_keys=True))
        if key not in self._procs:
            self._procs[key] = SGLangProcessor(model, deployment)
        return self._procs[key]

    def close(self) -> None:
        """Close every processor built."""
        for p in self._procs.values():
            p.close()
        self._procs.clear()


def _stored(modality: str, h: int, pads: Any, shape: Any, dtype: Any, sha: Any) -> dict[str, Any]:
    """One item as stored in ``requests.json`` (``feature`` is ``None`` when none was computed)."""
    feature = None if sha is None else {"dtype": dtype, "shape": list(shape), "sha256": sha}
    return {
        "modality": modality,
        "hash": h,
        "hex": f"{h:016x}",
        "pad_values": list(pads),
        "feature": feature,
    }


def sglang_items(
    pool: ProcessorPool, golden: RequestGolden, entry: RequestEntry
) -> list[dict[str, Any]]:
    """What real SGLang assigned to the entry's items (its own hash and pads): the recorded values."""
    from pytest_mmhash.predict.predictor import feature_facts

    proc = pool.get(golden.root / entry.model, deployment_of(entry))
    out = []
    for it in proc.process(media_of(golden, entry)):
        assert it.sglang_hash is not None and it.sglang_pad_values is not None
        out.append(
            _stored(it.modality, it.sglang_hash, it.sglang_pad_values, *feature_facts(it.feature))
        )
    return out


def engine_items(
    pool: ProcessorPool, golden: RequestGolden, entry: RequestEntry, release: str
) -> list[dict[str, Any]]:
    """This project's prediction (``predict``): SGLang's processor for the features where the
    method needs one, this engine for every hash and pad."""
    from pytest_mmhash.predict.predictor import Request, predict_requests

    model = golden.root / entry.model

    def runner(requests: Any, *, model: Path, deployment: Deployment) -> list[list[ProcessedItem]]:
        proc = pool.get(model, deployment_of(entry))
        return [proc.process(r) for r in requests]

    (items,) = predict_requests(
        [Request(tuple(media_of(golden, entry)))],
        model=model,
        sglang_version=release,
        deployment=deployment_of(entry),
        runner=runner,
    )
    return [
        _stored(
            p.modality, p.hash, p.pad_values, p.feature_shape, p.feature_dtype, p.feature_sha256
        )
        for p in items
    ]


def compare(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[str]:
    """Differences between recorded and computed items, one line each (empty when equal)."""
    if len(expected) != len(got):
        return [f"{len(got)} item(s), recorded {len(expected)}"]
    lines = []
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        for key in ("modality", "hash", "pad_values"):
            if e[key] != g[key]:
                lines.append(f"item {i} {key}: got {g[key]}, recorded {e[key]}")
        if g["feature"] is not None and e["feature"] != g["feature"]:
            lines.append(
                f"item {i} feature: got {g['feature']}, recorded {e['feature']} "
                "(the processor's output changed: other transformers/torchvision/Pillow?)"
            )
    return lines
