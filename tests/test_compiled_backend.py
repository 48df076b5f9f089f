"""The numba backend is bit-exact with the numpy reference backend (skipped without numba)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from pytest_mmhash import BadArgumentError, hash_feature  # noqa: E402
from pytest_mmhash.cuda import constants, emulation, numba_backend  # noqa: E402
from pytest_mmhash.schemes import ByteStream  # noqa: E402

torch = pytest.importorskip("torch")

REF = emulation.NumpyBackend()
FAST = numba_backend._numba_backend()
TILE = constants.TILE_WORDS
WRAP = 2**32

#: Word counts: empty, partial tiles, whole tiles, whole tiles plus a partial one.
sizes = st.one_of(
    st.integers(0, 3 * TILE + 5), st.sampled_from([1, TILE - 1, TILE, TILE + 1, 2 * TILE])
)
#: Global start indices of a block: small, near the 2^31 and 2^32 wraps, and far beyond.
word_starts = st.one_of(
    st.integers(0, 4 * TILE),
    st.integers(2**31 - 4 * TILE, 2**31 + 4 * TILE),
    st.integers(WRAP - 4 * TILE, WRAP + 4 * TILE),
    st.integers(0, 2**40),
)


def _words(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**32, size=n, dtype=np.uint32)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=sizes, start=word_starts, nbytes=st.integers(0, 2**40))
def test_tile_sum(seed: int, n: int, start: int, nbytes: int) -> None:
    w = _words(seed, n)
    start -= start % TILE
    assert FAST.tile_sum(w, start, nbytes) == REF.tile_sum(w, start, nbytes)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=sizes, start=word_starts)
def test_xor64_sum(seed: int, n: int, start: int) -> None:
    w = _words(seed, n)
    assert (FAST.xor64_sum(w, start) - REF.xor64_sum(w, start)) % 2**64 == 0


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=sizes, start=word_starts)
def test_xor32_sum(seed: int, n: int, start: int) -> None:
    w = _words(seed, n)
    assert FAST.xor32_sum(w, start) == REF.xor32_sum(w, start)


@pytest.mark.parametrize("word", [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
def test_extreme_words(word: int) -> None:
    w = np.full(TILE + 3, word, dtype=np.uint32)
    for start in (0, WRAP - TILE, 2**31 - TILE):
        assert FAST.tile_sum(w, start, 4 * w.size) == REF.tile_sum(w, start, 4 * w.size)
        assert (FAST.xor64_sum(w, start) - REF.xor64_sum(w, start)) % 2**64 == 0
        assert FAST.xor32_sum(w, start) == REF.xor32_sum(w, start)


def test_unaligned_and_readonly_blocks() -> None:
    raw = bytes(_words(7, 2 * TILE + 1).view(np.uint8)) + b"\x01\x02\x03"
    w = np.frombuffer(memoryview(raw)[3 : 3 + 8 * TILE], dtype="<u4")  # read-only, unaligned
    assert FAST.tile_sum(w, TILE, 123) == REF.tile_sum(w, TILE, 123)
    assert FAST.xor32_sum(w, 5) == REF.xor32_sum(w, 5)


@pytest.mark.parametrize("threads", ["1", "16"])
@pytest.mark.parametrize("method", ["tile_sum", "xor64_sum", "xor32_sum"])
def test_sum_blocks_matches_reference(
    method: str, threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMHASH_THREADS", threads)
    stream = ByteStream.of(_words(3, 3 * emulation.BLOCK_WORDS // 2 + 77).tobytes())
    args = (stream.nbytes,) if method == "tile_sum" else ()
    words = FAST.block_words(emulation.BLOCK_WORDS)
    fast = FAST.sum_blocks(method, emulation.word_blocks(stream, words), *args)
    ref = REF.sum_blocks(method, emulation.word_blocks(stream), *args)
    assert (fast - ref) % 2**64 == 0


@pytest.mark.parametrize("threads", [1, 2, 3, 16, 64, 255, 256, 10_000])
def test_bytes_in_flight_bounded_on_any_thread_count(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks shrink (whole tiles) as workers grow: the window never exceeds IN_FLIGHT_BYTES."""
    monkeypatch.setenv("MMHASH_THREADS", str(threads))
    words = FAST.block_words(emulation.BLOCK_WORDS)
    workers = numba_backend.workers()
    assert words % TILE == 0 and TILE <= words <= emulation.BLOCK_WORDS
    assert numba_backend.BLOCKS_PER_WORKER * workers * 4 * words <= numba_backend.IN_FLIGHT_BYTES
    assert workers == min(threads, numba_backend.MAX_WORKERS)
    assert FAST.held_bytes(words) == (numba_backend.BLOCKS_PER_WORKER * workers + 1) * 4 * words
    if threads <= 2:  # a small machine keeps the largest blocks
        assert words == emulation.BLOCK_WORDS


@pytest.mark.parametrize("value", ["0", "-3", "two", "1.5"])
def test_bad_thread_count_is_a_clear_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMHASH_THREADS", value)
    with pytest.raises(BadArgumentError, match=f"MMHASH_THREADS='{value}': not a positive integer"):
        numba_backend.workers()


@pytest.fixture
def compiled_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the numba backend for every input size."""
    monkeypatch.setattr(numba_backend, "MIN_BYTES", 0)


A = torch.arange(1000, dtype=torch.float32).reshape(10, 100)
B7 = torch.arange(7, dtype=torch.bfloat16)
B8 = torch.arange(8, dtype=torch.bfloat16)
M = [torch.ones(3), torch.arange(4)]
I = torch.arange(20000, dtype=torch.int32)  # noqa: E741

#: Spec section 5 GPU vectors: (release, feature, hash).
GPU_VECTORS = [
    ("0.4.6.post5", A, 1059033198886),
    ("0.4.6.post5", B8, 3060212859),
    ("0.4.6.post5", M, 5395639539),
    ("0.4.6.post5", torch.full((3,), -1, dtype=torch.int32), 3160725610),
    ("0.4.10", A, -1899298369056619034),
    ("0.4.10", B8, 24157705902139387),
    ("0.4.10", M, -8123164300371323469),
    ("0.4.10", torch.full((3,), -1, dtype=torch.int32), -2350094495124307798),
    ("0.5.23", A, 14660478606431258911),
    ("0.5.23", B7, 7695844872513631682),
    ("0.5.23", I, 4588543558511414631),
    ("0.5.23", M, 17787887286460750404),
    ("0.5.23", torch.empty(0), 0),
]


@pytest.mark.parametrize(("version", "feature", "expected"), GPU_VECTORS)
def test_spec_gpu_vectors(
    compiled_always: None, version: str, feature: object, expected: int
) -> None:
    assert hash_feature(feature, sglang_version=version, device="cuda").hash == expected


def test_spec_multi_block_tile_vector(compiled_always: None) -> None:
    t = (torch.arange(2**23 + 5, dtype=torch.int64) * 2654435761 % 2**31).to(torch.int32)
    assert hash_feature(t, sglang_version="0.5.23", device="cuda").hash == 1897158659621512654


def test_small_inputs_skip_numba_until_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert numba_backend.backend(numba_backend.MIN_BYTES) is FAST
    assert numba_backend.backend(1) is FAST  # already loaded: no reason to skip it
    monkeypatch.setattr(
        numba_backend._numba_backend, "cache_info", lambda: type("I", (), {"currsize": 0})()
    )
    assert numba_backend.backend(1) is None
