"""Safe loading of feature files and folders: what a file holds, as SGLang would be handed it.

Loading never runs code: ``torch.load(weights_only=True)``, ``np.load(allow_pickle=False)``.
Large ``.npy``/``.pt``/``.safetensors`` files are memory-mapped, not read into memory. Every
failure is a :class:`FeatureLoadError` whose one-line message names the file and the problem.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import FeatureLoadError, FeatureTooLargeError, MmhashError, first_line

TORCH_SUFFIXES = (".pt", ".pth")
NUMPY_SUFFIXES = (".npy",)
CONTAINER_SUFFIXES = (".npz", ".safetensors")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SUPPORTED = TORCH_SUFFIXES + NUMPY_SUFFIXES + CONTAINER_SUFFIXES + IMAGE_SUFFIXES
IMAGE_NOTE = (
    "image decoded as Pillow RGB -> CHW uint8 tensor (the old helper's semantics); this is not a "
    "processor output and SGLang never assigns this value: it hashes its processor's output (or, "
    "for Qwen3-VL, an identity of the file); use `mmhash predict IMAGE --model DIR` for what "
    "SGLang assigns"
)


@dataclass(frozen=True)
class LoadedFeature:
    """One feature read from a file: ``key`` names it inside a container (else ``None``)."""

    path: str
    key: str | None
    feature: Any
    note: str | None = None


def load_feature(
    path: str | os.PathLike, key: str | None = None, *, as_tensor: bool = False
) -> Any:
    """The feature stored in ``path`` (``key`` selects one entry of a container)."""
    items = list(iter_features(path, key, as_tensor=as_tensor))
    if len(items) != 1:
        keys = ", ".join(str(i.key) for i in items)
        raise FeatureLoadError(
            f"{path}: holds {len(items)} features ({keys}); pass key= to pick one"
        )
    return items[0].feature


def iter_features(
    path: str | os.PathLike, key: str | None = None, *, as_tensor: bool = False
) -> Iterator[LoadedFeature]:
    """Every feature in a file (one, or one per container entry), or ``key``'s alone.

    ``as_tensor`` reads the file with ``torch.load`` whatever its extension (the old ``--tensor``).
    """
    name = os.fspath(path)
    _check_file(name)
    suffix = os.path.splitext(name)[1].lower()
    if not as_tensor and suffix not in SUPPORTED:
        raise FeatureLoadError(
            f"{name}: unsupported file type {suffix or '(no extension)'!r} "
            f"(supported: {' '.join(SUPPORTED)}; --tensor reads any file with torch.load)"
        )
    found = False
    seen: list[str | None] = []
    try:
        for k, feature, note in _entries(name, suffix, as_tensor):
            seen.append(k)
            if key is None or k == key:
                found = True
                yield LoadedFeature(name, k, feature, note)
    except MmhashError:
        raise
    except MemoryError as e:
        raise FeatureTooLargeError(
            f"{name}: loading it needs more memory than is available ({first_line(e)})"
        ) from None
    except (
        Exception
    ) as e:  # an undocumented exception of torch/numpy/Pillow/safetensors on a malformed file
        kind = "torch" if as_tensor else suffix
        raise FeatureLoadError(
            f"{name}: not a readable {kind} file ({type(e).__name__}: {first_line(e)[:200]})"
        ) from None
    if key is not None and not found:
        raise FeatureLoadError(f"{name}: no entry named {key!r} ({_available(seen)})")


def _available(keys: list[str | None], limit: int = 20) -> str:
    """What a "no entry named X" error offers instead: the file's keys (the first ``limit``)."""
    named = [k for k in keys if k is not None]
    if not named:
        return "the file holds one feature without a key: drop the key"
    more = f", ... {len(named) - limit} more" if len(named) > limit else ""
    return "available keys: " + ", ".join(named[:limit]) + more


def _entries(
    name: str, suffix: str, as_tensor: bool
) -> Iterator[tuple[str | None, Any, str | None]]:
    if as_tensor or suffix in TORCH_SUFFIXES:
        yield from _torch_entries(name)
    elif suffix in NUMPY_SUFFIXES:
        yield None, _load_npy(name), None
    elif suffix == ".npz":
        yield from _npz_entries(name)
    elif suffix == ".safetensors":
        yield from _safetensors_entries(name)
    else:
        yield None, _load_image(name), IMAGE_NOTE


