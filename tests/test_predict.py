"""Request-level prediction with a stand-in processor runner: method choice, deployment, exactness.

The real processor path (SGLang's own processor) is checked against real SGLang in the oracle
tests; here the runner is replaced so that what ``predict`` does with its output is pinned.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import pytest_mmhash
from pytest_mmhash import api
from pytest_mmhash.errors import UnhashableFeatureError, UnreproducibleHashError
from pytest_mmhash.predict import Deployment, Media, ProcessedItem, Request, predict_requests
from pytest_mmhash.predict.errors import (
    BadDeploymentError,
    MediaError,
    ModelDirError,
    RefusedHashesError,
)
from pytest_mmhash.predict.media import read_media

JPEG = b"\xff\xd8" + b"not really a jpeg" + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"payload"


def model_dir(tmp_path: Path, arch: str, model_type: str) -> Path:
    d = tmp_path / arch
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": [arch], "model_type": model_type}))
    return d


@pytest.fixture
def qwen2(tmp_path: Path) -> Path:
    return model_dir(tmp_path, "Qwen2VLForConditionalGeneration", "qwen2_vl")


class FakeRunner:
    """One float32 feature per medium (values from the bytes), as SGLang's per-image items."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[tuple[Media, ...]], Deployment]] = []

    def __call__(self, requests, *, model, deployment):
        self.calls.append((list(requests), deployment))
        return [
            [
                ProcessedItem(
                    m.modality,
                    torch.tensor(list(m.data), dtype=torch.float32).reshape(1, -1),
                    None,
                    None,
                )
                for m in request
            ]
            for request in requests
        ]


def test_processor_items_are_hashed_by_the_engine_at_the_release(qwen2: Path) -> None:
    runner = FakeRunner()
    media = [Media("a.png", PNG), Media("b.png", PNG + b"2")]
    items = pytest_mmhash.predict(
        media,
        model=qwen2,
        sglang_version="0.5.23",
        deployment=Deployment(preprocess_device="cpu"),
        runner=runner,
    )
    assert [i.item for i in items] == [0, 1]
    assert [i.source for i in items] == ["a.png", "b.png"]
    for item, m in zip(items, media, strict=True):
        feature = torch.tensor(list(m.data), dtype=torch.float32).reshape(1, -1)
        want = api.hash_feature(feature, sglang_version="0.5.23")
        assert (item.hash, item.pad_values, item.hex) == (want.hash, want.pad_values, want.hex)
        assert item.method == "sglang-processor" and item.exact
        assert item.feature_shape == (1, len(m.data)) and item.feature_dtype == "float32"
        assert item.hash_path == "cpu"
    # the runner got one request and the resolved deployment
    assert len(runner.calls) == 1 and runner.calls[0][1].preprocess_device == "cpu"


@pytest.mark.parametrize(
    "feature",
    [
        torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),  # not contiguous
        torch.arange(12, dtype=torch.bfloat16).reshape(3, 4),
        np.arange(6, dtype=">f4"),  # stored bytes, not native ones
    ],
    ids=["f32-transposed", "bf16", "numpy-big-endian"],
)
@pytest.mark.parametrize("version", ["0.5.23", "0.4.10"])  # sha256-raw; sha256-f32 (bf16 widened)
def test_feature_sha256_is_of_the_raw_bytes_whatever_the_hash_path(
    qwen2: Path, feature, version: str
) -> None:
    """The reported feature digest is SHA-256 of the raw C-order bytes; on sha256-raw it is the
    digest the hash came from (computed once), and a release that hashes other bytes does not
    lend it its digest."""
    import hashlib

    def runner(requests, *, model, deployment):
        return [[ProcessedItem("image", feature, None, None)] for _ in requests]

    if isinstance(feature, np.ndarray):
        raw = np.ascontiguousarray(feature).tobytes()
    else:
        raw = feature.contiguous().view(torch.uint8).numpy().tobytes()
    (item,) = pytest_mmhash.predict(
        [Media("a.png", PNG)], model=qwen2, sglang_version=version,
        deployment=Deployment(preprocess_device="cpu"), runner=runner,
    )  # fmt: skip
    assert item.feature_sha256 == hashlib.sha256(raw).hexdigest()
    want = api.hash_feature(feature, sglang_version=version, device="cpu")
    assert item.hash == want.hash
    if want.hash_scheme == "sha256-raw":
        assert want.content_sha256 == item.feature_sha256
        assert int(item.feature_sha256[:16], 16) == want.hash


