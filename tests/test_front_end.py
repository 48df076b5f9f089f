"""SGLang's hash_feature dispatch (docs/spec.md §3): what hashes, on which path, and what raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_mmhash import UnhashableFeatureError, UnsupportedDeviceError, hash_feature
from pytest_mmhash.features import flatten_nested_list


def h(x, v="0.5.23", d=None):
    return hash_feature(x, sglang_version=v, device=d).hash


def test_flatten_descends_lists_only():
    t = (1, 2)
    assert flatten_nested_list([1, [2, [3, t]], [], 4]) == [1, 2, 3, t, 4]


@pytest.mark.parametrize("v", ["0.5.9", "0.5.23"])
@pytest.mark.parametrize("d", ["cpu", "cuda"])
def test_nested_list_is_flattened_in_order(v, d):
    a, b, c = torch.arange(3.0), torch.arange(4.0), torch.arange(5.0)
    assert h([a, [b, c]], v, d) == h([a, b, c], v, d) == h(torch.cat([a, b, c]), v, d)


@pytest.mark.parametrize("v,err", [("0.5.13", "IndexError"), ("0.5.14", "TypeError")])
def test_empty_list(v, err):
    with pytest.raises(UnhashableFeatureError, match=err):
        h([], v)


@pytest.mark.parametrize(
    "feature",
    [
        [np.zeros(3)],
        [[torch.ones(1)], [torch.ones(1)]],
        (torch.ones(1),),
        "text",
        3,
        None,
        {"a": 1},
        [torch.ones(1), np.zeros(1)],
    ],
)
def test_sglang_raises(feature):
    with pytest.raises(UnhashableFeatureError):
        h(feature)


def test_first_element_tensor_then_nested_list_works():
    t1, t2 = torch.ones(2), torch.zeros(2)
    assert h([t1, [t2]]) == h([t1, t2])


def test_object_array_refused():
    with pytest.raises(UnhashableFeatureError, match="memory addresses"):
        h(np.array([1, "a"], dtype=object))


def test_numpy_equals_tensor_same_dtype():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert h(a) == h(torch.from_numpy(a)) == h(np.asfortranarray(a))


def test_big_endian_numpy_hashes_stored_bytes_on_cpu():
    a = np.arange(6, dtype=">f4")
    from pytest_mmhash.schemes.cpu import digest8

    assert h(a, d="cpu") == digest8(a.tobytes())
    # "on CUDA" a numpy feature is the same values as a native tensor
    assert h(a, d="cuda") == h(torch.arange(6, dtype=torch.float32), d="cuda")


def test_non_contiguous_equals_contiguous_everywhere():
    x = torch.arange(4096, dtype=torch.float16).reshape(64, 64)[:, ::3].t()
    assert not x.is_contiguous()
    for v in ("0.4.10", "0.5.9", "0.5.23"):
        for d in ("cpu", "cuda"):
            assert h(x, v, d) == h(x.contiguous(), v, d)


def test_zero_dim_is_one_element():
    assert h(torch.tensor(3.0)) == h(torch.tensor([3.0]))


def test_float8_cpu_raises_before_raw_and_hashes_after():
    x = torch.zeros(4, dtype=torch.float8_e4m3fn)
    with pytest.raises(UnhashableFeatureError, match="unsupported ScalarType"):
        h(x, "0.5.9", "cpu")
    assert h(x, "0.5.10", "cpu") == h(torch.zeros(4, dtype=torch.uint8), "0.5.10", "cpu")
    assert isinstance(h(x, "0.5.9", "cuda"), int)


def test_gpu_path_promotes_mixed_lists_cpu_raw_does_not():
    m = [torch.ones(2, dtype=torch.bfloat16), torch.ones(2)]
    assert h(m, "0.5.23", "cuda") == h(torch.ones(4), "0.5.23", "cuda")
    assert h(m, "0.5.23", "cpu") != h(torch.ones(4), "0.5.23", "cpu")


def test_bytes_like_inputs():
    assert h(b"hello") == h(bytearray(b"hello")) == h(memoryview(b"hello"))
    assert hash_feature(b"hello", device="cuda").device == "cpu"  # bytes never reach the GPU


def test_unknown_device():
    with pytest.raises(UnsupportedDeviceError, match="'tpu'"):
        hash_feature(b"x", device="tpu")


def test_old_cuda_path_is_cpu_scheme():
    r = hash_feature(
        torch.arange(8, dtype=torch.bfloat16), sglang_version="0.4.6.post4", device="cuda"
    )
    assert (r.device, r.hash_scheme) == ("cuda", "sha256-f32")
    assert r.hash == h(torch.arange(8, dtype=torch.float32), "0.4.6.post4", "cpu")


def test_requires_grad_and_hex():
    x = torch.arange(4.0, requires_grad=True)
    r = hash_feature(x, sglang_version="0.4.10", device="cuda")
    assert r.hex == format(r.hash & (2**64 - 1), "016x") and len(r.hex) == 16


@pytest.mark.parametrize("version", ["0.4.10", "0.5.9", "0.5.10", "0.5.23"])
def test_numpy_layouts_measured_with_real_sglang(version):
    # Values from real sglang hash_feature (docs/spec.md §7.6, oracle harness): a big-endian
    # array hashes its stored bytes (np.ascontiguousarray keeps the byte order), Fortran == C.
    assert h(np.arange(6, dtype=">f4"), version, "cpu") == 18127573984665611405
    fortran = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert h(fortran, version, "cpu") == 3017843382285002014


def test_edge_cases_measured_with_real_sglang_0_5_23():
    # Values and raises observed with real sglang 0.5.23 (pytest_mmhash.oracle.driver.real_item).
    strided = torch.arange(2.0)[::2]  # one element, stride 2: .view(torch.uint8) raises on CPU
    with pytest.raises(UnhashableFeatureError, match="stride"):
        h(strided, "0.5.23", "cpu")
    assert h(strided, "0.5.23", "cuda") == 4437072937787649834
    f8_mix = [torch.zeros(2, dtype=torch.float8_e4m3fn), torch.ones(2)]
    assert h(f8_mix, "0.5.23", "cpu") == 15658272530139531787  # per part, no promotion
    with pytest.raises(UnhashableFeatureError, match="Promotion for Float8"):
        h(f8_mix, "0.5.23", "cuda")  # torch.cat cannot promote float8
    bf16_int16 = [torch.zeros(1, dtype=torch.bfloat16), torch.tensor([257], dtype=torch.int16)]
    assert h(bf16_int16, "0.5.23", "cuda") == 13141427535651213687


def test_bytes_read_in_place_in_one_piece_unless_copied_or_mapped(tmp_path, monkeypatch):
    """A contiguous CPU tensor or in-memory array that needs no conversion reaches SHA-256 as one
    buffer where it lies (per-chunk torch calls cost ~2% of the hash); converted bytes and a
    memory-mapped ``.npy`` (whose pages are dropped as it is read) stay in bounded chunks."""
    from pytest_mmhash import features as F
    from pytest_mmhash import versions as V

    monkeypatch.setattr(F, "CHUNK_BYTES", 64)

    def pieces(x, version="0.5.23"):
        plan = F.plan_feature(x, V.resolve(version), None)
        return [np.frombuffer(p, np.uint8) for p in plan.stream.pieces(0)]

    t = torch.arange(1024, dtype=torch.float32)
    [piece] = pieces(t)
    assert piece.ctypes.data == t.data_ptr() and piece.nbytes == 4096
    a = t.numpy().copy()
    [piece] = pieces(a)
    assert piece.ctypes.data == a.ctypes.data
    np.save(tmp_path / "a.npy", a)
    assert [p.nbytes for p in pieces(np.load(tmp_path / "a.npy", mmap_mode="r"))] == [64] * 64
    bf16 = t.to(torch.bfloat16)  # sha256-f32 widens bf16 to float32 chunk by chunk
    assert [p.nbytes for p in pieces(bf16, "0.5.9")] == [64] * 64
    half = [t.to(torch.float16), torch.tensor(1.0, dtype=torch.bfloat16)]  # cat: float32
    assert [p.nbytes for p in pieces(half, "0.5.9")] == [64] * 64 + [4]
    half[0][100] = float("nan")  # a NaN is converted in one piece, as torch.cat converts it
    assert [p.nbytes for p in pieces(half, "0.5.9")] == [4096, 4]


def test_content_sha256_is_the_digest_of_the_bytes_hashed():
    """CPU-path results carry the SHA-256 their hash is cut from; other paths carry none."""
    import hashlib

    from pytest_mmhash import hash_feature

    x = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4)
    raw = hash_feature(x, sglang_version="0.5.23", device="cpu")  # sha256-raw: the bf16 bytes
    assert raw.content_sha256 == hashlib.sha256(x.view(torch.uint8).numpy().tobytes()).hexdigest()
    widened = hash_feature(x, sglang_version="0.4.10", device="cpu")  # sha256-f32: widened first
    assert widened.content_sha256 == hashlib.sha256(x.float().numpy().tobytes()).hexdigest()
    for r in (raw, widened):
        assert int(r.content_sha256[:16], 16) == r.hash
    assert hash_feature(x, sglang_version="0.5.23", device="cuda").content_sha256 is None
