"""``assert_mmhash_equal`` (the ``mmhash_equal`` fixture) and where two features first differ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .versions import schemes_line

# --------------------------------------------------------------------------- mmhash_equal


def assert_mmhash_equal(
    actual: Any,
    expected: Any,
    *,
    sglang_version: str | None = None,
    device: str | None = None,
    engine: str | None = None,
    default_version: str | None = None,
    default_engine: str | None = None,
) -> Any:
    """Assert ``actual`` (a feature) has the hash and pad values ``expected`` describes; the MMHash.

    ``expected`` is a feature; an :class:`MMHash` or a recorded golden value
    (``mmhash_golden[id].value(release, device)``), whose engine, release and path are then the
    ones compared at; an int hash or a hex string (only the hash is compared then).
    ``default_engine``/``default_version`` apply when neither the call nor ``expected`` names a
    release (the fixture passes the session's).
    """
    __tracebackhide__ = True
    from .api import MMHash, hash_feature

    named, named_device = _named(expected)
    session = (default_engine, default_version)
    if engine or sglang_version:
        release = (engine or default_engine, sglang_version or default_version)
    else:
        release = named or session
    device = device or named_device
    note = _named_note(named, named_device, bool(engine or sglang_version), session)
    if isinstance(expected, Mapping) and "error" in expected:
        return _assert_refused(actual, expected, release, device)
    a = hash_feature(actual, engine=release[0], sglang_version=release[1], device=device)
    if isinstance(expected, bool) or (isinstance(expected, int) and a.hash != expected):
        raise AssertionError(_equal_message(a, f"hash {expected!r}", hash_differs=True))
    if isinstance(expected, str) and a.hex != _hex16(expected):
        raise AssertionError(_equal_message(a, f"hex {expected}", hash_differs=True))
    if isinstance(expected, (int, str)):
        return a
    if isinstance(expected, MMHash):
        want, line, diff = (expected.hash, list(expected.pad_values)), _mm_line(expected), None
    elif isinstance(expected, Mapping):
        want = (expected["hash"], list(expected["pad_values"]))
        line, diff = f"hash {want[0]}, pad_values {want[1]} (recorded)", None
    else:
        e = hash_feature(expected, engine=release[0], sglang_version=release[1], device=device)
        want, line = (e.hash, list(e.pad_values)), _mm_line(e)
        diff = feature_difference(actual, expected)
    if (a.hash, list(a.pad_values)) != want:
        raise AssertionError(_equal_message(a, line, diff, a.hash != want[0], note))
    return a


#: An engine and a release (None: the library's default), as the comparison is made at.
Release = tuple[str | None, str | None]


def _named(expected: Any) -> tuple[tuple[str, str] | None, str | None]:
    """The ``(engine, release)`` and path an expected value names: an MMHash's, or a recorded
    golden value's (its release key, e.g. ``sglang-kt==0.7.2``)."""
    from .api import MMHash
    from .engines import split_key

    if isinstance(expected, MMHash):
        return (expected.engine, expected.sglang_version), expected.device
    release = getattr(expected, "release", None) if isinstance(expected, Mapping) else None
    if release is None:
        return None, None
    return split_key(release), getattr(expected, "device", None)


def _named_note(
    named: tuple[str, str] | None, named_device: str | None, asked: bool, session: Release
) -> str | None:
    """Say so when the expected value, not the session, chose the release compared at."""
    if named is None or asked or named == session:
        return None
    engine, version = session
    if version:
        said = version if engine in (None, "sglang") else f"{engine} {version}"
    else:
        said = f"the installed {engine or 'sglang'}'s, else the newest release"
    return (
        f"compared at {' '.join(named)}, {named_device or 'its own'} path, as the expected "
        f"value names them (this session's default release: {said})"
    )


def _assert_refused(actual: Any, expected: Mapping[str, Any], release: Release, device: Any) -> Any:
    """A recorded ``{"error": ...}``: SGLang refuses this feature, so the engine must refuse it too."""
    __tracebackhide__ = True
    from .api import hash_feature
    from .errors import UnhashableFeatureError

    try:
        a = hash_feature(actual, engine=release[0], sglang_version=release[1], device=device)
    except UnhashableFeatureError:
        return None
    raise AssertionError(
        _equal_message(a, f"SGLang refuses this feature ({expected['error']})", hash_differs=True)
    )


def _hex16(text: str) -> str:
    t = text.strip().lower().removeprefix("0x")
    if not t or len(t) > 16 or any(c not in "0123456789abcdef" for c in t):
        raise ValueError(f"expected hash {text!r} is not a 64-bit hex string")
    return t.rjust(16, "0")


def _mm_line(m: Any) -> str:
    return f"hash {m.hash} (hex {m.hex}), pad_values {list(m.pad_values)}, schemes: {schemes_line(m.schemes)}"


def _equal_message(
    a: Any,
    expected_line: str,
    feature_diff: str | None = None,
    hash_differs: bool = True,
    note: str | None = None,
) -> str:
    what = (
        "the hashes differ" if hash_differs else "the hashes are equal, only the pad values differ"
    )
    lines = [
        f"mmhash_equal: {what} ({a.engine} {a.sglang_version}, {a.device} path)",
        f"  actual:   {_mm_line(a)}",
        f"  expected: {expected_line}",
    ]
    if feature_diff:
        lines.append(f"  features: {feature_diff}")
    if note:
        lines.append(f"  note:     {note}")
    return "\n".join(lines)


def feature_difference(a: Any, b: Any, where: str = "feature") -> str | None:
    """Where two features first differ (type, dtype, shape, first differing element), or None."""
    if isinstance(a, list) or isinstance(b, list):
        if not (isinstance(a, list) and isinstance(b, list)):
            return f"{where}: {type(a).__name__} vs {type(b).__name__}"
        if len(a) != len(b):
            return f"{where}: list of {len(a)} vs list of {len(b)}"
        return next(
            (
                d
                for i, (x, y) in enumerate(zip(a, b, strict=True))
                if (d := feature_difference(x, y, f"{where}[{i}]"))
            ),
            None,
        )
    va, vb = _array_view(a), _array_view(b)
    if va is None or vb is None:
        return (
            None
            if _same_bytes(a, b)
            else f"{where}: {type(a).__name__} vs {type(b).__name__} with different contents"
        )
    if va[:2] != vb[:2]:
        return f"{where}: dtype {va[0]} shape {va[1]} vs dtype {vb[0]} shape {vb[1]}"
    return _first_difference(a, b, va[2], vb[2], va[1], where)


def _array_view(x: Any) -> tuple[str, tuple, Any] | None:
    """``(dtype, shape, flat numpy array of raw bit patterns)`` of a tensor or ndarray, else None."""
    from .features import is_ndarray, is_tensor

    if is_tensor(x):
        t = x.detach().cpu().contiguous().reshape(-1)
        raw = (
            t.view(torch_uint(t.element_size())).numpy()
            if t.element_size() in (1, 2, 4, 8)
            else t.numpy()
        )
        return str(x.dtype).removeprefix("torch."), tuple(x.shape), raw
    if is_ndarray(x):
        import numpy as np

        flat = np.ascontiguousarray(x).reshape(-1)
        raw = (
            flat.view(f"u{flat.itemsize}")
            if flat.itemsize in (1, 2, 4, 8) and not x.dtype.hasobject
            else flat
        )
        return str(x.dtype), tuple(x.shape), raw
    return None


def torch_uint(size: int) -> Any:
    """A torch integer dtype of ``size`` bytes, to compare raw bit patterns."""
    import torch

    return {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[size]


def _first_difference(a: Any, b: Any, xa: Any, xb: Any, shape: tuple, where: str) -> str | None:
    """The first element whose bits differ: its index, both values and both bit patterns."""
    import numpy as np

    diff = np.flatnonzero(xa != xb)
    if not diff.size:
        return None
    i = int(diff[0])
    idx = tuple(int(k) for k in np.unravel_index(i, shape)) if shape else ()
    width = 2 * xa.itemsize
    bits = f"bits 0x{int(xa[i]) & ((1 << 4 * width) - 1):0{width}x} vs 0x{int(xb[i]) & ((1 << 4 * width) - 1):0{width}x}"
    return (
        f"{where}: first differing element at index {idx}: {_element(a, i)} vs {_element(b, i)} ({bits}); "
        f"{diff.size} of {xa.size} elements differ"
    )


def _element(x: Any, i: int) -> Any:
    """Element ``i`` of ``x`` in logical row-major order, as a Python scalar."""
    flat = x.reshape(-1)
    return flat[i].item()


def _same_bytes(a: Any, b: Any) -> bool:
    try:
        return bytes(memoryview(a)) == bytes(memoryview(b))
    except TypeError:
        return a == b
