"""This project's own Triton kernels (pytest_mmhash.cuda.triton_kernels) against the numpy emulation and docs/spec.md §7.

The kernels run in Triton's CPU interpreter inside a worker subprocess started with
``TRITON_INTERPRET=1``: the variable only works when set before triton is imported, and this test
process must not import triton itself (other tests may want the compiled mode). A second subprocess,
without the interpreter, compiles the kernels for an sm_90 target (no GPU needed) and checks the
integer semantics Triton chose for the real device.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pytest_mmhash import UnhashableFeatureError
from pytest_mmhash import versions as V
from pytest_mmhash.cuda import emulation, on_device
from pytest_mmhash.cuda.triton_kernels import SCHEMES
from pytest_mmhash.features import plan_feature
from pytest_mmhash.schemes import ByteStream
from pytest_mmhash.strategies import TILE_BYTES, byte_counts

needs_triton = pytest.mark.skipif(find_spec("triton") is None, reason="triton is not installed")
EMULATION = {
    "gpu-tile-fmix32": emulation.gpu_tile_fmix32,
    "gpu-xor-int64": emulation.gpu_xor_int64,
    "gpu-xor-int32": emulation.gpu_xor_int32,
}

_WORKER = textwrap.dedent(
    """
    import os, pickle, sys
    assert os.environ["TRITON_INTERPRET"] == "1"
    import torch
    from pytest_mmhash.cuda.triton_kernels import hash_words_triton
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            raw, scheme, as_words = pickle.load(inp)
        except EOFError:
            break
        data = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        if as_words:
            data = torch.cat([data, torch.zeros(-len(raw) % 4, dtype=torch.uint8)]).view(torch.int32)
        try:
            reply = ("ok", hash_words_triton(data, scheme, len(raw)))
        except Exception as e:
            reply = ("err", type(e).__name__, str(e))
        pickle.dump(reply, out)
        out.flush()
    """
)


class InterpretedKernels:
    """A subprocess running the kernels under TRITON_INTERPRET=1; ``hash`` sends it one input."""

    def __init__(self) -> None:
        env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    def hash(self, raw: bytes, scheme: str, as_words: bool = False) -> int:
        """The kernel's hash of ``raw`` (passed as uint8 bytes, or as zero-padded int32 words)."""
        pickle.dump((raw, scheme, as_words), self.proc.stdin)
        self.proc.stdin.flush()
        reply = pickle.load(self.proc.stdout)
        if reply[0] == "err":
            if reply[1] == "UnhashableFeatureError":
                raise UnhashableFeatureError(reply[2])
            raise AssertionError(f"kernel raised {reply[1]}: {reply[2]}")
        return reply[1]

    def close(self) -> None:
        """End the worker."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def kernels():
    worker = InterpretedKernels()
    yield worker
    worker.close()


def _emulated(raw: bytes, scheme: str) -> int:
    return EMULATION[scheme](ByteStream.of(raw))


def _bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


A = torch.arange(1000, dtype=torch.float32).reshape(10, 100)
B7 = torch.arange(7, dtype=torch.bfloat16)
B8 = torch.arange(8, dtype=torch.bfloat16)
M = torch.cat([torch.ones(3), torch.arange(4)])  # [ones(3), arange(4)] after torch.cat promotion
I = torch.arange(20000, dtype=torch.int32)  # noqa: E741 - the spec's name
NEG = torch.full((3,), -1, dtype=torch.int32)
E = torch.empty(0)

# docs/spec.md §7.1 and §7.4: every CUDA-path vector (tile, int64, int32).
SPEC_GPU = [
    ("gpu-xor-int32", A, 1059033198886),
    ("gpu-xor-int32", B8, 3060212859),
    ("gpu-xor-int32", M, 5395639539),
    ("gpu-xor-int32", NEG, 3160725610),
    ("gpu-xor-int32", E, 0),
    ("gpu-xor-int64", A, -1899298369056619034),
    ("gpu-xor-int64", B8, 24157705902139387),
    ("gpu-xor-int64", M, -8123164300371323469),
    ("gpu-xor-int64", NEG, -2350094495124307798),
    ("gpu-xor-int64", E, 0),
    ("gpu-tile-fmix32", A, 14660478606431258911),
    ("gpu-tile-fmix32", B7, 7695844872513631682),
    ("gpu-tile-fmix32", I, 4588543558511414631),
    ("gpu-tile-fmix32", M, 17787887286460750404),
    ("gpu-tile-fmix32", E, 0),
    ("gpu-tile-fmix32", torch.tensor([1, 2, 3], dtype=torch.uint8), 8717714742718035935),
]


@needs_triton
@pytest.mark.parametrize("as_words", [False, True], ids=["bytes", "words"])
@pytest.mark.parametrize(
    "scheme,x,expected", SPEC_GPU, ids=lambda v: v if isinstance(v, str) else None
)
def test_spec_vectors(kernels, scheme, x, expected, as_words):
    assert kernels.hash(_bytes(x), scheme, as_words) == expected


@needs_triton
@pytest.mark.parametrize("scheme", ["gpu-xor-int32", "gpu-xor-int64"])
def test_xor_kernels_refuse_partial_words(kernels, scheme):
    with pytest.raises(UnhashableFeatureError, match="multiple of 4"):
        kernels.hash(_bytes(B7), scheme)


@st.composite
def word_inputs(draw) -> bytes:
    """Byte strings of small or tile-boundary sizes (up to 3 tiles), arbitrary or structured content."""
    n = draw(st.one_of(st.integers(0, 64), byte_counts(max_bytes=3 * TILE_BYTES)))
    kind = draw(st.sampled_from(["random", "zeros", "ones", "arange"]))
    if kind == "random":
        seed = draw(st.integers(0, 2**32 - 1))
        return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    if kind == "arange":
        return np.arange(n, dtype=np.uint32).view(np.uint8)[:n].tobytes() if n else b""
    return (b"\xff" if kind == "ones" else b"\0") * n


@needs_triton
@settings(max_examples=60, deadline=None)
@given(raw=word_inputs(), scheme=st.sampled_from(SCHEMES), as_words=st.booleans())
def test_kernel_equals_emulation(kernels, raw, scheme, as_words):
    event(f"tiles: {-(-len(raw) // TILE_BYTES)}")
    try:
        expected = _emulated(raw, scheme)
    except UnhashableFeatureError:
        with pytest.raises(UnhashableFeatureError):
            kernels.hash(raw, scheme, as_words)
        return
    assert kernels.hash(raw, scheme, as_words) == expected


_COMPILE = textwrap.dedent(
    """
    import json, sys
    try:  # only a Triton that cannot compile for a GPU here skips; our kernels' errors fail
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as e:
        print(f"no GPU compiler in this triton: {e}", file=sys.stderr)
        sys.exit(3)
    import pytest_mmhash.cuda.triton_kernels as K
    ks = K._kernels()
    words = {"words_ptr": "*i32", "n_words": "i64"}
    cases = {
        K.TILE: ({**words, "tiles_ptr": "*i64", "nb": "i32", "TILE_WORDS": "constexpr", "BLOCK": "constexpr"},
                 {"TILE_WORDS": 8192, "BLOCK": K.BLOCK}),
        K.XOR64: ({**words, "sums_ptr": "*i64", "BLOCK": "constexpr"}, {"BLOCK": K.BLOCK}),
        K.XOR32: ({**words, "sums_ptr": "*i64", "BLOCK": "constexpr"}, {"BLOCK": K.BLOCK}),
    }
    out = {}
    for name, (sig, constexprs) in cases.items():
        sig = {p: sig[p] for p in ks[name].arg_names}
        ttir = triton.compile(ASTSource(ks[name], sig, constexprs), target=GPUTarget("cuda", 90, 32)).asm["ttir"]
        out[name] = ttir
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def compiled_ttir() -> dict[str, str]:
    """The kernels' Triton IR as compiled for an sm_90 GPU (no GPU needed; skips only where this
    Triton has no GPU compiler; a compile error in the kernels fails)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run(
        [sys.executable, "-c", _COMPILE], capture_output=True, text=True, env=env, timeout=300
    )
    if proc.returncode == 3:
        pytest.skip(f"triton cannot compile for sm_90 here: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"compiling the kernels for sm_90 failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _i32(c: int) -> int:
    return c - (1 << 32) if c >> 31 else c


def _has_constant(ir: str, value: int, width: str) -> bool:
    """True when the IR materialises ``value`` as a ``width`` scalar or splat constant."""
    return re.search(rf"(?<![\w-]){value}>? : (?:tensor<\d+x)?{width}\b", ir) is not None


@needs_triton
def test_compiled_tile_kernel_is_unsigned_32_bit(compiled_ttir):
    """On the GPU, every shift in the tile kernel must be logical and every spec constant present."""
    ir = compiled_ttir["gpu-tile-fmix32"]
    assert "arith.shrui" in ir and "arith.shrsi" not in ir
    for c in (0x243F6A88, 0x02C74EE7, 0x27D4EB2D, 0x165667B1, 0x85EBCA6B, 0xC2B2AE35):
        assert _has_constant(ir, _i32(c), "i32"), hex(c)


@needs_triton
@pytest.mark.parametrize(
    "scheme,width,constants",
    [
        ("gpu-xor-int64", "i64", (-7046029288634856825, -4417276706812531889, 6666971822409327048)),
        ("gpu-xor-int32", "i32", (-2048144761, 668265295, -1572920888)),
    ],
)
def test_compiled_xor_kernels_are_signed(compiled_ttir, scheme, width, constants):
    """On the GPU, the xor kernels' shifts must be arithmetic and their constants of the right width."""
    ir = compiled_ttir[scheme]
    assert "arith.shrsi" in ir and "arith.shrui" not in ir
    for c in constants:
        assert _has_constant(ir, c, width), c


