"""The front end of SGLang's ``hash_feature``: what a feature is, which path hashes it, and which
bytes that path reads (docs/spec.md §3). It turns a feature into a :class:`Plan`; schemes do the rest.

torch and numpy are imported only when the feature is a tensor or an array.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UnhashableFeatureError, first_line
from .schemes import ByteStream
from .versions import SHA256_F32, Release

#: Bytes per chunk when a feature must be converted or made contiguous (bounded memory).
CHUNK_BYTES = 16 << 20
#: A non-contiguous tensor up to this size is made contiguous in one call (torch's fast blocked
#: transpose, as SGLang does); larger ones are gathered chunk by chunk to bound memory.
WHOLE_COPY_BYTES = 512 << 20


@dataclass(frozen=True)
class Plan:
    """How SGLang hashes one feature: the path taken and the bytes each scheme reads."""

    path: str  # "cpu" | "cuda"
    kind: str  # "bytes" | "ndarray" | "tensors"
    stream: ByteStream  # bytes the chosen scheme reads
    tensors: tuple = ()  # for kind "tensors": the detached leaves, in order
    dtype: Any = None  # the dtype of the hashed bytes (None: each leaf keeps its own)


def _loaded_type(module: str, name: str) -> type | None:
    """``module.name`` if ``module`` is imported, else None. Thread-safe: while another thread is
    still importing the module it is in ``sys.modules`` without ``name`` yet, and nothing can be an
    instance of a type that does not exist yet."""
    return getattr(sys.modules.get(module), name, None)


def is_tensor(x: Any) -> bool:
    """``isinstance(x, torch.Tensor)`` without importing torch when it is not loaded yet."""
    t = _loaded_type("torch", "Tensor")
    return t is not None and isinstance(x, t)


def is_ndarray(x: Any) -> bool:
    """``isinstance(x, numpy.ndarray)`` without importing numpy when it is not loaded yet."""
    t = _loaded_type("numpy", "ndarray")
    return t is not None and isinstance(x, t)


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


def dtype_shape(feature: Any) -> tuple[Any, Any]:
    """``(dtype, shape)`` of a loaded feature as JSON-ready values: a tensor or array gives
    ``("float32", [10, 100])``; a list gives the lists of its leaves' dtypes and shapes (in
    SGLang's flattening order); bytes give ``("bytes", [length])``."""
    if isinstance(feature, list):
        pairs = [dtype_shape(x) for x in flatten_nested_list(feature)]
        return [d for d, _ in pairs], [s for _, s in pairs]
    if isinstance(feature, (bytes, bytearray, memoryview)):
        return "bytes", [len(memoryview(feature).cast("B"))]
    if is_tensor(feature) or is_ndarray(feature):
        return str(feature.dtype).removeprefix("torch."), [int(n) for n in feature.shape]
    return _type_name(feature), None


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
    if a.dtype.hasobject:
        raise UnhashableFeatureError(
            f"a numpy array of dtype {a.dtype} holds Python objects; sglang {release.version} "
            f"hashes their memory addresses, which no one can reproduce"
        )
    if device == "cuda":
        return _plan_ndarray_on_cuda(a)
    return Plan("cpu", "ndarray", ByteStream(a.nbytes, lambda held: _array_pieces(a, held)))


def _plan_ndarray_on_cuda(a: Any) -> Plan:
    """A numpy feature "on CUDA" is the same data as a CUDA tensor (``torch.from_numpy`` of it).

    SGLang itself never moves arrays to the GPU; this is what a processor returning tensors would
    hand over. The bytes are streamed from the array (native byte order), never copied whole.
    """
    native = a.dtype.newbyteorder("=")
    if native.kind not in "biufc" or native.fields is not None or native.char in "gG":
        raise UnhashableFeatureError(
            f"numpy dtype {a.dtype} has no torch equivalent (torch.from_numpy raises), so it "
            f"cannot be a CUDA tensor; SGLang hashes numpy arrays on the CPU path only"
        )
    return Plan(
        "cuda", "ndarray", ByteStream(a.nbytes, lambda held: _array_pieces(a, held, native))
    )


