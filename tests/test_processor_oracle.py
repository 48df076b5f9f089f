"""This engine against real SGLang's own processor + scheduler on real photographs (``oracle``).

For each model directory (``golden/models``, written by ``tools/make_model_dirs.py``), each image
processor backend and each photograph that scikit-image and matplotlib ship, SGLang's processor
runs in this process (``pytest_mmhash.predict.sglang_processor``) and the scheduler sets every
item's hash and pads; this engine must give the same values from the item's feature. Per file
(one request per image) and joint (all images in one request: one item per image from 0.5.20 on,
one joint item in 0.5.9 without ``SGLANG_ENABLE_MM_SPLITTING``).

Runs only where the real sglang and its processor path are importable (``tools/install-sglang.sh``).
Preprocessing runs on the CPU; ``MMHASH_ORACLE_DEVICE=cuda`` runs it on a CUDA device instead
(``tools/gpu_check.py`` does, on a GPU machine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

if find_spec("sglang") is None:
    pytest.skip(
        "sglang is not importable (oracle tests need a real-SGLang venv)", allow_module_level=True
    )

from pytest_mmhash import hash_feature  # noqa: E402
from pytest_mmhash.oracle.photos import package_photos  # noqa: E402
from pytest_mmhash.oracle.shims import apply_processor_shims  # noqa: E402
from pytest_mmhash.predict.sglang_processor import SGLangProcessor  # noqa: E402
from pytest_mmhash.predict.types import Deployment, Media  # noqa: E402

pytestmark = pytest.mark.oracle

MODELS = Path(__file__).resolve().parent.parent / "golden" / "models"
# Models whose item hash is taken over the processor's feature (Qwen3-VL images use an identity).
FEATURE_HASHED = ["qwen2-vl", "qwen2.5-vl", "llava-1.5"]
BACKENDS = ["auto", "pil"]


PHOTOS = [path for _, _, path in package_photos()]
if len(PHOTOS) < 2:
    pytest.skip(
        "needs scikit-image and/or matplotlib (their sample photographs)", allow_module_level=True
    )


#: ``processor(model, backend)``: SGLang's processor for a ``golden/models`` directory.
GetProcessor = Callable[[str, str], SGLangProcessor]


@pytest.fixture(scope="module")
def processor(oracle_device: str) -> Iterator[GetProcessor]:
    """SGLang's processor per (model, backend), each built once for the module, preprocessing on
    ``oracle_device`` (the CPU, or a CUDA device under ``MMHASH_ORACLE_DEVICE=cuda``)."""
    apply_processor_shims()
    made: dict[tuple[str, str], SGLangProcessor] = {}

    def get(model: str, backend: str) -> SGLangProcessor:
        if (model, backend) not in made:
            pil = backend == "pil"  # both flags: 0.5.9 has only --disable-fast-image-processor
            dep = Deployment(
                image_processor_backend=backend,
                disable_fast_image_processor=pil,
                preprocess_device=oracle_device,
            )
            made[model, backend] = SGLangProcessor(MODELS / model, dep)
        return made[model, backend]

    yield get
    for p in made.values():
        p.close()


def _media(paths: list[Path]) -> list[Media]:
    return [Media(p.name, p.read_bytes(), "image") for p in paths]


def _assert_engine_equals_sglang(proc: SGLangProcessor, items: list) -> None:
    for i, it in enumerate(items):
        r = hash_feature(it.feature, sglang_version=proc.sglang_version, device="cpu")
        assert (r.hash, tuple(r.pad_values)) == (it.sglang_hash, it.sglang_pad_values), f"item {i}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", FEATURE_HASHED)
def test_per_file(processor: GetProcessor, model: str, backend: str) -> None:
    proc = processor(model, backend)
    for photo in PHOTOS:
        items = proc.process(_media([photo]))
        assert len(items) == 1, photo.name
        _assert_engine_equals_sglang(proc, items)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["qwen2-vl", "qwen2.5-vl"])
def test_joint_request(processor: GetProcessor, model: str, backend: str) -> None:
    proc = processor(model, backend)
    photos = PHOTOS[:3]
    items = proc.process(_media(photos))
    _assert_engine_equals_sglang(proc, items)
    if len(items) == len(photos):  # one item per image: each equals the image's own request
        singles = [proc.process(_media([p]))[0].sglang_hash for p in photos]
        assert [it.sglang_hash for it in items] == singles
    else:  # 0.5.9 without splitting: one joint item over every image's pixel values
        assert len(items) == 1


def test_backends_differ(processor: GetProcessor) -> None:
    """torchvision and PIL preprocessing give different features, so both must be checked."""
    photo = PHOTOS[0]
    auto = processor("qwen2-vl", "auto").process(_media([photo]))[0]
    pil = processor("qwen2-vl", "pil").process(_media([photo]))[0]
    assert auto.sglang_hash != pil.sglang_hash


@pytest.mark.parametrize("backend", BACKENDS)
def test_qwen3_vl_identity_equals_sglang(processor: GetProcessor, backend: str) -> None:
    """Qwen3-VL image requests (0.5.20+): ``predict``'s identity method, which needs no SGLang,
    equals the hash and pads real SGLang's processor + scheduler set."""
    from importlib.metadata import version

    from pytest_mmhash.predict import predict

    proc = processor("qwen3-vl", backend)
    if not proc.sglang_version.startswith("0.5.2"):
        pytest.skip(f"sglang {proc.sglang_version} hashes Qwen3-VL pixels, not an identity")
    dep = proc.deployment  # the same server flags SGLang ran with (they enter the fingerprint)
    for photo in PHOTOS:
        (real,) = proc.process(_media([photo]))
        (ours,) = predict(
            _media([photo]),
            model=MODELS / "qwen3-vl",
            sglang_version=proc.sglang_version,
            deployment=dep,
            transformers_version=version("transformers"),
        )
        assert ours.method == "identity"
        assert (ours.hash, tuple(ours.pad_values)) == (real.sglang_hash, real.sglang_pad_values)