def test_kernels_module_imports_without_triton():
    """Without triton: the engine imports, the CUDA path falls back to emulation, kernels say why."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None  # any import of triton now fails
        import torch
        from pytest_mmhash import hash_feature
        from pytest_mmhash.cuda import triton_kernels as K
        assert not K.available()
        h = hash_feature(torch.arange(1000.0), sglang_version="0.5.23", device="cuda").hash
        try:
            K.hash_words_triton(torch.zeros(4, dtype=torch.uint8), K.TILE, 4)
        except K.TritonUnavailableError as e:
            assert "pip install" in str(e)
        else:
            raise AssertionError("no error without triton")
        print(h)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == emulation.gpu_tile_fmix32(ByteStream.of(_bytes(torch.arange(1000.0))))


def test_import_touches_neither_triton_nor_cuda():
    code = (
        "import sys, torch, pytest_mmhash, pytest_mmhash.cuda.on_device, pytest_mmhash.cuda.triton_kernels, "
        "pytest_mmhash.strategies; print('triton' in sys.modules, torch.cuda.is_initialized())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cpu_tensors_fall_back_to_emulation(scheme):
    """``device="cuda"`` on CPU tensors: the on-device hook declines, so the emulation is used."""
    plan = plan_feature(torch.arange(12.0), V.resolve("0.5.23"), "cuda")
    assert on_device.try_hash_on_device(plan, scheme) is None
