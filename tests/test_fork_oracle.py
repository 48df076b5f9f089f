"""The engine against each fork's OWN hashing code (sglang-kt, sglang-omni), on Hypothesis inputs.

The forks are installed with ``mmhash install-sglang DIST==VERSION PARENT`` (``pip install
--no-deps --target``) and named by ``MMHASH_FORK_SITES=PARENT``; every kt install, and every omni install whose
pinned sglang is installed beside it, is tested. Their functions are cut out of their files with
``ast`` and run (:mod:`pytest_mmhash.oracle.forks`); without installs the tests are skipped. kt's
CUDA path runs its own Triton kernels, which needs ``TRITON_INTERPRET=1`` in the environment
before triton is imported (``tox -e oracle-sglang-kt`` sets it).

``MMHASH_ORACLE_EXAMPLES`` sets the examples per property (default 25; the tox envs use 300).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_mmhash import (
    UnhashableFeatureError,
    from_hash,
    hash_feature,
    omni_contextualize,
    omni_key_pad,
    omni_media_cache_key,
    omni_media_part,
)
from pytest_mmhash import strategies as S
from pytest_mmhash.oracle import forks

pytestmark = pytest.mark.oracle

SITES = forks.sites()
EXAMPLES = int(os.environ.get("MMHASH_ORACLE_EXAMPLES", "25"))
ORACLE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KT_DEVICES = ["cpu", "cuda"] if os.environ.get("TRITON_INTERPRET") == "1" else ["cpu"]
KTS = [i for i in SITES if i.name == "sglang-kt"]
OMNIS = [
    (i, u)
    for i in SITES
    if i.name == "sglang-omni"
    for u in SITES
    if u.name == "sglang" and u.version == forks.pinned_sglang(i)
]


@pytest.fixture(scope="module", params=KTS, ids=lambda i: f"sglang-kt-{i.version}")
def kt(request) -> forks.KtOracle:
    return forks.KtOracle.load(request.param)


@pytest.fixture(scope="module", params=OMNIS, ids=lambda p: f"sglang-omni-{p[0].version}")
def omni(request) -> forks.OmniOracle:
    return forks.OmniOracle.load(*request.param)


def _ours(feature: Any, engine: str, version: str, device: str | None) -> Any:
    try:
        r = hash_feature(feature, engine=engine, sglang_version=version, device=device)
    except UnhashableFeatureError:
        return None
    return {"hash": r.hash, "pad_values": list(r.pad_values)}


def _same(ours: Any, real: dict[str, Any], what: str) -> None:
    if "error" in real:
        assert ours is None, f"{what} raises {real['error']}, the engine gives {ours}"
    else:
        assert ours == real, f"{what}: engine {ours}, fork {real}"


# ---------------------------------------------------------------- sglang-kt


def test_kt_notes_vectors_from_the_forks_own_code(kt):
    from test_family import KT_INPUTS, KT_VECTORS

    for name, (cpu_h, cpu_p, cuda_h, cuda_p) in KT_VECTORS.items():
        assert kt.item(KT_INPUTS[name](), "cpu") == {"hash": cpu_h, "pad_values": [cpu_p]}
        if "cuda" in KT_DEVICES:
            assert kt.item(KT_INPUTS[name](), "cuda") == {"hash": cuda_h, "pad_values": [cuda_p]}
    assert kt.item(torch.ones(2), "cpu", preset_hash=-1) == {"hash": -1, "pad_values": [1074741823]}


@ORACLE
@given(feature=S.features(), device=st.sampled_from(KT_DEVICES))
def test_kt_engine_equals_kt_set_pad_value(kt, feature, device):
    real = kt.item(feature, device)
    ours = _ours(feature, "sglang-kt", kt.fork.version, device)
    _same(ours, real, f"sglang-kt {kt.fork.version} {device}")


@ORACLE
@given(h=st.integers(-(2**63), 2**64 - 1))
def test_kt_preset_hashes(kt, h):
    r = from_hash(h, engine="sglang-kt", sglang_version=kt.fork.version)
    assert {"hash": r.hash, "pad_values": list(r.pad_values)} == kt.item(None, "cpu", h)


# ---------------------------------------------------------------- sglang-omni

WAVE_DTYPES = st.sampled_from(["<f4", ">f4", "<f8", "<f2", "<i2", "<i4", "|u1", "|b1"])
waveforms = WAVE_DTYPES.flatmap(
    lambda dt: hnp.arrays(
        np.dtype(dt),
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=300),
        elements={"allow_nan": False} if np.dtype(dt).kind == "f" else None,
    )
)


def test_omni_notes_vectors_from_the_forks_own_code(omni):
    wave = np.arange(10, dtype=np.float32)
    h = 5370553336874187747 if omni.fork.version == "0.1.1" else 1965757166427933564
    pad = 867958307 if omni.fork.version == "0.1.1" else 330091964
    assert omni.waveform_item(wave) == {"hash": h, "pad_values": [pad]}
    assert omni.key_pad("image:abc", 152064) == 226475079148095132


def test_the_engine_table_names_the_sglang_omni_pins(omni):
    """The release table's pinned sglang is the one the fork's own metadata requires."""
    from pytest_mmhash import engines as E

    er = E.resolve("sglang-omni", omni.fork.version)
    assert er.upstream.version == forks.pinned_sglang(omni.fork) == omni.upstream.version


@ORACLE
@given(wave=waveforms)
def test_omni_engine_equals_omni_fingerprint_and_upstream_pad(omni, wave):
    real = omni.waveform_item(wave)
    _same(_ours(wave, "sglang-omni", omni.fork.version, None), real, "sglang-omni fingerprint")


@ORACLE
@given(key=st.text(max_size=80), vocab=st.integers(1, 2**40))
def test_omni_key_pad_equals_omnis_own_lines(omni, key, vocab):
    try:
        real: Any = omni.key_pad(key, vocab)
    except UnicodeEncodeError:
        real = "raises"
    try:
        ours: Any = omni_key_pad(key, vocab_size=vocab, sglang_version=omni.fork.version)
    except Exception:
        ours = "raises"
    assert ours == real


media = st.one_of(
    S.tensors(dtype=st.sampled_from([torch.float32, torch.int64, torch.uint8])),
    S.arrays(),
    st.binary(max_size=64),
    st.sampled_from(
        [
            "https://example.com/a.png",
            "http://x/y.wav",
            "file:///srv/a.png",
            "data:,abc",
            "s3://b/k",
        ]
    ),
    st.text(max_size=20),
)


@ORACLE
@given(items=st.lists(media, max_size=3), prefix=st.sampled_from(["image", "audio", "video"]))
def test_omni_media_keys_equal_omnis_cache_key_module(omni, items, prefix):
    v = omni.fork.version
    for item in items:
        assert omni_media_part(item, sglang_version=v) == omni.cache_key.hash_media_item(item)
    want = omni.cache_key.compute_media_cache_key(items, prefix=prefix)
    assert omni_media_cache_key(items, prefix=prefix, sglang_version=v) == want
    ctx = {"target_sr": 16000, "fps": None, "max_frames": len(items)}
    assert omni_contextualize(want, **ctx) == omni.ns["contextualize_cache_key"](want, **ctx)


def test_omni_pil_and_file_parts(omni, tmp_path):
    from PIL import Image

    img = Image.new("RGB", (5, 3), (1, 2, 3))
    f = tmp_path / "x.bin"
    f.write_bytes(os.urandom(20000))
    for item in (img, Image.new("L", (4, 4)), str(f), f, str(tmp_path / "missing")):
        assert omni_media_part(item, sglang_version=omni.fork.version) == (
            omni.cache_key.hash_media_item(item)
        )
