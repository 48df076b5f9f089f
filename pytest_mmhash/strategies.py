"""Hypothesis strategies for multimodal features, in the style of ``hypothesis.extra.numpy``.

Every strategy takes values or strategies for its parameters, so callers can pin or narrow any of
them: ``tensors(dtype=torch.bfloat16)``, ``tensors(dtype=dtypes(float8=False), shape=shapes(max_dims=1))``,
``features(max_bytes=3 * TILE_BYTES)``. Contents are arbitrary bit patterns (NaN payloads, negative
zero, denormals) unless ``allow_nan=False``; layouts cover non-contiguous views, Fortran order and
big-endian arrays; sizes reach past tile boundaries (8192 words) when ``max_bytes`` allows.

:func:`features` draws only what SGLang hashes at a release (``refused=True`` mixes in what it
refuses). Arguments are checked when the strategy is built (Hypothesis' ``InvalidArgument``).
Importing this module changes no Hypothesis settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from . import versions as V

__all__ = [
    "ARRAY_LAYOUTS",
    "BASE_DTYPES",
    "DEFAULT_MAX_BYTES",
    "FIRST_REPRODUCIBLE",
    "FLOAT8_DTYPES",
    "LAYOUTS",
    "NUMPY_DTYPES",
    "TILE_BYTES",
    "arrays",
    "byte_counts",
    "devices",
    "dtypes",
    "features",
    "long_shapes",
    "numpy_dtypes",
    "refused_features",
    "sglang_versions",
    "shapes",
    "sized_shapes",
    "tensor_lists",
    "tensors",
]

T = TypeVar("T")
Strat = st.SearchStrategy

#: Bytes of one gpu-tile-fmix32 tile (8192 words).
TILE_BYTES = 4 * 8192
#: Default ``max_bytes``: just over two tiles, so tile boundaries occur while tests stay fast.
DEFAULT_MAX_BYTES = 2 * TILE_BYTES + 64
#: Contents up to this size are drawn byte by byte (shrinkable); larger ones from a drawn seed.
SMALL_BYTES = 256
#: The first release whose hash is reproducible (0.4.5.post1; earlier ones use Python hash()).
FIRST_REPRODUCIBLE = "0.4.5.post1"

FLOAT8_DTYPES: tuple[torch.dtype, ...] = tuple(
    getattr(torch, n)
    for n in (
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e8m0fnu",
    )
    if hasattr(torch, n)
)
BASE_DTYPES: tuple[torch.dtype, ...] = (
    torch.bfloat16,
    torch.float16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
)
#: torch dtypes numpy can hold (the dtypes of numpy features).
NUMPY_DTYPES: tuple[str, ...] = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
)
#: How a tensor's memory relates to its logical shape.
LAYOUTS = ("contiguous", "offset", "transpose", "strided", "expand")
#: How an array's memory relates to its logical shape.
ARRAY_LAYOUTS = ("C", "F", "reversed", "offset", "transpose", "strided", "expand")


def _strategy(
    value: T | Strat[T] | None,
    default: Strat[T],
    name: str = "value",
    allowed: tuple[Any, ...] | None = None,
) -> Strat[T]:
    """``value`` as a strategy: itself if it is one, ``just(value)``, or ``default`` for None.
    A plain value outside ``allowed`` raises InvalidArgument naming ``name``."""
    if value is None:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    if allowed is not None and value not in allowed:
        raise InvalidArgument(f"{name}={value!r} must be one of {allowed!r} (or a strategy)")
    return st.just(value)


def _check_count(name: str, value: Any, minimum: int = 0) -> None:
    """An integer argument, at least ``minimum``, or InvalidArgument."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidArgument(f"{name}={value!r} must be an integer >= {minimum}")


def _check_release(name: str, value: Any) -> None:
    """A release string :mod:`pytest_mmhash.versions` knows, or InvalidArgument."""
    if value not in V.RELEASES:
        raise InvalidArgument(
            f"{name}={value!r} is not a known sglang release (e.g. {V.NEWEST!r}; see "
            "mmhash --list-versions)"
        )


def dtypes(*, float8: bool = True) -> Strat[torch.dtype]:
    """torch dtypes SGLang features come in: bf16, fp16, fp32, fp64, int8-64, uint8, bool, float8."""
    return st.sampled_from(BASE_DTYPES + (FLOAT8_DTYPES if float8 else ()))


