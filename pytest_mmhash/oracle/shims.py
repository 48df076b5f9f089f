"""Import shims that let real SGLang releases import on CPU-only torch 2.13 (spec §3).

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

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        """Claim ``sgl_kernel`` and its submodules."""
        if name.split(".")[0] == "sgl_kernel" and name != "sgl_kernel.scalar_type":
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """Create the stub module."""
        return _Stub(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to execute."""


def _amx_shim() -> None:
    """(1) sglang 0.4.x calls ``torch._C._cpu._is_amx_tile_supported``, removed from newer torch."""
    import torch

    if not hasattr(torch._C._cpu, "_is_amx_tile_supported"):
        torch._C._cpu._is_amx_tile_supported = lambda: False


def _sgl_kernel_shim() -> None:
    """(2) stub ``sgl_kernel*`` (0.4.x, 0.5.6-0.5.10 import it at module level; it cannot load on CPU)."""
    if not any(isinstance(f, _StubFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StubFinder())


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
    L.Library._register_fake = tolerant


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


def needs_sgl_kernel_stub(version: str) -> bool:
    """True for releases that import ``sgl_kernel`` at module level: 0.4.x and 0.5.6-0.5.10."""
    head = version.split(".post")[0].split("+")[0]
    try:
        k = tuple(int(x) for x in head.split(".")[:3])
    except ValueError:
        return False
    return (0, 4, 0) <= k < (0, 5, 0) or (0, 5, 6) <= k <= (0, 5, 10)


def apply_shims(sgl_kernel: bool | None = None) -> list[str]:
    """Apply shims (1) and (3) always, and (2) as asked; None means ``SHIM_SGL_KERNEL``, else by release."""
    if sgl_kernel is None:
        env = os.environ.get("SHIM_SGL_KERNEL")
        if env is not None:
            sgl_kernel = env == "1"
        else:
            version = importable_sglang_version()
            sgl_kernel = version is not None and needs_sgl_kernel_stub(version)
    _amx_shim()
    _applied.add("amx")
    _torchvision_shim()
    _applied.add("torchvision")
    if sgl_kernel:
        _sgl_kernel_shim()
        _applied.add("sgl_kernel")
    return sorted(_applied)
