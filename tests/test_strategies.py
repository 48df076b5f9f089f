"""pytest_mmhash.strategies generate what they promise, and the engine holds up on what they generate."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_mmhash import UnhashableFeatureError, hash_feature
from pytest_mmhash import features as F
from pytest_mmhash import strategies as S
from pytest_mmhash import versions as V
from pytest_mmhash.cuda import constants, emulation


def _draws(strategy: st.SearchStrategy, n: int = 300) -> list:
    """``n`` deterministic examples of ``strategy``."""
    out: list = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(x):
        out.append(x)

    collect()
    return out


def _nbytes(x) -> int:
    return x.nbytes if isinstance(x, np.ndarray) else x.numel() * x.element_size()


def _leaves(feature) -> list:
    return F.flatten_nested_list(feature) if isinstance(feature, list) else [feature]


@pytest.fixture(scope="module")
def tensor_draws() -> list[torch.Tensor]:
    return _draws(S.tensors(), 600)


@pytest.fixture(scope="module")
def array_draws() -> list[np.ndarray]:
    return _draws(S.arrays(), 300)


def test_every_dtype_occurs(tensor_draws):
    assert {t.dtype for t in tensor_draws} == set(S.BASE_DTYPES + S.FLOAT8_DTYPES)


def test_float8_is_there_when_torch_has_it():
    assert torch.float8_e4m3fn in S.FLOAT8_DTYPES and torch.float8_e5m2 in S.FLOAT8_DTYPES


def test_shapes_cover_edge_cases(tensor_draws):
    shapes = [tuple(t.shape) for t in tensor_draws]
    assert () in shapes  # 0-dim
    assert any(0 in s for s in shapes)  # empty
    assert any(t.dim() and t.numel() == 1 for t in tensor_draws)  # one element, with dims


def test_views_are_really_non_contiguous(tensor_draws):
    assert any(not t.is_contiguous() for t in tensor_draws)
    assert any(t.stride() and 0 in t.stride() and t.numel() > 1 for t in tensor_draws)  # expand
    assert any(t.storage_offset() > 0 for t in tensor_draws)  # offset


def test_odd_byte_counts_and_tile_boundaries_occur(tensor_draws):
    sizes = [_nbytes(t) for t in tensor_draws]
    assert any(n % 4 for n in sizes)
    assert any(n > S.TILE_BYTES for n in sizes)
    assert any(0 < abs(n - S.TILE_BYTES) <= 8 for n in sizes)


def test_max_bytes_is_respected():
    assert all(_nbytes(t) <= 512 for t in _draws(S.tensors(max_bytes=512), 100))


def test_arrays_cover_layouts_and_byte_orders(array_draws):
    assert any(a.flags.f_contiguous and not a.flags.c_contiguous for a in array_draws)
    assert any(a.dtype.byteorder == ">" for a in array_draws)
    assert any(not (a.flags.c_contiguous or a.flags.f_contiguous) for a in array_draws)
    assert any(s < 0 for a in array_draws for s in a.strides)


def test_features_mix_kinds():
    kinds = {type(f).__name__ for f in _draws(S.features(), 300)}
    assert {"Tensor", "ndarray", "list"} <= kinds
    nested = _draws(S.tensor_lists(), 200)
    assert all(isinstance(f[0], torch.Tensor) for f in nested)
    assert any(isinstance(x, list) for f in nested for x in f)


@given(S.tensors(shape=S.shapes(min_dims=2), layout="transpose"))
def test_transposed_tensors_are_not_contiguous_when_they_cannot_be(t):
    assume(t.shape[-1] > 1 and t.shape[-2] > 1 and t.numel() > 0)
    assert not t.is_contiguous()


@given(S.tensors(shape=S.shapes(min_dims=1), layout="strided"))
def test_strided_tensors_skip_every_other_row(t):
    assume(t.shape[0] > 1 and t[0].numel() > 0)
    assert not t.is_contiguous()


@given(S.tensors(dtype=torch.float32, allow_nan=False))
def test_allow_nan_false_gives_no_nan(t):
    assert not t.isnan().any()


def test_sglang_versions_are_reproducible_and_hit_every_era_edge():
    drawn = set(_draws(S.sglang_versions(), 300))
    first = V.RELEASES.index(S.FIRST_REPRODUCIBLE)
    assert all(V.RELEASES.index(v) >= first for v in drawn)
    edges = {v for era in V.eras() for v in (era.first, era.last) if V.RELEASES.index(v) >= first}
    assert edges <= drawn


def test_devices_are_cpu_and_cuda():
    assert set(_draws(S.devices(), 50)) == {"cpu", "cuda"}


def test_ci_profile_is_deterministic():
    profile = settings.get_profile("mmhash-ci")
    assert profile.derandomize and profile.database is None


@settings(max_examples=200, deadline=None)
@given(feature=S.features(refused=True), version=S.sglang_versions(), device=S.devices())
def test_hash_feature_raises_only_unhashable(feature, version, device):
    try:
        h = hash_feature(feature, sglang_version=version, device=device)
    except UnhashableFeatureError:
        return
    assert h.sglang_version == version and h.pad_values


F8 = torch.float8_e4m3fn


@pytest.mark.parametrize(
    "other,version,device",
    [
        (torch.float32, "0.5.23", "cpu"),
        (torch.float32, "0.4.10", "cpu"),
        (torch.float32, "0.5.23", "cuda"),
        (torch.float32, "0.4.10", "cuda"),
        (torch.float8_e5m2, "0.5.23", "cpu"),
        (torch.float8_e5m2, "0.5.23", "cuda"),
        (torch.float8_e5m2, "0.4.10", "cpu"),
    ],
)
def test_float8_promotion(other, version, device):
    """torch.cat raises for float8 beside any other dtype: SGLang's CUDA path and sha256-f32 raise,
    sha256-raw never concatenates and hashes each part."""
    feature = [torch.ones(4, dtype=F8), torch.ones(4, dtype=other)]
    if device == "cpu" and V.resolve(version).era.cpu == V.SHA256_RAW:
        assert hash_feature(feature, sglang_version=version, device=device).hash >= 0
    else:
        with pytest.raises(UnhashableFeatureError):
            hash_feature(feature, sglang_version=version, device=device)


@pytest.mark.parametrize(
    "version,device", [("0.5.9", "cpu"), ("0.5.23", "cuda"), ("0.5.23", "cpu")]
)
def test_single_element_strided_view(version, device):
    """``arange(2.)[::2]`` (shape (1,), stride (2,)): paths that torch.cat hash it like ``tensor([0.])``;
    sha256-raw's ``.view(torch.uint8)`` raises on its stride (checked against real SGLang 0.5.23)."""
    strided = torch.arange(2.0)[::2]
    if V.resolve(version).era.cpu == V.SHA256_RAW and device == "cpu":
        with pytest.raises(UnhashableFeatureError):
            hash_feature(strided, sglang_version=version, device=device)
    else:
        got = hash_feature(strided, sglang_version=version, device=device).hash
        assert got == hash_feature(torch.zeros(1), sglang_version=version, device=device).hash


