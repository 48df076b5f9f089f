"""tools/gpu-check.sh and tools/gpu_check.py where no CUDA device is present (this suite's machines).

The GPU steps themselves run only on a CUDA machine; here the no-CUDA mode, the agreement rule and
the report's readers are checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA mode")


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "tools" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skipped_everywhere(out: Path) -> dict:
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["device"] is None
    assert {s["status"] for s in report["steps"].values()} == {"skipped"}
    assert list(report["steps"]) == [
        "gpu_tests",
        "hypothesis",
        "throughput",
        "preprocessing",
        "sglang_preprocessing",
        "oracle_on_gpu",
    ]
    return report


def test_script_without_cuda_says_so_in_one_line_and_builds_nothing(tmp_path):
    """No CUDA: exit 0, one line on stdout, every step skipped, no venv or download made."""
    work = tmp_path / "work"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_WORK": str(work)}
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "gpu-check.sh"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "gpu-check: no CUDA device (torch.cuda.is_available() is False); every step skipped"
    ]
    _skipped_everywhere(tmp_path / "out")
    assert (tmp_path / "out" / "summary.txt").read_text() == proc.stdout
    assert not work.exists()


def test_python_without_torch_names_the_reason(tmp_path):
    """An interpreter without torch (a bare system python) is a no-CUDA run with that reason."""
    proc = subprocess.run(
        [sys.executable, "-S", str(REPO / "tools" / "gpu_check.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch is not importable" in proc.stdout
    assert _skipped_everywhere(tmp_path)["reason"].startswith("torch is not importable")


def test_bad_arguments_exit_2(tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "gpu-check.sh"), "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("usage:")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((5, 5, 5), True),
        ((5, 5, 6), False),
        ((5, 6, 5), False),
        (("raised RuntimeError", "raised UnhashableFeatureError", "raised X"), True),
        (("raised RuntimeError", 5, 5), False),
        ((5, 5, "raised UnhashableFeatureError"), False),
    ],
)
def test_agreement_rule(gpu_check, values, expected):
    """Three values agree when equal, or when all three refused the input."""
    assert gpu_check.agree(*values) is expected


def test_missing_kernel_source_is_named(gpu_check, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SGLang 0\.5\.23's kernel source is missing"):
        gpu_check.load_kernel(tmp_path, "gpu-tile-fmix32")
    assert gpu_check.kernel_sources(tmp_path) == dict.fromkeys(gpu_check.SCHEME_KERNELS)


def test_summary_of_a_gpu_report(gpu_check):
    """The summary states the figures a closing note needs: counts, ratios, the preprocessing answer."""
    report = {
        "device": "NVIDIA H200",
        "torch": "2.11.0",
        "triton": "3.6.0",
        "steps": {
            "gpu_tests": {
                "status": "passed",
                "tests": 12,
                "failures": 0,
                "errors": 0,
                "skipped": 1,
            },
            "hypothesis": {
                "status": "passed",
                "schemes": {
                    "gpu-tile-fmix32": {"release": "0.5.23", "examples": 200, "mismatch_count": 0}
                },
            },
            "throughput": {
                "status": "measured",
                "rows": [
                    {
                        "scheme": "gpu-tile-fmix32",
                        "mib": 16,
                        "own_gbps": 900.0,
                        "sglang_gbps": 450.0,
                        "own_vs_sglang": 2.0,
                        "emulation_cpu_gbps": 9.5,
                    }
                ],
            },
            "preprocessing": {"status": "error", "error": "ImportError: no torchvision"},
            "sglang_preprocessing": {
                "status": "measured",
                "sglang": "0.5.23",
                "rows": [
                    {
                        "model": "qwen2-vl",
                        "image": "rocket.jpg",
                        "bitwise_equal": False,
                        "max_abs_diff": 0.0292,
                        "hash_differs": True,
                        "predict_default_equals_sglang_cuda": True,
                        "predict_default_exact": True,
                    }
                ],
            },
            "oracle_on_gpu": {"status": "not run", "reason": "not chosen"},
        },
    }
    text = gpu_check.summary(report)
    assert "gpu tests: passed (12 tests, 0 failed, 0 errors, 1 skipped)" in text
    assert "hypothesis gpu-tile-fmix32 vs SGLang 0.5.23: 200 examples, 0 mismatches" in text
    assert "own/SGLang 2.00x" in text
    assert "preprocessing: error: ImportError: no torchvision" in text
    assert (
        "sglang 0.5.23 qwen2-vl rocket.jpg: cuda==cpu False, max abs diff 0.0292, hash differs"
        " True; predict (default deployment) == SGLang on cuda True, exact True"
    ) in text
    assert "oracle_on_gpu: not run: not chosen" in text


def test_junit_counts(gpu_check, tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="2"/></testsuites>'
    )
    assert gpu_check.junit_counts(xml) == {"tests": 3, "failures": 1, "errors": 0, "skipped": 2}
    assert gpu_check.junit_counts(tmp_path / "missing.xml") == {}


def test_tensor_diff_of_the_preprocessing_steps(gpu_check):
    """Equal, different and differently shaped tensors, as steps 4 and 5 and nvJPEG compare them."""
    a = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    assert gpu_check.tensor_diff(a, a.clone()) == {
        "bitwise_equal": True,
        "elements_differing": 0.0,
        "max_abs_diff": 0.0,
    }
    b = a.clone()
    b[1, 1] = 2.25
    assert gpu_check.tensor_diff(a, b) == {
        "bitwise_equal": False,
        "elements_differing": 0.25,
        "max_abs_diff": 0.25,
    }
    assert gpu_check.diff_text(gpu_check.tensor_diff(a, b)) == "max abs diff 0.25"
    shapes = gpu_check.tensor_diff(a, a.reshape(4))
    assert shapes["bitwise_equal"] is False and gpu_check.diff_text(shapes) == "shape differs"
    u8 = torch.tensor([10, 200], dtype=torch.uint8)  # nvJPEG vs Pillow: no uint8 wrap-around
    assert (
        gpu_check.tensor_diff(u8, torch.tensor([13, 190], dtype=torch.uint8))["max_abs_diff"] == 10
    )
