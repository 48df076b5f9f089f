"""On a real CUDA device: this project's Triton kernels == the CPU emulation == SGLang's own kernels.

Marked ``gpu``: the pytest plugin skips these without CUDA and fails them under
``--mmhash-require-gpu``. Run with ``pytest -m gpu --mmhash-require-gpu`` on a GPU runner. When
``sglang`` is importable, SGLang's own ``hash_feature`` on the CUDA tensors is compared too.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import pytest
import torch
from hypothesis import given, settings

from pytest_mmhash import UnhashableFeatureError, hash_feature
from pytest_mmhash import strategies as S
from pytest_mmhash import versions as V
from pytest_mmhash.cuda import on_device
from pytest_mmhash.features import flatten_nested_list, plan_feature

pytestmark = pytest.mark.gpu

CUDA_ERAS = ("0.4.6.post5", "0.4.7", "0.4.10.post2", "0.5.1", "0.5.9", "0.5.10", "0.5.23")
GPU_SETTINGS = settings(max_examples=100, deadline=None)


@pytest.fixture(autouse=True)
def _cuda_device() -> None:
    """Skip without CUDA when the plugin (which owns the ``gpu`` marker) did not already decide."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


def _to_cuda(feature: Any) -> Any:
    """The feature with every tensor moved to the GPU (dense views keep their strides)."""
    if isinstance(feature, list):
        return [_to_cuda(x) for x in feature]
    return feature.cuda()


def _tensor_features() -> Any:
    """Features whose leaves are all tensors (numpy never reaches SGLang's GPU path)."""
    return S.features(refused=False, max_bytes=4 * S.TILE_BYTES).filter(
        lambda f: all(
            isinstance(x, torch.Tensor)
            for x in (flatten_nested_list(f) if isinstance(f, list) else [f])
        )
    )


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except UnhashableFeatureError:
        return UnhashableFeatureError


@GPU_SETTINGS
@given(feature=_tensor_features(), version=S.sglang_versions(min_version="0.4.6.post5"))
def test_own_kernels_on_gpu_equal_emulation(feature, version):
    """hash_feature on CUDA tensors (own kernels, on device) == on CPU tensors with device="cuda" (emulation)."""
    on_gpu = _outcome(lambda: hash_feature(_to_cuda(feature), sglang_version=version).hash)
    emulated = _outcome(lambda: hash_feature(feature, sglang_version=version, device="cuda").hash)
    assert on_gpu == emulated


@pytest.mark.parametrize("version", CUDA_ERAS)
def test_device_hook_really_runs_on_gpu(version):
    """The on-device hook must answer (not decline) for CUDA tensors, with the emulation's value."""
    x = torch.arange(3 * 8192 + 5, dtype=torch.int32)
    release = V.resolve(version)
    plan = plan_feature(x.cuda(), release, None)
    assert plan.path == "cuda"
    assert (
        on_device.try_hash_on_device(plan, release.era.cuda)
        == hash_feature(x, sglang_version=version, device="cuda").hash
    )


@pytest.mark.skipif(find_spec("sglang") is None, reason="sglang is not importable")
@GPU_SETTINGS
@given(feature=_tensor_features())
def test_own_kernels_equal_sglangs_kernels_on_gpu(feature):
    """The installed SGLang's own hash_feature on the same CUDA tensors gives the same value."""
    from pytest_mmhash.oracle import driver

    version = driver.start()
    ours = _outcome(lambda: hash_feature(_to_cuda(feature), sglang_version=version).hash)
    try:
        real: Any = driver.real_hash(_to_cuda(feature), "cuda")
    except Exception:  # whatever SGLang raises
        real = UnhashableFeatureError
    assert ours == real