def iter_paths(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Files to hash: each file as given, each folder's supported files recursively, sorted.

    A missing path, a symlink loop or an empty folder raises :class:`FeatureLoadError`.
    """
    for p in paths:
        name = os.fspath(p)
        if os.path.isdir(name):
            files = sorted(_walk(name))
            if not files:
                raise FeatureLoadError(
                    f"{name}: folder holds no feature files ({' '.join(SUPPORTED)})"
                )
            yield from files
        else:
            yield name


def _walk(root: str) -> Iterator[str]:
    seen: set[tuple[int, int]] = set()

    def visit(folder: str) -> Iterator[str]:
        try:
            st = os.stat(folder)
            names = sorted(os.listdir(folder))
        except OSError as e:
            raise FeatureLoadError(f"{folder}: cannot read folder ({e.strerror})") from None
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            raise FeatureLoadError(f"{folder}: symlink loop (this folder is already being walked)")
        seen.add(ident)
        for n in names:
            if n.startswith("."):
                continue
            full = os.path.join(folder, n)
            if os.path.isdir(full):
                yield from visit(full)
            elif os.path.splitext(n)[1].lower() in SUPPORTED:
                yield full
        seen.discard(ident)

    yield from visit(root)


def _check_file(name: str) -> None:
    try:
        st = os.stat(name)
    except OSError as e:
        raise FeatureLoadError(f"{name}: {e.strerror.lower() if e.strerror else e}") from None
    if os.path.isdir(name):
        raise FeatureLoadError(
            f"{name}: is a folder (pass it without --key to hash every file in it)"
        )
    if not stat.S_ISREG(st.st_mode):
        raise FeatureLoadError(f"{name}: not a regular file (a FIFO, socket or device)")
    if st.st_size == 0:
        raise FeatureLoadError(f"{name}: empty file")
    if not os.access(name, os.R_OK):
        raise FeatureLoadError(f"{name}: permission denied")


def _torch_entries(name: str) -> Iterator[tuple[str | None, Any, str | None]]:
    obj = _torch_load(name)
    if isinstance(obj, dict):
        found = False
        for k, v in obj.items():
            if _is_feature_value(v):
                found = True
                _check_dense(f"{name}[{k}]", v)
                yield str(k), v, None
        if not found:
            raise FeatureLoadError(f"{name}: holds a dict with no tensor or list of tensors in it")
        return
    if not _is_feature_value(obj) and not isinstance(obj, tuple):
        raise FeatureLoadError(
            f"{name}: holds a {type(obj).__name__}, not a tensor or a list of tensors"
        )
    _check_dense(name, obj)
    yield None, obj, None


def _check_dense(label: str, value: Any) -> None:
    """Refuse sparse, nested and meta tensors: they have no dense bytes for any hash path to read."""
    import torch

    from .features import flatten_nested_list

    for t in flatten_nested_list(value):
        if not isinstance(t, torch.Tensor):
            continue
        what = (
            "nested"
            if t.is_nested
            else f"{t.layout}"
            if t.layout != torch.strided
            else "meta-device"
            if t.is_meta
            else None
        )
        if what:
            raise FeatureLoadError(
                f"{label}: holds a {what} tensor; only dense tensors with data can be hashed"
            )


def _is_feature_value(v: Any) -> bool:
    import torch

    return isinstance(v, (torch.Tensor, list))


def _torch_load(name: str) -> Any:
    import pickle

    import torch

    zipped = zipfile.is_zipfile(name)
    size = os.path.getsize(name)
    available = _available_memory()
    if not zipped and size > available:
        raise FeatureTooLargeError(
            f"{name}: {size} bytes in the legacy (non-zip) torch format, which cannot be memory-mapped; "
            f"only {available} bytes of memory are available (re-save it with torch.save)"
        )
    try:
        return torch.load(name, map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as e:
        detail = _unpickling_detail(e)
        if "GLOBAL" in detail:
            raise FeatureLoadError(
                f"{name}: refused: it holds pickled Python objects that safe loading "
                f"(torch.load weights_only=True) does not run ({detail[:160]})"
            ) from None
        raise FeatureLoadError(f"{name}: not a readable torch file ({detail[:200]})") from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        UnicodeDecodeError,
        zipfile.BadZipFile,
    ) as e:
        raise FeatureLoadError(
            f"{name}: not a readable torch file ({first_line(e)[:200]})"
        ) from None


def _unpickling_detail(e: BaseException) -> str:
    """The sentence of torch's weights-only error that says what was refused (the rest is advice)."""
    for line in str(e).splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.split("WeightsUnpickler error:")[-1].strip().split(". ")[0]
    return first_line(e)


def _load_npy(name: str) -> Any:
    import numpy as np

    try:
        return np.load(name, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        if "pickled (object) data" in str(e):
            raise FeatureLoadError(
                f"{name}: not a .npy file (no \\x93NUMPY magic; np.load would unpickle it, which is refused)"
            ) from None
        if _is_object_array_refusal(e):
            raise FeatureLoadError(
                f"{name}: refused: an object array (pickled Python objects) cannot be loaded safely, "
                f"and SGLang would hash its memory addresses anyway"
            ) from None
        if "mmap" in str(e) or "empty" in str(e):  # zero-size arrays cannot be mapped
            try:
                return np.load(name, allow_pickle=False)
            except (ValueError, OSError, EOFError) as e2:
                raise FeatureLoadError(
                    f"{name}: not a readable .npy file ({first_line(e2)})"
                ) from None
        raise FeatureLoadError(f"{name}: not a readable .npy file ({first_line(e)})") from None
    except (OSError, EOFError, TypeError, SyntaxError, UnicodeDecodeError) as e:
        raise FeatureLoadError(f"{name}: not a readable .npy file ({first_line(e)})") from None


def _is_object_array_refusal(e: ValueError) -> bool:
    """numpy's ways of saying it will not load an object (pickled) array with allow_pickle=False."""
    text = str(e)
    return "allow_pickle" in text or "Object arrays" in text or "Python objects" in text


def _npz_entries(name: str) -> Iterator[tuple[str | None, Any, str | None]]:
    import numpy as np

    if not zipfile.is_zipfile(name):
        raise FeatureLoadError(f"{name}: not a .npz file (not a zip archive)")
    try:
        archive = np.load(name, allow_pickle=False)
        members = {i.filename: i.file_size for i in archive.zip.infolist()}
        keys = list(archive.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise FeatureLoadError(f"{name}: not a readable .npz file ({first_line(e)})") from None
    with archive:
        for k in keys:
            size = members.get(k + ".npy", members.get(k, 0))
            available = _available_memory()
            if size > available:
                raise FeatureTooLargeError(
                    f"{name}: entry {k!r} needs {size} bytes in memory (compressed .npz entries "
                    f"cannot be memory-mapped); only {available} are available"
                )
            try:
                yield k, archive[k], None
            except ValueError as e:
                if _is_object_array_refusal(e):
                    raise FeatureLoadError(
                        f"{name}: entry {k!r} refused: an object array cannot be loaded safely"
                    ) from None
                raise FeatureLoadError(
                    f"{name}: entry {k!r} unreadable ({first_line(e)})"
                ) from None
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise FeatureLoadError(
                    f"{name}: entry {k!r} unreadable ({first_line(e)})"
                ) from None


def _safetensors_entries(name: str) -> Iterator[tuple[str | None, Any, str | None]]:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:  # pragma: no cover - safetensors is a dependency
        raise FeatureLoadError(
            f"{name}: reading .safetensors needs the safetensors package"
        ) from None
    try:
        handle = safe_open(name, framework="pt")
        keys = sorted(handle.keys())
        for k in keys:
            yield k, handle.get_tensor(k), None
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise FeatureLoadError(
            f"{name}: not a readable .safetensors file ({first_line(e)[:200]})"
        ) from None


def _load_image(name: str) -> Any:
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(name) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:
        raise FeatureLoadError(f"{name}: not a readable image ({first_line(e)})") from None
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62
