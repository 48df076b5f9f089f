"""Import shims that let real SGLang releases import on CPU-only torch 2.13 (docs/spec.md §9.2).

Nothing is patched at import time; call :func:`apply_shims` before ``import sglang``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from typing import Any

from packaging.version import Version

from ..errors import UnknownVersionError
from ..versions import base_version

_applied: set[str] = set()


class _Stub(types.ModuleType):
    """A module whose every public attribute is a no-op callable."""

    __path__: list[str] = []

    def __getattr__(self, name: str) -> Any:
        """Return a do-nothing callable for any non-dunder attribute."""
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: None


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``sgl_kernel*`` as stubs, except ``sgl_kernel.scalar_type`` (sglang has a fallback)."""

    def find_spec(
        self, name: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Claim ``sgl_kernel`` and its submodules."""
        if name.split(".")[0] == "sgl_kernel" and name != "sgl_kernel.scalar_type":
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """Create the stub module."""
        return _Stub(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to execute."""


class _AnyMeta(type):
    """Metaclass of permissive placeholders: any attribute, call, subscript or ``|`` gives another one."""

    def __getattr__(cls, name: str) -> Any:
        """Return a new placeholder for any non-dunder attribute."""
        if name.startswith("__"):
            raise AttributeError(name)
        return _any(name)

    def __call__(cls, *a: Any, **k: Any) -> Any:
        """Act as an identity decorator on one callable, otherwise return a placeholder."""
        if len(a) == 1 and callable(a[0]) and not k:
            return a[0]
        return _any("result")

    def __getitem__(cls, key: Any) -> Any:
        """Return a placeholder."""
        return _any("item")

    def __or__(cls, other: Any) -> Any:
        """Return a placeholder (type unions in annotations)."""
        return _any("union")

    __ror__ = __or__


def _any(name: str) -> Any:
    """A new permissive placeholder class (usable as value, base class, decorator or type)."""
    return _AnyMeta(name, (), {})


class _AnyModule(types.ModuleType):
    """A package whose every public attribute is a permissive placeholder."""

    __path__: list[str] = []

    def __getattr__(self, name: str) -> Any:
        """Return a placeholder for any non-dunder attribute."""
        if name.startswith("__"):
            raise AttributeError(name)
        return _any(name)


class _AnyFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``vllm*`` and ``decord*`` (or only the given roots) as permissive placeholder packages."""

    def __init__(self, roots: tuple[str, ...] = ("vllm", "decord")) -> None:
        self.roots = roots

    def find_spec(
        self, name: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Claim the stubbed roots and their submodules."""
        if name.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """Create the placeholder module."""
        return _AnyModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to execute."""


def _amx_shim() -> None:
    """(1) sglang 0.4.x calls ``torch._C._cpu._is_amx_tile_supported``, removed from newer torch."""
    import torch

    if not hasattr(torch._C._cpu, "_is_amx_tile_supported"):
        torch._C._cpu._is_amx_tile_supported = lambda: False  # type: ignore[attr-defined]


def _sgl_kernel_shim() -> None:
    """(2) stub ``sgl_kernel*`` (0.4.x, 0.5.6-0.5.10 import it at module level; it cannot load on CPU)."""
    if not any(isinstance(f, _StubFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StubFinder())


def _vllm_shim() -> None:
    """(4) harness-only: placeholder ``vllm``/``decord`` so 0.4.6.post5-0.4.8.post1 import."""
    if not any(isinstance(f, _AnyFinder) and "vllm" in f.roots for f in sys.meta_path):
        sys.meta_path.insert(0, _AnyFinder())


def _torchvision_shim() -> None:
    """(3) PyPI torchvision is a CUDA build; tolerate its fake-op registration failing on CPU torch."""
    import torch.library as L

    orig = L.Library._register_fake
    if getattr(orig, "_mmhash_shim", False):
        return

    def tolerant(self: Any, *a: Any, **k: Any) -> Any:
        """Ignore 'operator ... does not exist' from torchvision's C ops."""
        try:
            return orig(self, *a, **k)
        except RuntimeError as e:
            if "does not exist" not in str(e):
                raise
            return None

    tolerant._mmhash_shim = True  # type: ignore[attr-defined]
    L.Library._register_fake = tolerant  # type: ignore[method-assign]


def _decord_shim() -> None:
    """A ``decord`` placeholder (0.5.9's video utilities import it at module level)."""
    if not any(isinstance(f, _AnyFinder) and "decord" in f.roots for f in sys.meta_path):
        sys.meta_path.insert(0, _AnyFinder(("decord",)))


#: Every shim by the name :func:`apply_shims` and friends report it under.
_SHIMS = {
    "amx": _amx_shim,
    "sgl_kernel": _sgl_kernel_shim,
    "torchvision": _torchvision_shim,
    "vllm": _vllm_shim,
    "decord": _decord_shim,
}


def _apply(*names: str) -> None:
    """Apply the named shims (each is idempotent) and remember them as applied."""
    for name in names:
        _SHIMS[name]()
        _applied.add(name)


def importable_sglang_version() -> str | None:
    """Version of the sglang that ``import sglang`` would load, read from its source without importing it."""
    spec = importlib.util.find_spec("sglang")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    for name in ("_version.py", "version.py"):
        try:
            with open(os.path.join(root, name)) as f:
                m = re.search(r"__version__\s*=\s*(?:version\s*=\s*)?['\"]([^'\"]+)['\"]", f.read())
        except OSError:
            continue
        if m:
            return m.group(1)
    return None


def _in_range(version: str, first: str, below: str) -> bool:
    """``first <= version < below`` (local labels ignored); False for an unparsable version."""
    try:
        v = base_version(version)
    except UnknownVersionError:
        return False
    return Version(first) <= v < Version(below)


def needs_sgl_kernel_stub(version: str) -> bool:
    """True for releases that import ``sgl_kernel`` at module level: 0.4.x and 0.5.6-0.5.10."""
    return _in_range(version, "0.4", "0.5") or _in_range(version, "0.5.6", "0.5.11")


def needs_vllm_stub(version: str) -> bool:
    """True for releases up to 0.4.8.post1, which import ``vllm`` at module level."""
    return _in_range(version, "0", "0.4.8.post2")


def _flag(env: str, version: str | None, rule: Any) -> bool:
    """``env`` = 1/0 decides; unset means ``rule(version)`` for the importable sglang."""
    value = os.environ.get(env)
    if value is not None:
        return value == "1"
    return version is not None and bool(rule(version))


def apply_shims(sgl_kernel: bool | None = None, vllm: bool | None = None) -> list[str]:
    """Apply shims (1) and (3) always; (2) and (4) as asked, else by env var, else by release."""
    version = importable_sglang_version()
    if sgl_kernel is None:
        sgl_kernel = _flag("SHIM_SGL_KERNEL", version, needs_sgl_kernel_stub)
    if vllm is None:
        vllm = _flag("SHIM_STUB_VLLM", version, needs_vllm_stub)
    _apply("amx", "torchvision")
    if sgl_kernel:
        _apply("sgl_kernel")
    if vllm:
        _apply("vllm")
    return sorted(_applied)


def apply_processor_shims() -> list[str]:
    """Shims for running SGLang's multimodal processor path on CPU torch (spec §10): (1), (3),
    (2) for every release (0.5.23's tokenizer manager imports ``sgl_kernel`` through its KV-cache
    code) and a ``decord`` placeholder (0.5.9's video utilities import it at module level)."""
    apply_shims(sgl_kernel=True, vllm=False)
    _apply("decord")
    return sorted(_applied)


#: What each processor shim stands in for, as the output of ``mmhash predict`` names it.
PROCESSOR_SHIMS = {
    "sgl_kernel": "sgl_kernel stub (not installed)",
    "decord": "decord placeholder (not installed)",
    "torchvision": "torchvision fake-op tolerance (its C ops do not load on this torch)",
}


def missing_processor_shims() -> list[str]:
    """The processor shims this machine needs, each for something it lacks: ``sgl_kernel`` or
    ``decord`` not installed, or torchvision's C ops library not loading on this torch (PyPI's
    CUDA torchvision beside a CPU torch). A machine set up like the server needs none."""
    missing = [name for name in ("sgl_kernel", "decord") if importlib.util.find_spec(name) is None]
    if not _torchvision_ops_load():
        missing.append("torchvision")
    return missing


def _torchvision_ops_load() -> bool:
    """Whether torchvision's C ops library loads on the installed torch (True without torchvision,
    or with an install that has no such library: nothing to tolerate then)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True
    libs = [
        os.path.join(root, name)
        for root in spec.submodule_search_locations
        for name in os.listdir(root)
        if name.startswith("_C.") and name.endswith((".so", ".pyd"))
    ]
    if not libs:
        return True
    import torch

    try:
        torch.ops.load_library(libs[0])
    except OSError:
        return False
    return True


def apply_missing_processor_shims() -> list[str]:
    """Apply only the shims :func:`missing_processor_shims` names (``mmhash predict`` does, before
    SGLang's processor runs); the names of those applied, none on a machine set up like the server."""
    missing = missing_processor_shims()
    _apply(*missing)
    return missing
