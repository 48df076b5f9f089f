"""The engine against real SGLang (the installed one), on Hypothesis-generated features.

Runs only where ``sglang`` is importable (a venv from ``mmhash install-sglang``); elsewhere the
module is skipped. The CUDA path runs SGLang's own Triton kernels: on a real GPU when there is one,
else in Triton's interpreter on FakeCuda tensors (``pytest_mmhash.oracle.driver.start()`` sets
``TRITON_INTERPRET=1`` before it imports sglang; export it in the shell if anything may import
triton earlier).

``MMHASH_ORACLE_EXAMPLES`` sets the examples per test (default 25; the tox oracle envs use 500).
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from typing import Any

import pytest

if find_spec("sglang") is None:
    pytest.skip(
        "sglang is not importable (oracle tests need a real-SGLang venv)", allow_module_level=True
    )

from hypothesis import HealthCheck, given, settings  # noqa: E402

from pytest_mmhash import UnhashableFeatureError, hash_feature  # noqa: E402
from pytest_mmhash import strategies as S  # noqa: E402
from pytest_mmhash.oracle import driver  # noqa: E402

pytestmark = pytest.mark.oracle

EXAMPLES = int(os.environ.get("MMHASH_ORACLE_EXAMPLES", "25"))
VERSION = driver.start()  # this test process is one meant for real SGLang
ORACLE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _engine(feature: Any, device: str) -> Any:
    try:
        return hash_feature(feature, sglang_version=VERSION, device=device)
    except UnhashableFeatureError:
        return None


def _real_hash(feature: Any, device: str) -> int | str:
    try:
        return driver.real_hash(feature, device)
    except Exception as e:  # whatever SGLang raises
        return f"raises {type(e).__name__}: {e}"


def _check_hash(feature: Any, device: str) -> None:
    ours, real = _engine(feature, device), _real_hash(feature, device)
    if isinstance(real, str):
        assert ours is None, f"sglang {VERSION} {real}, the engine gives {ours}"
    else:
        assert ours is not None, f"the engine refuses a feature sglang {VERSION} hashes to {real}"
        assert ours.hash == real


@ORACLE
@given(feature=S.features(refused=True))  # refusals too: the engine must refuse them alike
def test_cpu_path_equals_sglang_hash_feature(feature):
    _check_hash(feature, "cpu")


@ORACLE
@given(feature=S.features(refused=True))  # refusals too: the engine must refuse them alike
def test_cuda_path_equals_sglangs_own_kernels(feature):
    _check_hash(feature, "cuda")


@ORACLE
@given(feature=S.features(refused=True), device=S.devices())
def test_pads_equal_set_pad_value(feature, device):
    ours, real = _engine(feature, device), driver.real_item(feature, device)
    if "error" in real:
        assert ours is None, (
            f"sglang {VERSION} set_pad_value raises {real['error']}, the engine gives {ours}"
        )
    else:
        assert ours is not None, f"the engine refuses a feature sglang {VERSION} stores as {real}"
        assert (ours.hash, list(ours.pad_values)) == (real["hash"], real["pad_values"])


@pytest.mark.parametrize("chunk", [4, 12, None])
@pytest.mark.parametrize("n", [5, 9, 20])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_float16_signalling_nans_in_a_promoted_list(n, device, chunk):
    """torch converts a float16 signalling NaN to different float32 bits in its vector loop (blocks
    of 8) and its scalar tail, so the engine must convert such a part as torch.cat does, whole,
    whatever its own chunk size (a Hypothesis example found the chunk-dependent value)."""
    import torch

    from pytest_mmhash import features as F

    snan = torch.full((n,), 0x7C01, dtype=torch.int16).view(torch.float16)
    feature = [snan, torch.tensor(3.0, dtype=torch.bfloat16)]  # cat promotes both to float32
    real = driver.real_item(feature, device)
    with pytest.MonkeyPatch.context() as mp:
        if chunk is not None:
            mp.setattr(F, "CHUNK_BYTES", chunk)
        ours = _engine(feature, device)
    assert ours is not None and (ours.hash, list(ours.pad_values)) == (
        real["hash"],
        real["pad_values"],
    )


def test_the_version_under_test_is_the_installed_one():
    assert hash_feature(b"hello", sglang_version=VERSION).sglang_version == VERSION