def test_reversed_size_one_axis_on_cuda():
    """``a[::-1]`` of a one-row array keeps stride < 0 through ascontiguousarray; torch.from_numpy refuses it."""
    a = np.arange(4, dtype=np.float32).reshape(1, 4)
    got = hash_feature(a[::-1], sglang_version="0.5.23", device="cuda").hash
    assert got == hash_feature(a, sglang_version="0.5.23", device="cuda").hash


def test_sha256_f32_rounds_lists_through_bf16():
    """``torch.cat([bf16 0., int16 257])`` is bf16 (257 rounds to 256) before sha256-f32 widens it."""
    feature = [torch.zeros(1, dtype=torch.bfloat16), torch.tensor([257], dtype=torch.int16)]
    expected = hash_feature(torch.tensor([0.0, 256.0]), sglang_version="0.5.9").hash
    assert hash_feature(feature, sglang_version="0.5.9").hash == expected


def _hash_or_error(feature, version: str, device: str):
    try:
        return hash_feature(feature, sglang_version=version, device=device)
    except UnhashableFeatureError as e:
        return type(e)


@settings(max_examples=60, deadline=None)
@given(
    feature=S.features(max_bytes=3 * S.TILE_BYTES, refused=False),
    version=S.sglang_versions(min_version="0.4.6.post5"),
    device=S.devices(),
    tiles=st.integers(1, 2),
    chunk=st.sampled_from([4, 12, 4096 + 4, 3 * S.TILE_BYTES]),
)
def test_emulation_is_independent_of_block_and_chunk_boundaries(
    feature, version, device, tiles, chunk
):
    """Reblocking: the value must not depend on how many words a backend block holds (a multiple of
    8192) nor on how the front end chunks the bytes it reads."""
    expected = _hash_or_error(feature, version, device)
    with (
        mock.patch.object(emulation, "BLOCK_WORDS", tiles * constants.TILE_WORDS),
        mock.patch.object(F, "CHUNK_BYTES", chunk),
    ):
        assert _hash_or_error(feature, version, device) == expected