def _array_pieces(a: Any, held: int, dtype: Any = None) -> Iterator[memoryview]:
    """The bytes of ``np.ascontiguousarray(a)`` (as ``dtype`` if given): in bounded chunks when
    they are copied, converted or read from a file, else in one piece where they lie.

    For a memory-mapped file, the pages of every byte the reader is done with (all but the last
    ``held`` bytes given out, see :class:`ByteStream`) are dropped from the process, so the
    resident set stays about ``held`` plus one chunk whatever the file size.
    """
    import numpy as np

    if a.nbytes == 0:  # also zero-byte dtypes in huge shapes: nothing to read
        return
    mm = _file_map(a)
    if mm is None and _is_c_contiguous(a) and (dtype is None or dtype == a.dtype):
        step = a.size  # read in place, in one piece (see _readable_in_place)
    else:
        step = max(1, CHUNK_BYTES // a.itemsize)
    given = 0  # bytes yielded so far
    mapped: deque[tuple[int, Any]] = deque()  # (offset, chunk) given out, pages not all dropped
    for chunk in logical_chunks(a, step):
        chunk_c = np.ascontiguousarray(chunk if dtype is None else chunk.astype(dtype, copy=False))
        yield chunk_c.reshape(-1).view(np.uint8).data
        if mm is not None:
            mapped.append((given, chunk))
            _drop_before(mm, mapped, given + chunk_c.nbytes - held)
        given += chunk_c.nbytes
    if mm is not None:
        _drop_before(mm, mapped, given)


def _drop_before(mm: Any, mapped: deque[tuple[int, Any]], done: int) -> None:
    """Drop the pages under the first ``done`` bytes of the chunks in ``mapped`` (offset order).

    Whole chunks leave ``mapped``; of the chunk that straddles ``done`` the finished prefix is
    dropped when the chunk is contiguous (always, for a C-order file).
    """
    while mapped and mapped[0][0] < done:
        offset, chunk = mapped[0]
        if offset + chunk.nbytes > done:
            finished = (done - offset) // chunk.itemsize
            if finished and _is_c_contiguous(chunk):
                _drop_pages(mm, chunk.reshape(-1)[:finished])
            return
        _drop_pages(mm, chunk)
        mapped.popleft()


def _file_map(a: Any) -> Any:
    """The read-only ``mmap.mmap`` under ``a`` (``np.load(mmap_mode="r")``), else ``None``.

    Copy-on-write maps (``mmap_mode="c"``) are left alone: dropping their pages would lose edits.
    """
    import mmap

    base = a
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base if base is not None and memoryview(base).readonly else None


def _drop_pages(mm: Any, chunk: Any) -> None:
    """``madvise(MADV_DONTNEED)`` the whole pages under ``chunk``: file-backed, so re-read if needed."""
    import mmap

    import numpy as np

    if not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    lo = chunk.__array_interface__["data"][0] - np.frombuffer(mm, dtype=np.uint8).ctypes.data
    start = lo - lo % mmap.PAGESIZE
    mm.madvise(mmap.MADV_DONTNEED, start, min(len(mm), lo + chunk.nbytes) - start)


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
    if device == "cuda" and era.cuda != SHA256_F32:  # before 0.4.6.post5 CUDA goes via .cpu()
        cat = _cat_dtype(parts, v)
        return Plan("cuda", "tensors", _tensor_stream(parts, (cat,)), tuple(parts), cat)
    if era.cpu == SHA256_F32:
        cat = _cat_dtype(parts, v)
        # torch.cat converts to the promoted dtype first; only then is bf16 widened to fp32.
        chain = (cat, torch.float32) if cat == torch.bfloat16 else (cat,)
        if not _numpy_has(chain[-1]):
            raise UnhashableFeatureError(
                f"sglang {v} hashes on the CPU path through .numpy(), which raises TypeError "
                f"(Got unsupported ScalarType) for {chain[-1]}"
            )
        return Plan(device, "tensors", _tensor_stream(parts, chain), tuple(parts), chain[-1])
    for t in parts:
        _check_byte_view(t, v)
    return Plan("cpu", "tensors", _tensor_stream(parts, ()), tuple(parts), None)


def _readable_in_place(t: Any, chain: tuple) -> bool:
    """Whether ``t``'s bytes are read where they lie (contiguous, on the CPU, no dtype conversion,
    no lazy conjugate or negation), so it needs no chunks: each chunk's handful of torch calls
    ran with caches cold from the 16 MiB hashed before it, ~2% of SHA-256's time."""
    return (
        t.is_contiguous()
        and not t.is_cuda
        and all(d == t.dtype for d in chain)
        and not t.is_conj()
        and not t.is_neg()
    )


def _converts_half_nans(t: Any, chain: tuple) -> bool:
    """Whether ``t`` is float16 with NaNs and is converted: torch's vector loop (blocks of 8) and
    its scalar loop (the tail) give a signalling NaN different bits, so the part is converted in one
    piece, as SGLang's ``torch.cat`` converts it, never in chunks whose tails fall elsewhere."""
    import torch

    return (
        t.dtype == torch.float16
        and any(d != torch.float16 for d in chain)
        and bool(torch.isnan(t).any())
    )


def _cat_dtype(parts: list, version: str) -> Any:
    """The dtype ``torch.cat`` gives these tensors (its own promotion rules, on empty tensors)."""
    import torch

    dtypes = list(dict.fromkeys(t.dtype for t in parts))
    if len(dtypes) == 1:
        return dtypes[0]
    try:
        return torch.cat([torch.empty(0, dtype=d) for d in dtypes]).dtype
    except RuntimeError as e:
        raise UnhashableFeatureError(
            f"sglang {version} concatenates the list with torch.cat, which raises RuntimeError "
            f"({first_line(e)})"
        ) from None


def _check_byte_view(t: Any, version: str) -> None:
    """sha256-raw views each part as bytes after ``flatten().contiguous().reshape(-1)``.

    A one-element view keeps its stride through those calls (torch calls it contiguous), and
    ``.view(torch.uint8)`` then raises for multi-byte dtypes, as it does in SGLang.
    """
    if t.numel() != 1 or t.element_size() == 1:
        return
    stride = t.flatten().contiguous().reshape(-1).stride(-1)
    if stride != 1:
        raise UnhashableFeatureError(
            f"sglang {version} views each tensor as bytes, which raises RuntimeError for this "
            f"one-element view (self.stride(-1) must be 1 to view {t.dtype} as Byte, got {stride})"
        )


def _numpy_has(dtype: Any) -> bool:
    import torch

    try:
        torch.empty(0, dtype=dtype).numpy()
    except TypeError:
        return False
    return True


def _tensor_stream(parts: list, chain: tuple) -> ByteStream:
    """Each part's logical bytes in order, converted through the dtypes of ``chain`` first."""
    nbytes = sum(t.numel() * (chain[-1].itemsize if chain else t.element_size()) for t in parts)
    return ByteStream(nbytes, lambda held: _tensor_pieces(parts, chain))


def _tensor_pieces(parts: list, chain: tuple) -> Iterator[memoryview]:
    import torch

    widest = max((d.itemsize for d in chain), default=1)
    for t in parts:
        if not t.is_contiguous() and t.numel() * t.element_size() <= WHOLE_COPY_BYTES:
            t = t.contiguous()
        if _readable_in_place(t, chain) or _converts_half_nans(t, chain):  # one piece (see both)
            step = max(1, t.numel())
        else:
            step = max(1, CHUNK_BYTES // max(t.element_size(), widest))
        for chunk in logical_chunks(t, step):
            if chunk.is_cuda:
                chunk = chunk.cpu()
            for dtype in chain:
                if chunk.dtype != dtype:
                    chunk = chunk.to(dtype)
            chunk = chunk.resolve_conj().resolve_neg().contiguous().reshape(-1)
            if chunk.stride(-1) != 1:  # a one-element strided view: contiguous() keeps it
                chunk = chunk.new_empty(chunk.shape).copy_(chunk)
            yield memoryview(chunk.view(torch.uint8).numpy())
