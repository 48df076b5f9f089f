"""Every test vector of docs/spec.md §7.1-§7.5 (computed by real SGLang code)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from pytest_mmhash import (
    UnhashableFeatureError,
    from_hash,
    from_identity,
    hash_feature,
    namespaced,
)
from pytest_mmhash.schemes import pad
from pytest_mmhash.spec_vectors import HASHES, inputs


def A():
    return inputs()["A"]


def B7():
    return inputs()["B7"]


def B8():
    return inputs()["B8"]


def M():
    return inputs()["M"]


def I():  # noqa: E743 - the spec's name
    return inputs()["I"]


# A release of each era: which scheme a (version, device) pair selects.
F32_MOD30, F32_SHIFT, RAW_SHIFT = ("0.4.10", "cpu"), ("0.5.9", "cpu"), ("0.5.10", "cpu")
INT32, INT64 = ("0.4.6.post5", "cuda"), ("0.4.10", "cuda")
TILE_MOD30, TILE_SHIFT = ("0.5.5", "cuda"), ("0.5.22", "cuda")

# (scheme, input, pad-mod30, pad-shift-1e6): docs/spec.md §7.1; the hash is HASHES[scheme][input].
TABLE = [
    ("sha256-f32", A, 696416288, 697416288),
    ("sha256-f32", B7, 239428252, 240428252),
    ("sha256-f32", M, 996519595, 997519595),
    ("sha256-raw", A, None, 697416288),
    ("sha256-raw", B7, None, 1020272697),
    ("sha256-raw", M, None, 688249829),
    ("gpu-xor-int32", A, 323760422, None),
    ("gpu-xor-int32", B8, 912729211, None),
    ("gpu-xor-int32", M, 26930419, None),
    ("gpu-xor-int64", A, 1038534118, None),
    ("gpu-xor-int64", B8, 920823803, None),
    ("gpu-xor-int64", M, 809211315, None),
    ("gpu-tile-fmix32", A, 898402591, 899402591),
    ("gpu-tile-fmix32", B7, 548386242, 549386242),
    ("gpu-tile-fmix32", I, 695913831, 696913831),
]
MOD30_AT = {
    "sha256-f32": F32_MOD30,
    "gpu-xor-int32": INT32,
    "gpu-xor-int64": INT64,
    "gpu-tile-fmix32": TILE_MOD30,
}
SHIFT_AT = {"sha256-f32": F32_SHIFT, "sha256-raw": RAW_SHIFT, "gpu-tile-fmix32": TILE_SHIFT}


@pytest.mark.parametrize(
    "scheme,make,mod30,shift", TABLE, ids=lambda x: getattr(x, "__name__", None)
)
def test_table(scheme, make, mod30, shift):
    h = HASHES[scheme][make.__name__]
    if mod30 is not None:
        v, d = MOD30_AT[scheme]
        r = hash_feature(make(), sglang_version=v, device=d)
        assert (r.hash_scheme, r.hash, r.pad_values, r.pad_scheme) == (
            scheme,
            h,
            (mod30,),
            "pad-mod30",
        )
    if shift is not None:
        v, d = SHIFT_AT[scheme]
        r = hash_feature(make(), sglang_version=v, device=d)
        assert (r.hash_scheme, r.hash, r.pad_values, r.pad_scheme) == (
            scheme,
            h,
            (shift,),
            "pad-shift-1e6",
        )


WIDE = [
    (
        "cpu",
        A,
        [1943739351697803261, 2218631454615547932, 2555005557022908026, 3367784818563980755],
    ),
    (
        "cpu",
        B7,
        [566527132381785179, 186557374693928239, 3877462897444374262, 2624099577502521545],
    ),
    (
        "cpu",
        M,
        [3319508214618362352, 2131418205219196081, 1490506654342658287, 2639542910447886526],
    ),
    (
        "cuda",
        A,
        [1984757153445888498, 1178681173285974006, 513223713106534960, 3770766702899660219],
    ),
    (
        "cuda",
        B7,
        [2642543058763123241, 2096580958913303794, 2370072151228103229, 299015530752833871],
    ),
    (
        "cuda",
        I,
        [1397890412235208909, 3675479225343482037, 3372739040846971164, 2669494158454809393],
    ),
]


@pytest.mark.parametrize("device,make,pads", WIDE, ids=lambda x: getattr(x, "__name__", None))
def test_wide4(device, make, pads):
    h = HASHES["sha256-raw" if device == "cpu" else "gpu-tile-fmix32"][make.__name__]
    r = hash_feature(make(), sglang_version="0.5.23", device=device)
    assert (r.hash, list(r.pad_values), r.pad_value) == (h, pads, pads[0])
    assert r.pad_scheme == "pad-wide4" and r.modifiers == ("mask64",)


def test_wide4_identity_and_set_hash():
    ident = from_identity(hashlib.sha256(b"identity").digest(), sglang_version="0.5.23")
    assert ident.hash == 7538861272318920668
    assert list(ident.pad_values) == [
        2346459779767466503,
        607141024133249185,
        2165520880982892944,
        721568320551594429,
    ]
    assert from_hash(-1, sglang_version="0.5.23").hash == 18446744073709551615
    assert from_hash(-2, sglang_version="0.5.19").hash == 18446744073709551614
    assert list(from_hash(0, sglang_version="0.5.23").pad_values) == [
        3397727234245131147,
        2304395387532635524,
        2205624834353178515,
        3623825934275559232,
    ]


CPU_BOTH = [
    (lambda: np.arange(12, dtype=np.uint8).reshape(3, 4), 18443271527642641981),
    (lambda: b"hello", 3238736544897475342),
    (lambda: torch.empty(0), 16406829232824261652),
    (lambda: torch.arange(12.0).reshape(3, 4).t(), 6546168000006154403),
    (lambda: np.arange(12, dtype=np.float32).reshape(3, 4).T, 6546168000006154403),
    (I, HASHES["sha256-raw"]["I"]),
]


@pytest.mark.parametrize("make,h", CPU_BOTH)
@pytest.mark.parametrize("version", ["0.4.5.post1", "0.5.9", "0.5.10", "0.5.23"])
def test_cpu_both_schemes(make, h, version):
    assert hash_feature(make(), sglang_version=version, device="cpu").hash == h


@pytest.mark.parametrize(
    "version,make,h",
    [
        ("0.5.9", B8, HASHES["sha256-f32"]["B8"]),
        (
            "0.5.9",
            lambda: [torch.ones(2, dtype=torch.bfloat16), torch.ones(2)],
            17778824384500168909,
        ),
        (
            "0.5.9",
            lambda: [torch.ones(2, dtype=torch.float16), torch.ones(2, dtype=torch.bfloat16)],
            17778824384500168909,
        ),
        ("0.5.10", B8, HASHES["sha256-raw"]["B8"]),
        (
            "0.5.10",
            lambda: [torch.ones(2, dtype=torch.bfloat16), torch.ones(2)],
            15462451535851914382,
        ),
    ],
)
def test_cpu_scheme_specific(version, make, h):
    assert hash_feature(make(), sglang_version=version, device="cpu").hash == h


def test_gpu_extras():
    assert (
        hash_feature(M(), sglang_version="0.5.5", device="cuda").hash
        == HASHES["gpu-tile-fmix32"]["M"]
    )
    for v in ("0.4.6.post5", "0.4.10", "0.5.5"):
        assert hash_feature(torch.empty(0), sglang_version=v, device="cuda").pad_values == (0,)
    assert hash_feature(torch.empty(0), sglang_version="0.5.9", device="cuda").pad_values == (
        1000000,
    )
    big = (torch.arange(2**23 + 5, dtype=torch.int64) * 2654435761 % 2**31).to(torch.int32)
    assert hash_feature(big, sglang_version="0.5.5", device="cuda").hash == 1897158659621512654
    neg = torch.full((3,), -1, dtype=torch.int32)
    assert hash_feature(neg, sglang_version="0.4.10", device="cuda").hash == -2350094495124307798
    assert hash_feature(neg, sglang_version="0.4.6.post5", device="cuda").hash == 3160725610
    u8 = hash_feature(
        torch.tensor([1, 2, 3], dtype=torch.uint8), sglang_version="0.5.5", device="cuda"
    )
    u8_padded = hash_feature(
        torch.tensor([1, 2, 3, 0], dtype=torch.uint8), sglang_version="0.5.5", device="cuda"
    )
    assert u8.hash == u8_padded.hash == 8717714742718035935


def test_ns_mix_v1():
    ns = "sha256:" + hashlib.sha256(b"ns").hexdigest()
    assert pad.ns_mix_v1(0, ns) == 16630850571804834283
    assert pad.ns_mix_v1(1, ns) == 2726865622543156970
    feature_hash = hash_feature(A(), sglang_version="0.5.23", device="cpu").hash
    assert namespaced(feature_hash, ns, sglang_version="0.5.23").hash == 12715356114013962371


@pytest.mark.parametrize("version", ["0.4.6.post5", "0.4.7", "0.4.10.post2"])
def test_int_kernels_raise_on_odd_bytes(version):
    with pytest.raises(UnhashableFeatureError, match="multiple of 4"):
        hash_feature(B7(), sglang_version=version, device="cuda")