@pytest.mark.parametrize("version", ["0.4.6.post5", "0.4.10"])
def test_xor_sums_wrap_across_blocks(version):
    """Per-block partial sums of arange(2 tiles) overflow int64 when added: the total must still wrap."""
    x = torch.arange(2 * constants.TILE_WORDS, dtype=torch.int32)
    expected = hash_feature(x, sglang_version=version, device="cuda").hash
    with mock.patch.object(emulation, "BLOCK_WORDS", constants.TILE_WORDS):
        assert hash_feature(x, sglang_version=version, device="cuda").hash == expected


# ------------------------------------------------------------------ the public surface


def test_explicit_public_names():
    assert sorted(S.__all__) == S.__all__
    assert all(callable(getattr(S, n)) or n.isupper() for n in S.__all__)
    assert "settings" not in S.__all__ and "torch" not in S.__all__


def test_import_registers_no_settings_profile():
    """Importing the module changes no Hypothesis settings (tests/conftest.py registers mmhash-ci)."""
    import subprocess
    import sys

    code = (
        "import hypothesis, pytest_mmhash.strategies\n"
        "try:\n    hypothesis.settings.get_profile('mmhash-ci')\n"
        "except hypothesis.errors.InvalidArgument:\n    print('none')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "none", r.stderr


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: S.tensors(max_bytes=-1), "max_bytes=-1 must be an integer >= 0"),
        (lambda: S.tensors(dtype=torch.complex64), "dtype=torch.complex64 must be one of"),
        (lambda: S.tensors(layout="diagonal"), "layout='diagonal' must be one of"),
        (lambda: S.tensors(shape=[2, 3]), "shape=[2, 3] must be a tuple"),
        (lambda: S.arrays(dtype="complex64"), "dtype='complex64' must be a numpy dtype"),
        (lambda: S.numpy_dtypes(byteorder="="), "byteorder='=' must be one of"),
        (lambda: S.shapes(min_dims=3, max_dims=1), "min_dims=3 must be <= max_dims=1"),
        (lambda: S.tensor_lists(max_size=0), "max_size=0 must be an integer >= 1"),
        (lambda: S.tensor_lists(torch.ones(2)), "elements=tensor"),
        (lambda: S.features(sglang_version="0.5.99"), "sglang_version='0.5.99' is not a known"),
        (lambda: S.features(device="gpu"), "device='gpu' must be one of"),
        (lambda: S.sglang_versions(min_version="0.5.9", max_version="0.5.5"), "is newer than"),
    ],
)
def test_arguments_are_checked_when_the_strategy_is_built(build, message):
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=re.escape(message)):
        build()


@pytest.mark.parametrize("version", ["0.5.23", "0.5.9", "0.4.10"])
def test_default_features_are_hashed_by_that_release_on_both_paths(version):
    """``@given(features())`` passes a hasher test out of the box: no draw is refused."""
    for f in _draws(S.features(sglang_version=version, max_bytes=2048), 100):
        for d in ("cpu", "cuda"):
            hash_feature(f, sglang_version=version, device=d)  # raises if SGLang refuses it


def test_refused_on_request():
    # 500 draws: Hypothesis mixes literals of every loaded local module into its (derandomized)
    # draws, so the count moves whenever code elsewhere adds constants (200 draws gave 8-37)
    drawn = _draws(S.features(refused=True, max_bytes=2048), 500)
    refused = 0
    for f in drawn:
        try:
            hash_feature(f, sglang_version="0.5.23", device="cpu")
        except UnhashableFeatureError:
            refused += 1
    assert refused >= 10


def test_readme_property_test_runs(pytester):
    """The README's property test of one's own hasher passes as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("# test_my_hasher.py\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(test_my_hasher=code)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
