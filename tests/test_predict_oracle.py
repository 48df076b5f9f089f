"""``mmhash predict`` end to end against real SGLang's own processor + scheduler (``oracle``).

The issue's acceptance command, run as a user runs it (the CLI, in this process):
``mmhash predict --json --sglang-version V --model DIR --preprocess-device cpu
--image-processor-backend auto|pil IMG...``, per file and with ``--together``, on photographs
scikit-image ships and that no other test, golden entry or benchmark of this project uses
(``pytest_mmhash.oracle.photos.FRESH``). Every hash and pad list must equal what real SGLang's
processor and scheduler assign to the same request (``SGLangProcessor`` with SGLang's own
hashing), and every prediction must say it is exact. Runs where a real SGLang 0.5.2x is importable
(``tools/install-sglang-processor.sh 0.5.23``). The model directories are ``golden/models``
(hand-written by ``tools/make_model_dirs.py``), Qwen2-VL and Qwen2.5-VL directories written at
test time by the installed transformers' own ``save_pretrained`` from its classes' defaults
(``tools/make_transformers_model_dirs.py``; the tokenizer is ours), plus any listed in
``MMHASH_ORACLE_MODELS`` (``os.pathsep``-separated): checkouts written by the model authors
(config, processor and tokenizer files; no weights needed), which no package this project can
install ships. ``MMHASH_ORACLE_DEVICE=cuda`` runs both sides with ``--preprocess-device cuda`` on a
CUDA device (``tools/gpu_check.py`` does, on a GPU machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec, module_from_spec, spec_from_file_location
from pathlib import Path

import pytest

if find_spec("sglang") is None:
    pytest.skip(
        "sglang is not importable (oracle tests need a real-SGLang venv)", allow_module_level=True
    )

from pytest_mmhash.cli import main  # noqa: E402
from pytest_mmhash.oracle.photos import FRESH, package_photos  # noqa: E402
from pytest_mmhash.oracle.shims import apply_processor_shims, importable_sglang_version  # noqa: E402
from pytest_mmhash.predict.sglang_processor import SGLangProcessor  # noqa: E402
from pytest_mmhash.predict.types import Deployment, Media  # noqa: E402

pytestmark = pytest.mark.oracle

ROOT = Path(__file__).resolve().parent.parent
QWEN = ("qwen2-vl", "qwen2.5-vl")
#: Parameter id -> directory; ``None``: written at test time by transformers (``model_dirs``).
MODELS: dict[str, Path | None] = {
    **{f"golden/{n}": ROOT / "golden" / "models" / n for n in QWEN},
    **{f"transformers/{n}": None for n in QWEN},
    **{d: Path(d) for d in os.environ.get("MMHASH_ORACLE_MODELS", "").split(os.pathsep) if d},
}
VERSION = importable_sglang_version() or ""
if not VERSION.startswith("0.5.2"):
    pytest.skip(
        f"the acceptance command is pinned to sglang 0.5.2x (--image-processor-backend); "
        f"installed: {VERSION}",
        allow_module_level=True,
    )

PHOTOS = [path for _, _, path in package_photos(FRESH)]
if len(PHOTOS) < 2:
    pytest.skip("needs scikit-image (its sample photographs)", allow_module_level=True)


@pytest.fixture(scope="module")
def sglang(oracle_device: str) -> dict[tuple[Path, str], SGLangProcessor]:
    """Real SGLang's processor with its own hashing, one per (model, backend), all preprocessing
    on ``oracle_device`` (filled by ``_sglang_values``)."""
    apply_processor_shims()
    made: dict[tuple[Path, str], SGLangProcessor] = {}
    yield made
    for p in made.values():
        p.close()


@pytest.fixture(scope="module")
def model_dirs(sglang: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every model directory by parameter id, writing the transformers ones (after the shims)."""
    tool = ROOT / "tools" / "make_transformers_model_dirs.py"
    spec = spec_from_file_location("make_transformers_model_dirs", tool)
    assert spec and spec.loader
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    written = mod.make_model_dirs(tmp_path_factory.mktemp("transformers-models"), list(QWEN))
    return {k: v or written[k.split("/")[1]] for k, v in MODELS.items()}


def _sglang_values(
    sglang: dict, device: str, model: Path, backend: str, photos: list[Path]
) -> list[tuple]:
    key = (model, backend)
    if key not in sglang:
        dep = Deployment(image_processor_backend=backend, preprocess_device=device)
        sglang[key] = SGLangProcessor(model, dep)
    items = sglang[key].process([Media(str(p), p.read_bytes()) for p in photos])
    return [(it.sglang_hash, list(it.sglang_pad_values)) for it in items]


def _predict(
    capsys: pytest.CaptureFixture[str], device: str, model: Path, backend: str, *extra: str
) -> list:
    argv = ["predict", "--json", "--sglang-version", VERSION, "--model", str(model)]
    argv += ["--preprocess-device", device, "--image-processor-backend", backend, *extra]
    code = main([*argv, *map(str, PHOTOS)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("backend", ["auto", "pil"])
@pytest.mark.parametrize("name", MODELS)
def test_predict_per_file_equals_sglang(
    sglang: dict, oracle_device: str, model_dirs: dict[str, Path], capsys, name: str, backend: str
) -> None:
    model = model_dirs[name]
    records = _predict(capsys, oracle_device, model, backend)
    assert [r["path"] for r in records] == [str(p) for p in PHOTOS]
    want = [_sglang_values(sglang, oracle_device, model, backend, [p])[0] for p in PHOTOS]
    assert [(r["hash"], r["pad_values"]) for r in records] == want
    assert all(r["exact"] and r["method"] == "sglang-processor" for r in records)


@pytest.mark.parametrize("backend", ["auto", "pil"])
@pytest.mark.parametrize("name", MODELS)
def test_predict_together_equals_sglang(
    sglang: dict, oracle_device: str, model_dirs: dict[str, Path], capsys, name: str, backend: str
) -> None:
    model = model_dirs[name]
    records = _predict(capsys, oracle_device, model, backend, "--together")
    assert {r["request"] for r in records} == {0}
    want = _sglang_values(sglang, oracle_device, model, backend, PHOTOS)
    assert [(r["hash"], r["pad_values"]) for r in records] == want
    assert len(records) == len(PHOTOS)  # 0.5.2x: one item per image
    assert all(r["exact"] for r in records)


def test_the_command_in_a_fresh_process_equals_sglang(
    sglang: dict, oracle_device: str, model_dirs: dict[str, Path]
) -> None:
    """``mmhash predict`` as a user runs it, in a process where nothing was applied first: it
    applies itself only the shims this machine lacks, names them under ``stack``, and equals
    SGLang (before, on CPU torch with PyPI's torchvision, it failed: torchvision::nms)."""
    from pytest_mmhash.oracle.shims import PROCESSOR_SHIMS

    model = model_dirs["golden/qwen2-vl"]
    argv = [sys.executable, "-m", "pytest_mmhash.cli", "predict", "--json"]
    argv += ["--sglang-version", VERSION, "--model", str(model), "--preprocess-device"]
    proc = subprocess.run(
        [*argv, oracle_device, str(PHOTOS[0])], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    (record,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (record["hash"], record["pad_values"]) == _sglang_values(
        sglang, oracle_device, model, "auto", PHOTOS[:1]
    )[0]
    named = record["stack"].get("shims", "")
    assert all(part in PROCESSOR_SHIMS.values() for part in named.split("; ") if part)
