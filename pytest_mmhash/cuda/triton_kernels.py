"""This project's own Triton kernels for SGLang's CUDA-path schemes, written from docs/spec.md §5.

They are an independent second implementation beside the numpy emulation in
:mod:`.emulation` (their constants are spelled out here again on purpose, so a
typo in one cannot hide in the other), and they hash CUDA tensors where they already are.

triton is imported on first use, never at import time. The kernels run on a CUDA device, or on
CPU tensors in Triton's interpreter: ``TRITON_INTERPRET=1`` must be in the environment *before*
anything imports triton (export it in the shell, or start a subprocess with it; setting it later in
a process that already imported triton has no effect).

Design: per-word mixing and per-tile (or per-block) sums run in Triton; the few per-tile / per-block
partial sums are added on the host with Python integers (mod 2^64), where wrapping is explicit.
"""

from __future__ import annotations

import functools
from typing import Any

from ..ints import M32, to_signed
from .constants import splitmix64_finalize
from .emulation import require_whole_words

TILE = "gpu-tile-fmix32"
XOR64 = "gpu-xor-int64"
XOR32 = "gpu-xor-int32"
SCHEMES = (TILE, XOR64, XOR32)

# Constants the kernels read. Compiled Triton only reads globals that are ``tl.constexpr``, so
# _kernels() rebinds each of these names to one; host code never uses them.

# gpu-tile-fmix32 (docs/spec.md §5.4). Triton types a Python int literal below 2^31 as int32 and one in
# [2^31, 2^32) as uint32; combined with uint32 tensors, every step below is uint32 wrap.
_TILE_WORDS = 8192
_TILE_S1 = 0x243F6A88
_TILE_S2 = 0x02C74EE7  # ((0x243F6A88 * 0x9E3779B1) ^ 0xDEADBEEF) mod 2^32
_TILE_A = 0x27D4EB2D
_TILE_B = 0x165667B1
_FMIX_C1 = 0x85EBCA6B
_FMIX_C2 = 0xC2B2AE35

# gpu-xor-int64 (docs/spec.md §5.2): xxHash64 primes read as signed int64 (so Triton types them int64).
_X64_P1 = -7046029288634856825  # 0x9E3779B185EBCA87
_X64_P2 = -4417276706812531889  # 0xC2B2AE3D27D4EB4F
_X64_K = 6666971822409327048  # P1 ^ P2

# gpu-xor-int32 (docs/spec.md §5.3): Triton 3.2.0 kept the low 32 bits of those constants, as int32. Here they
# are in-range int32 literals from the start, so every Triton version computes the same int32 wrap.
_X32_P1 = -2048144761  # 0x85EBCA87
_X32_P2 = 668265295  # 0x27D4EB4F
_X32_K = -1572920888  # 0xA23F21C8

_LOW32 = 0xFFFFFFFF
_KERNEL_CONSTANTS = (
    "_TILE_S1",
    "_TILE_S2",
    "_TILE_A",
    "_TILE_B",
    "_FMIX_C1",
    "_FMIX_C2",
    "_LOW32",
    "_X64_P1",
    "_X64_P2",
    "_X64_K",
    "_X32_P1",
    "_X32_P2",
    "_X32_K",
)

#: Words per inner step of the tile kernel and per program of the xor kernels (value-neutral).
BLOCK = 1024

# Names the lazily built kernels resolve at compile time (module globals, filled by _kernels()).
tl: Any = None
_fmix32: Any = None
_rotl32: Any = None


class TritonUnavailableError(RuntimeError):
    """triton is not installed, so this project's Triton kernels cannot run."""


def available() -> bool:
    """True when triton can be imported (does not import it, nor touch CUDA)."""
    import importlib.util
    import sys

    if "triton" in sys.modules:
        return sys.modules["triton"] is not None  # None: imports of triton are blocked
    return importlib.util.find_spec("triton") is not None


def _fmix32_py(x: tl.tensor) -> tl.tensor:
    """murmur3 fmix32 on uint32 (logical shifts, wrapping multiplies)."""
    x ^= x >> 16
    x = x * _FMIX_C1
    x ^= x >> 13
    x = x * _FMIX_C2
    x ^= x >> 16
    return x


def _rotl32_py(x: tl.tensor, r: tl.constexpr) -> tl.tensor:
    """Rotate a uint32 left by ``r`` bits."""
    return (x << r) | (x >> (32 - r))