def test_default_device_on_a_cpu_machine_is_not_exact_and_says_why(qwen2: Path) -> None:
    (item,) = pytest_mmhash.predict(
        [Media("a.jpg", JPEG)], model=qwen2, sglang_version="0.5.23", runner=FakeRunner()
    )
    assert not item.exact
    text = " ".join(item.reasons)
    assert "fast (torchvision) image processor" in text and "nvJPEG" in text
    assert "--preprocess-device cpu" in text


def test_pil_backend_without_jpeg_is_exact_but_jpeg_is_not(qwen2: Path) -> None:
    dep = Deployment(image_processor_backend="pil")
    kw = {"model": qwen2, "sglang_version": "0.5.23", "deployment": dep, "runner": FakeRunner()}
    (png,) = pytest_mmhash.predict([Media("a.png", PNG)], **kw)
    (jpg,) = pytest_mmhash.predict([Media("a.jpg", JPEG)], **kw)
    assert png.exact and not jpg.exact
    # 0.5.9 decodes with Pillow only: a JPEG with the slow processor is reproducible there
    (old,) = pytest_mmhash.predict([Media("a.jpg", JPEG)], **{**kw, "sglang_version": "0.5.9"})
    assert old.exact


def test_feature_transport_and_buffer_select_the_gpu_path(qwen2: Path) -> None:
    media = [Media("a.png", PNG), Media("b.png", PNG * 20000)]
    feats = [torch.tensor(list(m.data), dtype=torch.float32).reshape(1, -1) for m in media]
    kw = {"model": qwen2, "sglang_version": "0.5.23", "runner": FakeRunner()}
    ipc = pytest_mmhash.predict(
        media, deployment=Deployment(preprocess_device="cpu", mm_feature_transport="cuda_ipc"), **kw
    )
    assert [i.hash_path for i in ipc] == ["cuda", "cuda"]
    assert ipc[0].hash == api.hash_feature(feats[0], sglang_version="0.5.23", device="cuda").hash
    # SGLANG_MM_BUFFER_SIZE_MB is an int (EnvInt), as in sglang
    small = Deployment(preprocess_device="cpu", env={"SGLANG_MM_BUFFER_SIZE_MB": "0.5"})
    with pytest.raises(BadDeploymentError, match="SGLANG_MM_BUFFER_SIZE_MB"):
        pytest_mmhash.predict(media, deployment=small, **kw)
    # a 1 MiB float32 buffer (262144 elements) holds the first feature, not the 300000-element one
    buf = Deployment(preprocess_device="cpu", env={"SGLANG_MM_BUFFER_SIZE_MB": "1"})
    assert [i.hash_path for i in pytest_mmhash.predict(media, deployment=buf, **kw)] == [
        "cuda",
        "cpu",
    ]


def test_skip_compute_hash_is_unreproducible(qwen2: Path) -> None:
    dep = Deployment(env={"SGLANG_MM_SKIP_COMPUTE_HASH": "1"})
    with pytest.raises(UnreproducibleHashError, match="uuid4"):
        pytest_mmhash.predict(
            [Media("a.png", PNG)], model=qwen2, deployment=dep, runner=FakeRunner()
        )


def test_unknown_env_is_refused(qwen2: Path) -> None:
    with pytest.raises(BadDeploymentError, match="SGLANG_NOPE"):
        pytest_mmhash.predict(
            [Media("a.png", PNG)],
            model=qwen2,
            deployment=Deployment(env={"SGLANG_NOPE": "1"}),
            runner=FakeRunner(),
        )