def numpy_dtypes(*, byteorder: str | Strat[str] | None = None) -> Strat[np.dtype]:
    """numpy dtypes of the same kinds, little- or big-endian (``byteorder`` in ``"<"``, ``">"``)."""
    order = _strategy(byteorder, st.sampled_from("<>"), "byteorder", ("<", ">"))
    return st.builds(
        lambda name, o: np.dtype(name).newbyteorder(o), st.sampled_from(NUMPY_DTYPES), order
    )


def shapes(*, min_dims: int = 0, max_dims: int = 3, max_side: int = 5) -> Strat[tuple[int, ...]]:
    """Small shapes, 0-dim (``()``), empty (a 0 side) and 1-element ones included."""
    for name, value in (("min_dims", min_dims), ("max_dims", max_dims), ("max_side", max_side)):
        _check_count(name, value)
    if min_dims > max_dims:
        raise InvalidArgument(f"min_dims={min_dims} must be <= max_dims={max_dims}")
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side)


def byte_counts(*, max_bytes: int = DEFAULT_MAX_BYTES) -> Strat[int]:
    """Byte counts near every tile boundary up to ``max_bytes`` (within 8 bytes either side)."""
    _check_count("max_bytes", max_bytes)
    tiles = max_bytes // TILE_BYTES
    if tiles == 0:
        return st.integers(0, max_bytes)
    near = st.builds(lambda k, d: k * TILE_BYTES + d, st.integers(1, tiles), st.integers(-8, 8))
    return near.filter(lambda n: 0 <= n <= max_bytes)