def _tile_kernel_py(
    words_ptr: tl.tensor,
    tiles_ptr: tl.tensor,
    n_words: tl.tensor,
    nb: tl.tensor,
    TILE_WORDS: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    """One program per tile: T = fmix32(sum k1 ^ NB) << 32 | fmix32(sum k2 ^ NB), stored as int64 bits."""
    base = tl.program_id(0).to(tl.int64) * TILE_WORDS
    acc1 = tl.zeros([BLOCK], dtype=tl.uint64)
    acc2 = tl.zeros([BLOCK], dtype=tl.uint64)
    for off in tl.static_range(0, TILE_WORDS, BLOCK):
        idx = base + off + tl.arange(0, BLOCK)
        mask = idx < n_words
        w = tl.load(words_ptr + idx, mask=mask, other=0).to(tl.uint32, bitcast=True)
        i = idx.to(tl.uint32)  # the global word index mod 2^32
        k1 = _fmix32(w ^ ((i * _TILE_A + _TILE_S1) ^ _rotl32(i, 15)))
        k2 = _fmix32(w ^ ((i * _TILE_B + _TILE_S2) ^ _rotl32(i, 13)))
        acc1 += tl.where(mask, k1, 0).to(tl.uint64)
        acc2 += tl.where(mask, k2, 0).to(tl.uint64)
    s1 = (tl.sum(acc1, axis=0) & _LOW32).to(tl.uint32)
    s2 = (tl.sum(acc2, axis=0) & _LOW32).to(tl.uint32)
    nbu = nb.to(tl.uint32, bitcast=True)
    t = (_fmix32(s1 ^ nbu).to(tl.uint64) << 32) | _fmix32(s2 ^ nbu).to(tl.uint64)
    tl.store(tiles_ptr + tl.program_id(0), t.to(tl.int64, bitcast=True))


def _xor64_kernel_py(
    words_ptr: tl.tensor, sums_ptr: tl.tensor, n_words: tl.tensor, BLOCK: tl.constexpr
) -> None:
    """One program per block: the wrapping int64 sum of the gpu-xor-int64 per-word values."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n_words
    x = tl.load(words_ptr + idx, mask=mask, other=0).to(tl.int64)  # sign-extends the int32 word
    x = x ^ (idx + _X64_P2)
    x = x * _X64_P1
    x ^= x >> 16  # arithmetic: x is signed
    x = x * _X64_K
    x ^= x >> 13
    tl.store(sums_ptr + tl.program_id(0), tl.sum(tl.where(mask, x, 0), axis=0))


def _xor32_kernel_py(
    words_ptr: tl.tensor, sums_ptr: tl.tensor, n_words: tl.tensor, BLOCK: tl.constexpr
) -> None:
    """One program per block: the exact int64 sum of the int32-wrapped gpu-xor-int32 values."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = idx < n_words
    x = tl.load(words_ptr + idx, mask=mask, other=0)  # int32
    x = x ^ (idx.to(tl.int32) + _X32_P2)
    x = x * _X32_P1
    x ^= x >> 16  # arithmetic: x is signed
    x = x * _X32_K
    x ^= x >> 13
    tl.store(sums_ptr + tl.program_id(0), tl.sum(tl.where(mask, x, 0).to(tl.int64), axis=0))


@functools.cache
def _kernels() -> dict[str, Any]:
    """Import triton and JIT the kernels (once); binds the helpers they call into module globals."""
    try:
        import triton
        import triton.language as language
    except ImportError as e:
        raise TritonUnavailableError(
            f"pytest-mmhash's Triton kernels need triton (pip install 'pytest-mmhash[triton]'): {e}"
        ) from None
    global tl, _fmix32, _rotl32
    tl = language
    module = globals()
    for name in _KERNEL_CONSTANTS:
        module[name] = language.constexpr(module[name])
    _fmix32 = triton.jit(_fmix32_py)
    _rotl32 = triton.jit(_rotl32_py)
    return {
        TILE: triton.jit(_tile_kernel_py),
        XOR64: triton.jit(_xor64_kernel_py),
        XOR32: triton.jit(_xor32_kernel_py),
    }


def _as_words(words: Any, nbytes: int) -> Any:
    """``words`` as a flat contiguous int32 tensor on its device, zero-padded to whole words."""
    import torch

    flat = words.reshape(-1)
    if flat.dtype == torch.uint8:
        if flat.numel() != nbytes:
            raise ValueError(f"a uint8 byte view holds {flat.numel()} bytes, but nbytes={nbytes}")
        pad = -nbytes % 4
        if pad:
            flat = torch.cat([flat, torch.zeros(pad, dtype=torch.uint8, device=flat.device)])
        return flat.contiguous().view(torch.int32)
    if flat.dtype == torch.int32:
        if not 4 * flat.numel() - 3 <= nbytes <= 4 * flat.numel() and not (
            nbytes == 0 == flat.numel()
        ):
            raise ValueError(f"{flat.numel()} int32 words cannot hold exactly nbytes={nbytes}")
        return flat.contiguous()
    raise ValueError(f"words must be an int32 or uint8 tensor, got {flat.dtype}")


def _launch(kernel: Any, w: Any, programs: int, *args: Any) -> list[int]:
    """Run ``kernel`` with one program per output slot; the int64 outputs as Python ints."""
    import contextlib

    import torch

    out = torch.empty(programs, dtype=torch.int64, device=w.device)
    guard = torch.cuda.device(w.device) if w.device.type == "cuda" else contextlib.nullcontext()
    with guard:
        kernel[(programs,)](w, out, w.numel(), *args)
    return out.cpu().tolist()


def hash_words_triton(words: Any, scheme: str, nbytes: int) -> int:
    """SGLang's CUDA-path hash of ``nbytes`` bytes, given as int32 words or a uint8 byte view.

    Runs where ``words`` lives (CUDA, or CPU under ``TRITON_INTERPRET=1``). Returns the value the
    engine's emulation returns: unsigned for ``gpu-tile-fmix32``, signed int64 for the xor schemes.
    Raises :class:`UnhashableFeatureError` where SGLang's kernel launch raises (xor schemes and a
    byte count that is not a multiple of 4), :class:`TritonUnavailableError` without triton.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"{scheme!r} is not a CUDA-path scheme ({', '.join(SCHEMES)})")
    if scheme != TILE:
        require_whole_words(nbytes, scheme)
    kernel = _kernels()[scheme]
    w = _as_words(words, nbytes)
    n = w.numel()
    if n == 0:
        return 0
    if scheme == TILE:
        nb = (4 * n) & M32
        nb_i32 = nb - (1 << 32) if nb >> 31 else nb  # passed as int32 bits; the kernel bitcasts
        tiles = _launch(kernel, w, -(-n // _TILE_WORDS), nb_i32, _TILE_WORDS, BLOCK)
        return splitmix64_finalize(sum(tiles))
    return to_signed(sum(_launch(kernel, w, -(-n // BLOCK), BLOCK)), 64)