def test_mm_hashes_set_the_hash_and_the_pads_follow(qwen2: Path) -> None:
    runner = FakeRunner()
    items = pytest_mmhash.predict(
        [Media("a.png", PNG), Media("b.png", PNG)],
        model=qwen2,
        sglang_version="0.5.23",
        mm_hashes=["ff", "0123456789abcdef"],
        runner=runner,
    )
    assert not runner.calls  # no processor needed
    for item, text in zip(items, ["ff", "0123456789abcdef"], strict=True):
        want = api.from_mm_hash(text, sglang_version="0.5.23")
        assert (item.hash, item.pad_values) == (want.hash, want.pad_values)
        assert item.method == "mm_hashes" and item.exact


def test_mm_hashes_count_mismatch_is_ignored_like_sglang(qwen2: Path) -> None:
    (item,) = pytest_mmhash.predict(
        [Media("a.png", PNG)],
        model=qwen2,
        sglang_version="0.5.23",
        deployment=Deployment(preprocess_device="cpu"),
        mm_hashes=["ff", "ee"],
        runner=FakeRunner(),
    )
    assert item.method == "sglang-processor"
    assert "ignores the request's mm_hashes: 2 given for 1 items" in item.reasons[0]


def test_mm_hashes_refused_by_old_releases_and_kimi(tmp_path: Path, qwen2: Path) -> None:
    with pytest.raises(RefusedHashesError, match="0.5.13"):
        pytest_mmhash.predict(
            [Media("a.png", PNG)], model=qwen2, sglang_version="0.5.9", mm_hashes=["ff"]
        )
    kimi = model_dir(tmp_path, "KimiK25ForConditionalGeneration", "kimi_k25")
    with pytest.raises(UnhashableFeatureError, match="Kimi"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=kimi, mm_hashes=["ff"])
    with pytest.raises(pytest_mmhash.BadArgumentError, match="not hex"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=qwen2, mm_hashes=["zz"])


def test_many_requests_run_the_processor_once(qwen2: Path) -> None:
    runner = FakeRunner()
    requests = [Request((Media(f"{i}.png", PNG + bytes([i])),)) for i in range(3)]
    out = predict_requests(requests, model=qwen2, sglang_version="0.5.23", runner=runner)
    assert len(runner.calls) == 1 and len(runner.calls[0][0]) == 3
    assert [[i.source for i in items] for items in out] == [["0.png"], ["1.png"], ["2.png"]]


def test_a_lazy_runner_is_hashed_as_it_goes_with_bounded_memory(qwen2: Path) -> None:
    """Items are hashed while the runner makes the next request's, in request order, and only a
    few requests' features are alive at once (not every request's, however many there are)."""
    import weakref

    from pytest_mmhash.predict.predictor import HASH_QUEUE

    alive: list[weakref.ref] = []
    peak: list[int] = []

    def lazy(requests, *, model, deployment):
        for k, _ in enumerate(requests):
            peak.append(sum(ref() is not None for ref in alive))
            feature = torch.full((1, 4096), float(k))
            alive.append(weakref.ref(feature))
            yield [ProcessedItem("image", feature, None, None)]

    requests = [Request((Media(f"{i}.png", PNG),)) for i in range(12)]
    out = predict_requests(requests, model=qwen2, sglang_version="0.5.23", runner=lazy)
    assert [items[0].source for items in out] == [f"{i}.png" for i in range(12)]
    for k, items in enumerate(out):
        want = api.hash_feature(torch.full((1, 4096), float(k)), sglang_version="0.5.23")
        assert items[0].hash == want.hash
    assert max(peak) <= HASH_QUEUE + 1


