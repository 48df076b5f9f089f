"""The ``identity`` method against values real SGLang's own processor set (0.5.20-0.5.23).

``tests/data/identity_vectors.json`` was written by ``tools/record_identity_vectors.py``: Qwen3-VL
and Qwen3-VL-MoE image requests on photographs scikit-image ships, six deployments, three sets of
per-image options, each release's processor run offline. These tests need no SGLang: the
transformers version the server ran is given, as ``--transformers-version`` gives it.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

import pytest_mmhash
from pytest_mmhash import api
from pytest_mmhash.predict import Deployment, Media
from pytest_mmhash.predict import identity as I
from pytest_mmhash.predict.model import read_model_dir

VECTORS = json.loads((Path(__file__).parent / "data" / "identity_vectors.json").read_text())


def _model(tmp_path: Path, v: dict[str, Any]) -> Path:
    d = tmp_path / v["model"]
    d.mkdir(exist_ok=True)
    for name, content in v["files"].items():
        (d / name).write_text(json.dumps(content))
    return d


def _deployment(v: dict[str, Any]) -> tuple[Deployment, str | None]:
    settings = dict(v["deployment"])
    revision = settings.pop("revision", None)
    return Deployment(**settings), revision


def _id(v: dict[str, Any]) -> str:
    return f"{v['sglang_version']}-{v['model']}-{v['deployment']}-{v['photo'][-14:]}-{v['options']}"


def test_the_vectors_cover_four_releases_both_models_and_differ() -> None:
    assert {v["sglang_version"] for v in VECTORS} == {"0.5.20", "0.5.21", "0.5.22", "0.5.23"}
    assert {v["model"] for v in VECTORS} == {"qwen3-vl", "qwen3-vl-moe"}
    per_release = [v["hash"] for v in VECTORS if v["sglang_version"] == "0.5.23"]
    assert len(set(per_release)) == len(per_release) == 72  # every setting changes the hash


def test_only_0_5_20_needed_flags_to_preprocess_on_cpu() -> None:
    """0.5.20 sends the fast image processor to CUDA even without it: its torchvision/auto
    deployments were recorded with the flags that move preprocessing to CPU, which the identity
    does not see (the fingerprint SGLang computed with them equals ours without them)."""
    flagged = [v for v in VECTORS if "server_args" in v]
    assert {v["sglang_version"] for v in flagged} == {"0.5.20"} and len(flagged) == 48
    assert all(
        v["server_args"] == {"rl_on_policy_target": "fsdp", "attention_backend": "triton"}
        for v in flagged
    )


@pytest.mark.parametrize("v", VECTORS, ids=_id)
def test_identity_equals_sglang(tmp_path: Path, v: dict[str, Any]) -> None:
    model = read_model_dir(_model(tmp_path, v))
    dep, revision = _deployment(v)
    payload = I.fingerprint_payload(
        model, dep, transformers_version=v["transformers_version"], revision=revision
    )
    fingerprint = I.processor_fingerprint(payload)
    assert fingerprint == v["processor_fingerprint"]
    h = I.item_hash(v["content_digest"], fingerprint, v["options"])
    item = api.from_hash(h, sglang_version=v["sglang_version"])
    assert (item.hash, list(item.pad_values)) == (v["hash"], v["pad_values"])


@pytest.mark.skipif(find_spec("skimage") is None, reason="scikit-image (the photographs) absent")
@pytest.mark.parametrize("v", [v for v in VECTORS if not v["options"]], ids=_id)
def test_predict_on_the_photograph(tmp_path: Path, v: dict[str, Any]) -> None:
    import skimage

    photo = Path(skimage.__file__).parent / "data" / v["photo"].rsplit("/", 1)[1]
    dep, revision = _deployment(v)
    (p,) = pytest_mmhash.predict(
        [Media(str(photo), photo.read_bytes())],
        model=_model(tmp_path, v),
        sglang_version=v["sglang_version"],
        deployment=dep,
        transformers_version=v["transformers_version"],
        revision=revision,
    )
    assert (p.hash, list(p.pad_values), p.method, p.exact) == (
        v["hash"],
        v["pad_values"],
        "identity",
        True,
    )


def test_0_5_20_uses_identity_and_older_releases_do_not(tmp_path: Path) -> None:
    v = VECTORS[0]
    model = read_model_dir(_model(tmp_path, v))
    media = [Media("x.png", b"png")]
    for version, expected in (("0.5.19", False), ("0.5.20", True), ("0.5.23", True)):
        release = pytest_mmhash.versions.resolve(version)
        assert I.applies(release, model, media) is expected
    assert not I.applies(release, model, [Media("v.mp4", b"mp4", "video")])


def test_unknown_hf_processor_class_is_refused(tmp_path: Path) -> None:
    v = VECTORS[0]
    d = _model(tmp_path, v)
    (d / "processor_config.json").write_text(json.dumps({"processor_class": "MyProcessor"}))
    with pytest.raises(pytest_mmhash.MmhashError, match="MyProcessor"):
        I.hf_processor_class(read_model_dir(d))
