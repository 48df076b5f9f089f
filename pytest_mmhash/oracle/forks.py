"""Run a fork's OWN hashing functions, taken from its installed files with ``ast`` (harness only).

A fork is installed with ``pip install --no-deps --target DIR`` (``mmhash install-sglang
ENGINE==V PARENT``), so DIR holds its files and its distribution metadata; nothing of it is imported
and nothing is put on ``sys.path``. The functions that hash are cut out of its modules with :mod:`ast` and executed
in a namespace holding torch, numpy and the few names they use:

* sglang-kt: ``data_hash``, ``tensor_hash``, ``hash_feature`` (``managers/mm_utils.py``),
  ``flatten_nested_list`` (``utils/common.py``), ``MM_PAD_SHIFT_VALUE``, ``_compute_pad_value``,
  ``Modality``, ``MultimodalInputFormat`` and the whole ``MultimodalDataItem`` class
  (``managers/schedule_batch.py``); its CUDA path is its own ``layers/multimodal.py`` (Triton),
  loaded by path and run on a :class:`~pytest_mmhash.oracle.driver.FakeCuda` tensor under
  ``TRITON_INTERPRET=1``. ``set_pad_value`` imports ``hash_feature`` from ``mm_utils`` inside its
  body; that import statement is dropped and the extracted ``hash_feature`` is bound instead.
* sglang-omni: ``audio_fingerprint`` and ``audio_fingerprint_int`` (``utils/audio.py``),
  ``contextualize_cache_key`` (Qwen3-Omni's preprocessor) and ``preprocessing/cache_key.py``
  (loaded by path; it needs only numpy, torch, xxhash and PIL), and from the pinned upstream
  sglang (another install dir) ``MM_PAD_SHIFT_VALUE`` and ``_compute_pad_value``.

``SGLANG_MM_SKIP_COMPUTE_HASH`` is read from the environment as the fork's ``envs`` would.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import os
import sys
import types
import typing
from collections.abc import Mapping
from enum import Enum, auto
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..install_sglang import FORK_MARKER


@dataclasses.dataclass(frozen=True)
class Installed:
    """One distribution installed into its own target dir: its name, version and files."""

    name: str
    version: str
    dist: metadata.Distribution

    def path(self, rel: str) -> Path:
        """An installed file of the distribution."""
        p = Path(str(self.dist.locate_file(rel)))
        if not p.is_file():
            raise FileNotFoundError(f"{self.name} {self.version} has no {rel}")
        return p


def installed_in(site: str | os.PathLike) -> Installed:
    """The one distribution installed in ``site``, read from its metadata."""
    dists = list(metadata.distributions(path=[str(site)]))
    if len(dists) != 1:
        raise RuntimeError(f"{site}: expected one installed distribution, found {len(dists)}")
    d = dists[0]
    return Installed(d.metadata["Name"].lower().replace("_", "-"), d.version, d)


def sites(env: Mapping[str, str] | None = None) -> list[Installed]:
    """The installs named by ``MMHASH_FORK_SITES`` (``os.pathsep``-separated): each entry is an
    install dir, or a parent of install dirs as ``mmhash install-sglang ENGINE==V`` makes them."""
    raw = (os.environ if env is None else env).get("MMHASH_FORK_SITES", "")
    dirs: list[Path] = []
    for entry in (Path(s) for s in raw.split(os.pathsep) if s):
        marked = sorted(p.parent for p in entry.glob(f"*/{FORK_MARKER}"))
        dirs += marked or [entry]
    return [installed_in(d) for d in dirs]


def pinned_sglang(fork: Installed) -> str | None:
    """The ``sglang==X`` a fork's metadata requires (sglang-omni pins one), or None."""
    for req in fork.dist.requires or []:
        name, sep, rest = req.partition("==")
        if sep and name.strip().lower() == "sglang":
            return rest.split(";")[0].strip()
    return None


class _DropImportsFrom(ast.NodeTransformer):
    """Removes ``from MODULE import ...`` statements (the name is bound in the namespace instead)."""

    def __init__(self, module: str) -> None:
        self.module = module

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        return None if node.module == self.module else node


def extract(path: Path, names: set[str], drop_from: str | None = None) -> str:
    """The source of the top-level functions, classes and assignments named ``names``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            keep.append(node)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in names for t in node.targets
        ):
            keep.append(node)
    found = {getattr(n, "name", None) for n in keep} | {
        t.id
        for n in keep
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    if names - found:
        raise RuntimeError(f"{path}: not found: {sorted(names - found)}")
    module = ast.Module(body=keep, type_ignores=[])
    if drop_from:
        module = _DropImportsFrom(drop_from).visit(module)
    return ast.unparse(ast.fix_missing_locations(module))


def _load_by_path(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _envs() -> Any:
    flag = types.SimpleNamespace(
        get=lambda: os.environ.get("SGLANG_MM_SKIP_COMPUTE_HASH", "").lower() in ("1", "true")
    )
    return types.SimpleNamespace(SGLANG_MM_SKIP_COMPUTE_HASH=flag)


class _Module:
    """Stands in ``sys.modules`` for a namespace: an object whose ``__dict__`` is that namespace."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.__dict__ = ns


def _run(src: str, ns: dict[str, Any]) -> None:
    """Execute extracted source in ``ns``; while it runs, ``ns`` is registered as a module, because
    ``@dataclass`` looks its class's module up in ``sys.modules`` (removed again afterwards)."""
    sys.modules[ns["__name__"]] = _Module(ns)  # type: ignore[assignment]
    try:
        exec(src, ns)
    finally:
        del sys.modules[ns["__name__"]]


