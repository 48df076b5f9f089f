"""The front end of SGLang's ``hash_feature``: what a feature is, which path hashes it, and which
bytes that path reads (spec 2.0). It turns a feature into a :class:`Plan`; schemes do the rest.

torch and numpy are imported only when the feature is a tensor or an array.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import UnhashableFeatureError
from .schemes import ByteStream
from .versions import Era, Release

#: Elements per chunk when a feature must be converted or made contiguous (bounded memory).
CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class Plan:
    """How SGLang hashes one feature: the path taken and the bytes each scheme reads."""

    path: str  # "cpu" | "cuda"
    kind: str  # "bytes" | "ndarray" | "tensors"
    stream: ByteStream  # bytes the chosen scheme reads
    tensors: tuple = ()  # for kind "tensors": the detached leaves, in order
    dtype: Any = None  # the dtype every leaf is converted to first (None: each keeps its own)


def is_tensor(x: Any) -> bool:
    """``isinstance(x, torch.Tensor)`` without importing torch when it is not loaded yet."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_ndarray(x: Any) -> bool:
    """``isinstance(x, numpy.ndarray)`` without importing numpy when it is not loaded yet."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def flatten_nested_list(x: Any) -> list:
    """SGLang's ``flatten_nested_list``: descend into lists only, depth-first, left to right."""
    if not isinstance(x, list):
        return [x]
    out: list = []
    stack = [iter(x)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _type_name(x: Any) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def plan_feature(feature: Any, release: Release, device: str | None) -> Plan:
    """Classify ``feature`` as SGLang's ``hash_feature`` does and prepare the bytes to hash.

    ``device`` forces the path (``"cpu"``/``"cuda"``); ``None`` uses the tensors' own device.
    Raises :class:`UnhashableFeatureError` wherever real SGLang raises at this release.
    """
    era = release.era
    v = release.version
    if isinstance(feature, list):
        if not feature:
            raise UnhashableFeatureError(
                f"sglang {v} cannot hash an empty list: hash_feature raises {era.empty_list_error}"
            )
        if not is_tensor(feature[0]):
            raise UnhashableFeatureError(
                f"sglang {v} hashes a list only when its first element is a torch.Tensor; for a "
                f"list starting with {_type_name(feature[0])} it raises TypeError (object "
                f"supporting the buffer API required)"
            )
        return _plan_tensors(flatten_nested_list(feature), release, device)
    if is_tensor(feature):
        return _plan_tensors([feature], release, device)
    if is_ndarray(feature):
        return _plan_ndarray(feature, release, device)
    if isinstance(feature, str):
        raise UnhashableFeatureError(
            f"sglang {v} cannot hash a str: sha256 raises TypeError (Strings must be encoded "
            f"before hashing)"
        )
    try:
        view = memoryview(feature)
    except TypeError:
        raise UnhashableFeatureError(
            f"sglang {v} cannot hash a {_type_name(feature)}: hash_feature passes it to sha256, "
            f"which raises TypeError (object supporting the buffer API required)"
        ) from None
    if not view.c_contiguous:
        raise UnhashableFeatureError(
            f"sglang {v} cannot hash a non-contiguous buffer: sha256 raises BufferError"
        )
    return Plan("cpu", "bytes", ByteStream.of(view))


def _plan_ndarray(a: Any, release: Release, device: str | None) -> Plan:
    import numpy as np

    if a.dtype.hasobject:
        raise UnhashableFeatureError(
            f"a numpy array of dtype {a.dtype} holds Python objects; sglang {release.version} "
            f"hashes their memory addresses, which no one can reproduce"
        )
    if device == "cuda":
        # A numpy feature "on CUDA" is the same data as a CUDA tensor (SGLang itself never moves
        # arrays to the GPU; this is what a processor returning tensors would hand over).
        import torch

        import warnings

        native = a.astype(a.dtype.newbyteorder("="), copy=False)
        try:
            with warnings.catch_warnings():  # read-only (memory-mapped) arrays: we never write
                warnings.simplefilter("ignore", UserWarning)
                t = torch.from_numpy(np.ascontiguousarray(native))
        except TypeError as e:
            raise UnhashableFeatureError(
                f"numpy dtype {a.dtype} has no torch equivalent, so it cannot be a CUDA tensor "
                f"({e}); SGLang hashes numpy arrays on the CPU path only"
            ) from None
        return _plan_tensors([t], release, "cuda")
    return Plan("cpu", "ndarray", ByteStream(a.nbytes, lambda: _array_pieces(a)))


def _array_pieces(a: Any) -> Iterator[memoryview]:
    """The bytes of ``np.ascontiguousarray(a)``, in bounded chunks (no whole copy)."""
    for chunk in logical_chunks(a, max(1, CHUNK_BYTES // max(1, a.itemsize))):
        import numpy as np

        yield memoryview(np.ascontiguousarray(chunk).reshape(-1).view(np.uint8))


def logical_chunks(x: Any, max_elems: int) -> Iterator[Any]:
    """Split a tensor or array into pieces whose C-order concatenation is ``x`` flattened.

    A contiguous ``x`` is sliced in place; otherwise whole rows are grouped so that each piece
    needs at most ``max_elems`` elements when made contiguous.
    """
    shape = tuple(x.shape)
    if not shape:
        yield x.reshape(1)
        return
    numel = 1
    for s in shape:
        numel *= s
    if numel == 0:
        return
    if _is_c_contiguous(x):
        flat = x.reshape(-1)
        for i in range(0, numel, max_elems):
            yield flat[i : i + max_elems]
        return
    row = numel // shape[0]
    if row <= max_elems:
        step = max(1, max_elems // row)
        for i in range(0, shape[0], step):
            yield x[i : i + step]
    else:
        for i in range(shape[0]):
            yield from logical_chunks(x[i], max_elems)


def _is_c_contiguous(x: Any) -> bool:
    flags = getattr(x, "flags", None)
    return bool(flags["C_CONTIGUOUS"]) if flags is not None else x.is_contiguous()


def _plan_tensors(leaves: list, release: Release, device: str | None) -> Plan:
    import torch

    era = release.era
    v = release.version
    for leaf in leaves:
        if not is_tensor(leaf):
            raise UnhashableFeatureError(
                f"sglang {v} cannot hash a list holding a {_type_name(leaf)} beside tensors: "
                f"its tensor path raises on the non-tensor element"
            )
    if device is None:
        on_cuda = [bool(t.is_cuda) for t in leaves]
        if any(on_cuda) and not all(on_cuda):
            raise UnhashableFeatureError(
                f"the feature mixes CPU and CUDA tensors; sglang {v} concatenates them with "
                f"torch.cat, which raises for tensors on different devices"
            )
        device = "cuda" if any(on_cuda) else "cpu"
    parts = [t.detach() for t in leaves]
    promoted = _cat_dtype(parts)
    if device == "cuda" and era.cuda != "sha256-f32":  # before 0.4.6.post5 CUDA goes via .cpu()
        return Plan("cuda", "tensors", _tensor_stream(parts, promoted), tuple(parts), promoted)
    if era.cpu == "sha256-f32":
        if promoted == torch.bfloat16:
            promoted = torch.float32
        if not _numpy_has(promoted):
            raise UnhashableFeatureError(
                f"sglang {v} hashes on the CPU path through .numpy(), which raises TypeError "
                f"(Got unsupported ScalarType) for {promoted}"
            )
        return Plan(device, "tensors", _tensor_stream(parts, promoted), tuple(parts), promoted)
    return Plan("cpu", "tensors", _tensor_stream(parts, None), tuple(parts), None)


def _cat_dtype(parts: list) -> Any:
    """The dtype ``torch.cat`` gives these tensors (its own promotion rules, run on meta)."""
    import torch

    dtypes = {t.dtype for t in parts}
    if len(dtypes) == 1:
        return next(iter(dtypes))
    return torch.cat([torch.empty(0, dtype=t.dtype, device="meta") for t in parts]).dtype


def _numpy_has(dtype: Any) -> bool:
    import torch

    try:
        torch.empty(0, dtype=dtype).numpy()
    except TypeError:
        return False
    return True


def _tensor_stream(parts: list, dtype: Any) -> ByteStream:
    """Each part's logical bytes in order, converted to ``dtype`` first unless it is ``None``."""
    nbytes = sum(
        t.numel() * (t.element_size() if dtype is None else _itemsize(dtype)) for t in parts
    )
    return ByteStream(nbytes, lambda: _tensor_pieces(parts, dtype))


def _itemsize(dtype: Any) -> int:
    import torch

    return torch.empty(0, dtype=dtype).element_size()


def _tensor_pieces(parts: list, dtype: Any) -> Iterator[memoryview]:
    import torch

    for t in parts:
        size = max(t.element_size(), _itemsize(dtype) if dtype is not None else 1)
        for chunk in logical_chunks(t, max(1, CHUNK_BYTES // size)):
            if chunk.is_cuda:
                chunk = chunk.cpu()
            if dtype is not None and chunk.dtype != dtype:
                chunk = chunk.to(dtype)
            chunk = chunk.resolve_conj().resolve_neg().contiguous().reshape(-1)
            yield memoryview(chunk.view(torch.uint8).numpy())