def test_a_runner_failing_half_way_is_one_error_and_is_closed(qwen2: Path) -> None:
    from pytest_mmhash.predict.errors import ProcessorFailedError

    closed = []

    def failing(requests, *, model, deployment):
        try:
            for k, r in enumerate(requests):
                if k == 2:
                    raise RuntimeError("decoder exploded\n  deep traceback")
                yield [ProcessedItem("image", torch.zeros(4), None, None) for _ in r]
        finally:
            closed.append(True)

    requests = [Request((Media(f"{i}.png", PNG),)) for i in range(5)]
    with pytest.raises(ProcessorFailedError, match=r"\(RuntimeError: decoder exploded\)$"):
        predict_requests(requests, model=qwen2, sglang_version="0.5.23", runner=failing)
    assert closed == [True]


def test_a_joint_item_has_no_single_source(qwen2: Path) -> None:
    def joint(requests, *, model, deployment):
        return [[ProcessedItem("image", np.arange(4, dtype=np.float32), None, None)]]

    (item,) = pytest_mmhash.predict(
        [Media("a.png", PNG), Media("b.png", PNG)],
        model=qwen2,
        sglang_version="0.5.9",
        runner=joint,
    )
    assert item.source is None and item.feature_shape == (4,)


def test_to_json_has_every_field(qwen2: Path) -> None:
    (item,) = pytest_mmhash.predict(
        [Media("a.png", PNG)], model=qwen2, sglang_version="0.5.23", runner=FakeRunner()
    )
    record = json.loads(item.to_json())
    for key in ("item", "modality", "hash", "hex", "pad_values", "sglang_version", "method"):
        assert key in record
    assert record["exact"] is False and record["reasons"]
    assert set(record["stack"]) >= {"torch"}


# --- media and model directories -------------------------------------------------------------


def test_media_from_path_file_url_and_data_url(tmp_path: Path) -> None:
    f = tmp_path / "x y.png"
    f.write_bytes(PNG)
    assert read_media(str(f)).data == PNG
    assert read_media("file://" + str(f).replace(" ", "%20")).data == PNG
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    m = read_media(url)
    assert m.data == PNG and m.source == url


@pytest.mark.parametrize(
    ("name", "head", "modality"),
    [
        ("a.bin", b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio"),
        ("a.bin", b"fLaC\x00\x00\x00\x22", "audio"),
        ("a.bin", b"OggS\x00\x02", "audio"),
        ("a.bin", b"ID3\x04\x00", "audio"),
        ("broken.WAV", b"not audio at all", "audio"),  # the name says audio: an audio error
        ("a.bin", PNG[:16], "image"),
        ("a.wav.png", PNG[:16], "image"),
    ],
)
def test_audio_is_told_by_its_bytes_or_name(
    tmp_path: Path, name: str, head: bytes, modality: str
) -> None:
    f = tmp_path / name
    f.write_bytes(head)
    assert read_media(str(f)).modality == modality
    assert read_media(str(f), "image").modality == "image"  # a request's part type wins
    url = "data:audio/x-wav;base64," + base64.b64encode(b"\x00\x01").decode()
    assert read_media(url).modality == "audio"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("https://example.com/a.png", "remote URLs are never fetched"),
        ("data:image/png;base64,@@@", "not valid base64"),
        ("data:image/png,abc", "only base64"),
        ("data:image/png;base64,", "empty"),
        ("file://otherhost/a.png", "another host"),
        ("/nonexistent/a.png", "cannot read it"),
    ],
)
def test_bad_media_are_one_line_errors(source: str, message: str) -> None:
    with pytest.raises(MediaError, match=message) as e:
        read_media(source)
    assert "\n" not in str(e.value)


def test_model_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="does not exist"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=tmp_path / "nope")
    with pytest.raises(ModelDirError, match="config.json: missing"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="not readable JSON"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelDirError, match="architectures"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=tmp_path)


