"""Hashing on a real CUDA device with this project's own Triton kernels (:mod:`.triton_kernels`).

When a feature's tensors already live on a CUDA device, copying them to the host for the numpy
emulation would cost more than hashing them where they are. This module concatenates them on the
device exactly as SGLang does (``torch.cat`` of the flattened leaves, promoted dtype) and runs the
kernels there. Anything else (CPU tensors with ``device="cuda"``, no triton, no CUDA) returns
``None`` so the caller falls back to the bit-identical CPU emulation. CUDA is never touched at
import, and only queried for tensors that are already on a CUDA device.
"""

from __future__ import annotations

from typing import Any

from . import triton_kernels


def _all_on_cuda(tensors: tuple) -> bool:
    """True when every leaf really lives on a CUDA device (``device.type``, not ``is_cuda``)."""
    return bool(tensors) and all(t.device.type == "cuda" for t in tensors)


def device_bytes(tensors: tuple, dtype: Any) -> Any:
    """The bytes SGLang's kernel reads: ``torch.cat`` of the flattened leaves in ``dtype``, as uint8."""
    import torch

    parts = [t.reshape(-1) if dtype is None else t.reshape(-1).to(dtype) for t in tensors]
    cat = torch.cat(parts).resolve_conj().resolve_neg().contiguous()
    return cat.view(torch.uint8)


def try_hash_on_device(plan: Any, scheme: str) -> int | None:
    """The CUDA-path hash computed on the GPU, or ``None`` to fall back to the CPU emulation."""
    if plan.kind != "tensors" or scheme not in triton_kernels.SCHEMES:
        return None
    if not _all_on_cuda(plan.tensors) or not triton_kernels.available():
        return None
    data = device_bytes(plan.tensors, plan.dtype)
    return triton_kernels.hash_words_triton(data, scheme, data.numel())