def _base_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": "mmhash_fork_oracle", "torch": torch, "np": np}
    ns.update(hashlib=hashlib, dataclasses=dataclasses, Enum=Enum, auto=auto, lru_cache=lru_cache)
    ns.update(
        {k: getattr(typing, k) for k in ("Any", "Dict", "List", "Optional", "Tuple", "Union")}
    )
    return ns


@dataclasses.dataclass
class KtOracle:
    """sglang-kt's own ``hash_feature`` and ``MultimodalDataItem`` from an installed kt."""

    fork: Installed
    ns: dict[str, Any]

    @classmethod
    def load(cls, fork: Installed) -> KtOracle:
        """Extract and execute kt's hashing code (the CUDA kernels load on first use)."""
        ns = _base_namespace()
        ns.update(envs=_envs(), CudaIpcTensorTransportProxy=type("CudaIpcProxy", (), {}))
        ns["gpu_tensor_hash"] = lambda t: cls._gpu(fork)(t)
        _run(extract(fork.path("sglang/srt/utils/common.py"), {"flatten_nested_list"}), ns)
        mm = {"data_hash", "tensor_hash", "hash_feature"}
        _run(extract(fork.path("sglang/srt/managers/mm_utils.py"), mm), ns)
        sb = {
            "MM_PAD_SHIFT_VALUE",
            "_compute_pad_value",
            "Modality",
            "MultimodalInputFormat",
            "MultimodalDataItem",
        }
        src = extract(
            fork.path("sglang/srt/managers/schedule_batch.py"), sb, "sglang.srt.managers.mm_utils"
        )
        _run(src, ns)
        return cls(fork, ns)

    @staticmethod
    @cache
    def _gpu(fork: Installed) -> Any:
        return _load_by_path(
            fork.path("sglang/srt/layers/multimodal.py"), "mmhash_fork_kt_multimodal"
        ).gpu_tensor_hash

    def item(self, feature: Any, device: str, preset_hash: int | None = None) -> dict[str, Any]:
        """kt's ``MultimodalDataItem(...).set_pad_value()``: hash and pad, or the error it raises."""
        from .driver import _err, _to_device

        kw = {} if preset_hash is None else {"hash": preset_hash}
        try:
            it = self.ns["MultimodalDataItem"](
                modality=self.ns["Modality"].IMAGE, feature=_to_device(feature, device), **kw
            )
            it.set_pad_value()
        except Exception as e:  # the fork's own exception, reported as is
            return _err(e)
        return {"hash": int(it.hash), "pad_values": [int(it.pad_value)]}


@dataclasses.dataclass
class OmniOracle:
    """sglang-omni's own waveform fingerprint, cache keys and key pad, with the pinned sglang's pad."""

    fork: Installed
    upstream: Installed
    ns: dict[str, Any]
    cache_key: types.ModuleType

    @classmethod
    def load(cls, fork: Installed, upstream: Installed) -> OmniOracle:
        """Extract and execute omni's functions and the pinned upstream's ``_compute_pad_value``."""
        import xxhash

        ns = _base_namespace()
        ns.update(xxhash=xxhash, NDArray=Any)
        audio = {"audio_fingerprint", "audio_fingerprint_int"}
        _run(extract(fork.path("sglang_omni/utils/audio.py"), audio), ns)
        pre = fork.path("sglang_omni/models/qwen3_omni/components/preprocessor.py")
        ctx = "contextualize_cache_key"  # 0.1.1 names it _contextualize_cache_key
        ctx = ctx if f"def {ctx}(" in pre.read_text(encoding="utf-8") else f"_{ctx}"
        _run(extract(pre, {ctx}), ns)
        ns["contextualize_cache_key"] = ns[ctx]
        up = {"MM_PAD_SHIFT_VALUE", "_compute_pad_value"}
        _run(extract(upstream.path("sglang/srt/managers/schedule_batch.py"), up), ns)
        ck = _load_by_path(
            fork.path("sglang_omni/preprocessing/cache_key.py"), "mmhash_fork_omni_cache_key"
        )
        return cls(fork, upstream, ns, ck)

    def waveform_item(self, waveform: Any) -> dict[str, Any]:
        """An ASR item: ``hash = audio_fingerprint_int(audio_fingerprint(w))``, upstream's pad."""
        try:
            h = self.ns["audio_fingerprint_int"](self.ns["audio_fingerprint"](waveform))
        except Exception as e:
            from .driver import _err

            return _err(e)
        return {"hash": int(h), "pad_values": [int(self.ns["_compute_pad_value"](h))]}

    def key_pad(self, cache_key: str, vocab_size: int) -> int:
        """Qwen3-Omni's own two pad lines (``h = ...``, ``pad_val = ...``), cut out of
        ``build_sglang_thinker_request`` and run on ``cache_key`` and ``vocab_size``."""
        if "_key_pad" not in self.ns:
            path = self.fork.path("sglang_omni/models/qwen3_omni/request_builders.py")
            _run(_pad_lines(path), self.ns)
        return int(self.ns["_key_pad"](cache_key, vocab_size))


def _pad_lines(path: Path) -> str:
    """``def _key_pad(cache_key, vocab_size)`` made of the fork's ``h =`` and ``pad_val =`` lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    fn = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and n.name == "build_sglang_thinker_request"
    )
    lines: dict[str, str] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name, text = node.targets[0].id, ast.unparse(node)
            if (name == "h" and "xxh3_64(cache_key" in text) or name == "pad_val":
                lines.setdefault(name, text)
    if set(lines) != {"h", "pad_val"}:
        raise RuntimeError(f"{path}: the pad lines were not found (got {sorted(lines)})")
    return (
        "def _key_pad(cache_key, vocab_size):\n"
        f"    {lines['h']}\n    {lines['pad_val']}\n    return pad_val\n"
    )