def test_processor_files_either_layout(tmp_path: Path) -> None:
    """transformers 5's save_pretrained nests the image processor in processor_config.json."""
    from pytest_mmhash.predict.sglang_processor import check_model_dir

    (tmp_path / "config.json").write_text('{"architectures": ["Qwen2VLForConditionalGeneration"]}')
    (tmp_path / "tokenizer_config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelDirError, match="preprocessor_config.json: missing, and no processor"):
        check_model_dir(tmp_path)
    (tmp_path / "processor_config.json").write_text('{"processor_class": "Qwen2VLProcessor"}')
    with pytest.raises(ModelDirError, match="with an 'image_processor'"):
        check_model_dir(tmp_path)
    (tmp_path / "processor_config.json").write_text('{"image_processor": {"patch_size": 14}}')
    assert check_model_dir(tmp_path).processor_config == {"image_processor": {"patch_size": 14}}
    (tmp_path / "processor_config.json").unlink()
    (tmp_path / "preprocessor_config.json").write_text('{"patch_size": 14}')
    assert check_model_dir(tmp_path).preprocessor_config == {"patch_size": 14}
    (tmp_path / "tokenizer_config.json").unlink()
    with pytest.raises(ModelDirError, match="tokenizer_config.json: missing"):
        check_model_dir(tmp_path)


# --- processor coverage and the cross-check against SGLang's own hash ------------------------


def test_the_readme_table_is_generated_from_the_recorded_registry() -> None:
    from pytest_mmhash.predict import support

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start, end = support.TABLE_MARKERS
    block = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == support.table(support.registry())
    registered = {p["class"] for p in support.registry()["processors"]}
    assert set(support.STATUS) <= registered  # every status names a class SGLang registers
    assert support.processor_of("Qwen2VLForConditionalGeneration") == "QwenVLImageProcessor"


def test_unchecked_processor_classes_are_not_exact(tmp_path: Path) -> None:
    kw = {"sglang_version": "0.5.23", "runner": FakeRunner()}
    dep = Deployment(preprocess_device="cpu")
    glm = model_dir(tmp_path, "Glm4vForConditionalGeneration", "glm4v")
    (item,) = pytest_mmhash.predict([Media("a.png", PNG)], model=glm, deployment=dep, **kw)
    assert not item.exact and "Glm4vImageProcessor is not yet checked" in " ".join(item.reasons)
    odd = model_dir(tmp_path, "MadeUpForConditionalGeneration", "made_up")
    (item,) = pytest_mmhash.predict([Media("a.png", PNG)], model=odd, deployment=dep, **kw)
    assert not item.exact and "not in the processor registry" in " ".join(item.reasons)


def test_a_hash_sglang_set_itself_is_reported_not_exact(qwen2: Path) -> None:
    def own_hash(requests, *, model, deployment):
        return [[ProcessedItem("image", np.arange(4, dtype=np.float32), 12345, (1,))]]

    (item,) = pytest_mmhash.predict(
        [Media("a.png", PNG)],
        model=qwen2,
        sglang_version="0.5.23",
        deployment=Deployment(preprocess_device="cpu"),
        runner=own_hash,
    )
    assert not item.exact and "sglang set this item's hash to 12345 itself" in item.reasons[-1]
    # and a matching hash keeps it exact
    h = api.hash_feature(np.arange(4, dtype=np.float32), sglang_version="0.5.23").hash

    def same(requests, *, model, deployment):
        return [[ProcessedItem("image", np.arange(4, dtype=np.float32), h, (1,))]]

    (item,) = pytest_mmhash.predict(
        [Media("a.png", PNG)],
        model=qwen2,
        sglang_version="0.5.23",
        deployment=Deployment(preprocess_device="cpu"),
        runner=same,
    )
    assert item.exact


def test_sglang_kt_predicts_with_upstream_0_5_9s_processors(qwen2: Path) -> None:
    """sglang-kt's multimodal processors are upstream 0.5.9's: its predictions are 0.5.9's values,
    defaults and exactness, labelled with the kt release and saying why."""
    media = [Media("a.jpg", JPEG), Media("b.png", PNG)]
    kw = {"model": qwen2, "runner": FakeRunner()}
    kt = pytest_mmhash.predict(media, engine="sglang-kt", sglang_version="0.7.2", **kw)
    up = pytest_mmhash.predict(media, sglang_version="0.5.9", **kw)
    assert [(i.hash, i.pad_values, i.exact, i.hash_path, i.reasons[1:]) for i in kt] == [
        (i.hash, i.pad_values, i.exact, i.hash_path, i.reasons) for i in up
    ]
    assert {(i.engine, i.sglang_version) for i in kt} == {("sglang-kt", "0.7.2")}
    assert {(i.engine, i.sglang_version) for i in up} == {("sglang", "0.5.9")}
    assert (
        kt[0]
        .reasons[0]
        .startswith("sglang-kt 0.7.2 runs upstream sglang 0.5.9's multimodal processors")
    )
    assert kt[0].to_dict()["engine"] == "sglang-kt"
    with pytest.raises(
        RefusedHashesError, match="sglang-kt 0.7.2 handles requests as sglang 0.5.9"
    ):
        pytest_mmhash.predict(
            [Media("a.png", PNG)],
            mm_hashes=["ab"],
            engine="sglang-kt",
            sglang_version="0.7.2",
            **kw,
        )


def test_sglang_omni_is_refused_in_one_line(qwen2: Path, tmp_path: Path, capsys) -> None:
    from pytest_mmhash.cli import main
    from pytest_mmhash.errors import BadArgumentError

    with pytest.raises(BadArgumentError, match="sglang-omni 0.1.9 builds its items itself"):
        pytest_mmhash.predict([Media("a.png", PNG)], model=qwen2, engine="sglang-omni")
    (tmp_path / "a.png").write_bytes(PNG)
    argv = ["predict", str(tmp_path / "a.png"), "--model", str(qwen2), "--engine", "sglang-omni"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmhash predict: error: sglang-omni 0.1.9 builds its items itself")
    assert err.count("\n") == 1 and "mmhash omni-key-pad" in err


def _failing_processor(monkeypatch: pytest.MonkeyPatch, error: Exception) -> Any:
    """An SGLangProcessor whose SGLang side (stand-ins) raises ``error`` while processing."""
    import asyncio
    import types

    from pytest_mmhash.predict.sglang_processor import SGLangProcessor

    io_struct = types.ModuleType("sglang.srt.managers.io_struct")
    io_struct.GenerateReqInput = lambda **kw: kw  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sglang.srt.managers.io_struct", io_struct)

    class MM:
        mm_tokens = None

        async def process_mm_data_async(self, **kw: Any) -> Any:
            raise error

    proc = SGLangProcessor.__new__(SGLangProcessor)
    proc.device, proc.sglang_version, proc.sglang_hash = "cpu", "0.5.20", True
    proc.deployment, proc._mm, proc._hf_processor = Deployment(), MM(), None
    proc._legacy = False
    proc._loop = asyncio.new_event_loop()
    return proc


def test_a_processor_sent_to_a_missing_gpu_is_named_not_blamed_on_the_media(monkeypatch) -> None:
    """0.5.20 puts its fast image processor on cuda:N even without CUDA (real 0.5.20 raised this
    on a CPU-only machine): the error says so and what to do, instead of 'processor failed'."""
    from pytest_mmhash.predict.errors import UnsupportedModelError

    png = b"\x89PNG\r\n\x1a\n" + b"payload"
    proc = _failing_processor(
        monkeypatch, RuntimeError("PyTorch was compiled without CUDA support")
    )
    monkeypatch.setattr("pytest_mmhash.predict.sglang_processor._check_image", lambda m: None)
    with pytest.raises(UnsupportedModelError, match="has none .*--image-processor-backend pil"):
        proc.process([Media("a.png", png, "image")])
    proc.close()
    proc = _failing_processor(monkeypatch, ValueError("broken image"))
    with pytest.raises(MediaError, match="a.png: sglang's processor failed \\(broken image\\)"):
        proc.process([Media("a.png", png, "image")])
    proc.close()