def long_shapes(itemsize: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Strat[tuple[int, ...]]:
    """1-D or 2-D shapes of about :func:`byte_counts` bytes for elements of ``itemsize`` bytes."""
    _check_count("itemsize", itemsize, 1)
    numel = byte_counts(max_bytes=max_bytes).map(lambda n: n // itemsize)
    cols = st.sampled_from((1, 2, 3, 4, 8))
    return st.one_of(numel.map(lambda n: (n,)), st.builds(lambda n, c: (n // c, c), numel, cols))


def sized_shapes(itemsize: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Strat[tuple[int, ...]]:
    """Mostly :func:`shapes`, sometimes :func:`long_shapes` (when ``max_bytes`` reaches a tile)."""
    _check_count("itemsize", itemsize, 1)
    _check_count("max_bytes", max_bytes)
    small = shapes()
    if max_bytes < TILE_BYTES:
        return small
    return st.one_of(small, small, small, long_shapes(itemsize, max_bytes=max_bytes))


def _raw_bytes(draw: Callable[[Strat[Any]], Any], nbytes: int) -> bytes:
    """``nbytes`` arbitrary bytes: drawn one by one when small, else from a drawn RNG seed."""
    if nbytes <= SMALL_BYTES:
        return draw(st.binary(min_size=nbytes, max_size=nbytes))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _tensor_from_bytes(
    raw: bytes, dtype: torch.dtype, shape: tuple[int, ...], allow_nan: bool
) -> torch.Tensor:
    """A contiguous tensor of ``shape`` holding ``raw`` (bools reduced to 0/1, NaNs zeroed on request)."""
    u8 = (
        torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        if raw
        else torch.empty(0, dtype=torch.uint8)
    )
    if dtype == torch.bool:
        return (u8 & 1).view(torch.bool).reshape(shape)
    t = u8.view(dtype).reshape(shape)
    if not allow_nan and t.is_floating_point():
        wide = t.to(torch.float64)
        t = torch.where(wide.isnan(), torch.zeros_like(wide), wide).to(dtype)
    return t


def _base_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The shape of the memory a ``layout`` view of ``shape`` is cut from."""
    if not shape or layout == "contiguous":
        return shape
    if layout == "offset":
        return (shape[0] + 1,) + shape[1:]
    if layout == "transpose":
        return shape[:-2] + shape[-2:][::-1]
    if layout == "strided":
        return (2 * shape[0],) + shape[1:]
    return (1,) + shape[1:]  # expand: dim 0 broadcast from size 1


def _view(base: Any, shape: tuple[int, ...], layout: str) -> Any:
    """The ``layout`` view of ``base`` that has logical ``shape`` (a tensor or an array)."""
    if not shape or layout == "contiguous":
        return base
    if layout == "offset":
        return base[1:]
    if layout == "transpose":
        return base.swapaxes(-1, -2) if len(shape) >= 2 else base
    if layout == "strided":
        return base[::2]
    if isinstance(base, np.ndarray):
        return np.broadcast_to(base, shape)
    return base.expand(shape)


def _check_shape(shape: Any) -> None:
    """A plain shape argument is a tuple of non-negative ints (strategies are taken as they are)."""
    if shape is None or isinstance(shape, st.SearchStrategy):
        return
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise InvalidArgument(
            f"shape={shape!r} must be a tuple of non-negative ints (or a strategy)"
        )


def tensors(
    dtype: torch.dtype | Strat[torch.dtype] | None = None,
    shape: tuple[int, ...] | Strat[tuple[int, ...]] | None = None,
    *,
    layout: str | Strat[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_nan: bool = True,
) -> Strat[torch.Tensor]:
    """CPU torch tensors of :func:`dtypes`, :func:`sized_shapes` and :data:`LAYOUTS` (views included)."""
    _check_count("max_bytes", max_bytes)
    _check_shape(shape)
    return _tensors(
        _strategy(dtype, dtypes(), "dtype", BASE_DTYPES + FLOAT8_DTYPES),
        shape,
        _strategy(layout, st.sampled_from(LAYOUTS), "layout", LAYOUTS),
        max_bytes,
        bool(allow_nan),
    )


@st.composite
def _tensors(
    draw: Callable[[Strat[Any]], Any],
    dtype: Strat[torch.dtype],
    shape: tuple[int, ...] | Strat[tuple[int, ...]] | None,
    layout: Strat[str],
    max_bytes: int,
    allow_nan: bool,
) -> torch.Tensor:
    dt = draw(dtype)
    itemsize = torch.empty(0, dtype=dt).element_size()
    shp = tuple(draw(_strategy(shape, sized_shapes(itemsize, max_bytes=max_bytes))))
    lay = draw(layout)
    base_shape = _base_shape(shp, lay)
    base = _tensor_from_bytes(
        _raw_bytes(draw, _numel(base_shape) * itemsize), dt, base_shape, allow_nan
    )
    return _view(base, shp, lay)


def arrays(
    dtype: np.dtype | Strat[np.dtype] | None = None,
    shape: tuple[int, ...] | Strat[tuple[int, ...]] | None = None,
    *,
    layout: str | Strat[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_nan: bool = True,
) -> Strat[np.ndarray]:
    """numpy arrays of :func:`numpy_dtypes` in C or Fortran order, or reversed, offset, transposed,
    strided or broadcast views; the byte order is the dtype's (big-endian ones included)."""
    _check_count("max_bytes", max_bytes)
    _check_shape(shape)
    if dtype is not None and not isinstance(dtype, st.SearchStrategy):
        try:
            ok = np.dtype(dtype).name in NUMPY_DTYPES
        except TypeError:
            ok = False
        if not ok:
            raise InvalidArgument(f"dtype={dtype!r} must be a numpy dtype of {NUMPY_DTYPES}")
    return _arrays(
        _strategy(dtype, numpy_dtypes()),
        shape,
        _strategy(layout, st.sampled_from(ARRAY_LAYOUTS), "layout", ARRAY_LAYOUTS),
        max_bytes,
        bool(allow_nan),
    )


@st.composite
def _arrays(
    draw: Callable[[Strat[Any]], Any],
    dtype: Strat[np.dtype],
    shape: tuple[int, ...] | Strat[tuple[int, ...]] | None,
    layout: Strat[str],
    max_bytes: int,
    allow_nan: bool,
) -> np.ndarray:
    dt = np.dtype(draw(dtype))
    shp = tuple(draw(_strategy(shape, sized_shapes(dt.itemsize, max_bytes=max_bytes))))
    lay = draw(layout)
    view_layout = lay if lay in LAYOUTS else "contiguous"
    base_shape = _base_shape(shp, view_layout)
    raw = _raw_bytes(draw, _numel(base_shape) * dt.itemsize)
    base = (
        _tensor_from_bytes(raw, getattr(torch, dt.name), base_shape, allow_nan).numpy().astype(dt)
    )
    if lay == "F":
        return np.asfortranarray(base)
    if lay == "reversed" and shp:
        return base[::-1]
    return _view(base, shp, view_layout)


def tensor_lists(
    elements: Strat[torch.Tensor] | None = None, *, max_size: int = 3, nested: bool = True
) -> Strat[list]:
    """Non-empty lists that start with a tensor, as SGLang accepts; later items may be lists (``[t1, [t2]]``)."""
    _check_count("max_size", max_size, 1)
    _check_strategy("elements", elements)
    items = _strategy(elements, tensors())
    later = st.one_of(items, st.lists(items, max_size=2)) if nested else items
    return st.builds(
        lambda first, rest: [first, *rest], items, st.lists(later, max_size=max_size - 1)
    )


def refused_features(elements: Strat[torch.Tensor] | None = None) -> Strat[Any]:
    """Features SGLang's ``hash_feature`` raises for: empty lists, lists led by a list or an array, ..."""
    _check_strategy("elements", elements)
    items = _strategy(elements, tensors(max_bytes=SMALL_BYTES))
    small_arrays = arrays(max_bytes=SMALL_BYTES)
    return st.one_of(
        st.just([]),
        st.builds(lambda t, rest: [[t], *rest], items, st.lists(items, max_size=2)),
        st.builds(lambda a: [a], small_arrays),
        st.builds(lambda t, a: [t, a], items, small_arrays),
        st.builds(lambda t: (t,), items),
        st.sampled_from(["text", None, 3, {"k": 1}]),
    )


def _check_strategy(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(f"{name}={value!r} must be a Hypothesis strategy (or None)")


def features(
    *,
    dtype: torch.dtype | Strat[torch.dtype] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_nan: bool = True,
    sglang_version: str | None = None,
    device: str | None = None,
    refused: bool = False,
) -> Strat[Any]:
    """Features SGLang hashes: tensors, numpy arrays and (nested) tensor lists that release
    ``sglang_version`` (default: the installed sglang's, else the newest) hashes on path ``device``
    (default: both paths). Whether SGLang refuses a feature depends on the release and path (float8
    through ``.numpy()``, ``torch.cat`` promotion, kernels that need whole words); this package's
    refusal rules, checked against real SGLang, filter those out. ``refused=True`` draws every
    candidate unfiltered and adds one in eight features SGLang always refuses
    (:func:`refused_features`), for testing error handling."""
    _check_count("max_bytes", max_bytes)
    if sglang_version is not None:
        _check_release("sglang_version", sglang_version)
    if device is not None and device not in V.DEVICES:
        raise InvalidArgument(f"device={device!r} must be one of {V.DEVICES!r} (or None: both)")
    items = tensors(dtype, max_bytes=max_bytes, allow_nan=allow_nan)
    list_items = tensors(dtype, max_bytes=max(SMALL_BYTES, max_bytes // 2), allow_nan=allow_nan)
    choices = (
        [items] * 3
        + [arrays(max_bytes=max_bytes, allow_nan=allow_nan)] * 2
        + [tensor_lists(list_items)] * 2
    )
    if refused:
        choices.append(refused_features())
    drawn = st.sampled_from(choices).flatmap(lambda s: s)  # keeps the weights (one_of dedups)
    if refused:
        return drawn
    paths = (device,) if device else V.DEVICES
    return drawn.filter(lambda f: _hashed(f, sglang_version, paths))


def _hashed(feature: Any, version: str | None, paths: tuple[str, ...]) -> bool:
    """Whether SGLang ``version`` hashes ``feature`` on every one of ``paths``."""
    from .api import hash_feature
    from .errors import UnhashableFeatureError

    try:
        for d in paths:
            hash_feature(feature, sglang_version=version, device=d)
    except UnhashableFeatureError:
        return False
    return True


def sglang_versions(
    *, min_version: str = FIRST_REPRODUCIBLE, max_version: str = V.NEWEST
) -> Strat[str]:
    """Releases from :data:`versions.RELEASES` in ``[min_version, max_version]``; half of the draws
    are the first or last release of an era, where schemes change."""
    _check_release("min_version", min_version)
    _check_release("max_version", max_version)
    if V.RELEASES.index(min_version) > V.RELEASES.index(max_version):
        raise InvalidArgument(
            f"min_version={min_version!r} is newer than max_version={max_version!r}"
        )
    pool = V.RELEASES[V.RELEASES.index(min_version) : V.RELEASES.index(max_version) + 1]
    edges = sorted(
        {v for era in V.eras() for v in (era.first, era.last) if v in pool}, key=V.RELEASES.index
    )
    return st.one_of(st.sampled_from(edges), st.sampled_from(pool))


def devices() -> Strat[str]:
    """``"cpu"`` or ``"cuda"``: the path to hash on (never touches CUDA)."""
    return st.sampled_from(V.DEVICES)
