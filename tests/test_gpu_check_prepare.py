"""tools/gpu_check_prepare.py: the wheels a GPU machine without a package index is sent."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prep() -> ModuleType:
    path = REPO / "tools" / "gpu_check_prepare.py"
    spec = importlib.util.spec_from_file_location("gpu_check_prepare", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for n in names:
            zf.writestr(n, f"contents of {n}")
    return path


def test_kernels_extracts_only_the_hash_kernel_sources(prep: ModuleType, tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path / "sglang-0.5.23-py3-none-any.whl",
        [
            "sglang/kernels/ops/memory/gpu_tensor_hash.py",
            "sglang/srt/layers/multimodal.py",
            "sglang/srt/managers/scheduler.py",
        ],
    )
    assert prep.main(["kernels", str(wheel), str(tmp_path / "src")]) == 0
    got = sorted(str(p.relative_to(tmp_path / "src")) for p in (tmp_path / "src").rglob("*.py"))
    assert got == [
        "sglang/kernels/ops/memory/gpu_tensor_hash.py",
        "sglang/srt/layers/multimodal.py",
    ]


def test_kernels_fails_on_a_wheel_without_them(prep: ModuleType, tmp_path: Path, capsys) -> None:
    wheel = _wheel(tmp_path / "x.whl", ["sglang/__init__.py"])
    assert prep.main(["kernels", str(wheel), str(tmp_path / "src")]) == 1
    assert "no kernel source" in capsys.readouterr().err


def test_select_leaves_out_the_gpu_stack_this_project_and_what_the_target_has(
    prep: ModuleType,
) -> None:
    freeze = [
        "torch==2.13.0+cpu",
        "nvidia-cublas-cu12==12.9.1.4",
        "Pillow==13.0.0",
        "pytest_mmhash==0.1.0",
        "-e git+https://example.invalid/x#egg=x",
        "huggingface_hub==2.4.0",
        "pydantic_core==2.50.5",
        "sglang==0.5.23",
        "transformers==5.24.0",
    ]
    assert prep.select(freeze, ["huggingface-hub", "", "Transformers"]) == [
        "pydantic_core==2.50.5",
        "sglang==0.5.23",
    ]


def test_slim_drops_only_the_unused_rust_extensions(prep: ModuleType, tmp_path: Path) -> None:
    ext = "sglang/srt/rust_extensions/"
    keep = [f"{ext}_multimodal.cpython-312-x86_64-linux-gnu.so", f"{ext}loader.py", "x/y.py"]
    drop = [f"{ext}_{n}.cpython-312-x86_64-linux-gnu.so" for n in ("server", "bench", "grpc")]
    wheel = _wheel(tmp_path / "sglang-0.5.23-cp312-cp312-linux_x86_64.whl", keep + drop)
    assert sorted(prep.slim(wheel)) == sorted(drop)
    with zipfile.ZipFile(wheel) as zf:
        assert zf.namelist() == keep
        assert zf.read("x/y.py") == b"contents of x/y.py"


def test_usage_error(prep: ModuleType, capsys) -> None:
    assert prep.main(["bogus"]) == 2
    assert "gpu_check_prepare.py kernels" in capsys.readouterr().err
