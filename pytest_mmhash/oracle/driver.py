"""Drive real SGLang's own hashing code (CPU path, and the CUDA path via FakeCuda) to get golden values.

Runs only inside a venv where real ``sglang`` is importable (``mmhash install-sglang``).

CUDA path without a GPU (docs/spec.md §8.1): ``TRITON_INTERPRET=1`` must be in the environment before
anything imports triton (sglang imports it at module level), because SGLang's Triton kernels are
decorated when their module is imported.  The first call into SGLang sets it (before importing
sglang) when no real CUDA device is present and it is not already set; if triton was imported
earlier the CUDA path is unreliable, so set the variable in the shell instead when in doubt.  Tensors are then wrapped in
:class:`FakeCuda`, a CPU tensor that claims ``is_cuda``, so SGLang takes its GPU branch and runs
its own kernels in Triton's CPU interpreter.  With a real GPU, ``device="cuda"`` uses ``.cuda()``.

Numpy convention: for ``device="cpu"`` a numpy array is passed to SGLang as is.  For
``device="cuda"`` a numpy feature means "the same data as a CUDA tensor": it is converted to
native byte order, made C-contiguous, ``torch.from_numpy``'d and then put on CUDA (FakeCuda).
Those conversions are the harness's, not SGLang's, so errors they raise are not caught.

CLI: ``python -m pytest_mmhash.oracle.driver --selftest`` prints the docs/spec.md §7 vectors.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from typing import Any

import numpy as np
import torch

from ..errors import error_text

_REAL_CUDA = torch.cuda.is_available()


def _interpret_triton() -> None:
    """Without a GPU, run SGLang's kernels in Triton's interpreter (before sglang imports triton)."""
    if _REAL_CUDA or "TRITON_INTERPRET" in os.environ:
        return
    if "triton" in sys.modules:
        print(
            "pytest_mmhash.oracle.driver: triton was imported before TRITON_INTERPRET=1 could be set;"
            " the CUDA path may fail. Export TRITON_INTERPRET=1 before starting python.",
            file=sys.stderr,
        )
    os.environ["TRITON_INTERPRET"] = "1"


class FakeCuda(torch.Tensor):
    """A CPU tensor that claims to be CUDA, so SGLang takes its GPU path (docs/spec.md §8.1)."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        """Always claim CUDA."""
        return True

    def cuda(self, *a: Any, **k: Any) -> FakeCuda:
        """Stay on CPU."""
        return self


_mods: dict[str, Any] = {}


def start() -> str:
    """Prepare this process for real SGLang and import it (once); its version.

    This explicit call is the only thing in the package that changes a process's global state:
    ``TRITON_INTERPRET=1`` without a GPU (before sglang imports triton), the import shims of
    :mod:`.shims`, and a no-op ``torch.cuda.device`` without a GPU (0.4.9.post5-0.4.10.post2
    launch their kernel inside it). Call it only in a process meant for real SGLang: the oracle
    tests, the selftest, :mod:`.worker` (which the ``sglang`` golden implementation starts).
    """
    if not _mods:
        _import_sglang()
    return sglang_version()


def _no_device(device: object) -> contextlib.nullcontext[None]:
    """Stands in for ``torch.cuda.device`` without a real CUDA device: a null context."""
    return contextlib.nullcontext()


def _import_sglang() -> None:
    from .shims import apply_shims

    if os.environ.get("SGLANG_MM_SKIP_COMPUTE_HASH", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(
            "SGLANG_MM_SKIP_COMPUTE_HASH is set: SGLang would return random uuid4 hashes"
        )

    _interpret_triton()
    apply_shims()
    if not _REAL_CUDA:  # 0.4.9.post5-0.4.10.post2 launch the kernel inside torch.cuda.device(...)
        torch.cuda.device = _no_device  # type: ignore[assignment,misc]
    import sglang
    from sglang.srt.managers import mm_utils, schedule_batch

    _mods.update(sglang=sglang, mm_utils=mm_utils, schedule_batch=schedule_batch)


def _sglang() -> dict[str, Any]:
    """SGLang's own hashing entry points; refuses before :func:`start`."""
    if not _mods:
        raise RuntimeError(
            "pytest_mmhash.oracle.driver.start() has not been called: it prepares this process for "
            "real SGLang (shims, TRITON_INTERPRET) and imports it"
        )
    return _mods


def sglang_version() -> str:
    """Version string of the imported sglang."""
    return str(_sglang()["sglang"].__version__)


def _to_device(feature: Any, device: str) -> Any:
    """Put every tensor of a nested-list feature on ``device``; for cuda, a top-level numpy array
    becomes a CUDA tensor too (arrays inside lists stay arrays: SGLang refuses such lists)."""
    if device == "cpu":
        return feature
    if device != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
    if isinstance(feature, np.ndarray):
        a = np.ascontiguousarray(feature.astype(feature.dtype.newbyteorder("="), copy=True))
        feature = torch.from_numpy(a)
    return _tensors_to_cuda(feature)


def _tensors_to_cuda(feature: Any) -> Any:
    if isinstance(feature, list):
        return [_tensors_to_cuda(x) for x in feature]
    if isinstance(feature, torch.Tensor):
        return feature.cuda() if _REAL_CUDA else feature.as_subclass(FakeCuda)
    return feature


def _err(e: BaseException) -> dict[str, str]:
    """``{"error": "<Type>: <first line>"}`` for an exception SGLang raised."""
    return {"error": error_text(e)}


def _make_item(feature: Any, preset_hash: int | None = None) -> Any:
    """Build SGLang's own ``MultimodalDataItem(modality=IMAGE, feature=feature[, hash=preset_hash])``."""
    sb = _sglang()["schedule_batch"]
    kw: dict[str, Any] = {} if preset_hash is None else {"hash": preset_hash}
    field = (
        "feature"
        if "feature" in inspect.signature(sb.MultimodalDataItem).parameters
        else "pixel_values"
    )
    kw[field] = feature  # releases before 0.4.9.post3 hash pixel_values for images
    return sb.MultimodalDataItem(modality=sb.Modality.IMAGE, **kw)


def _item_result(item: Any) -> dict[str, Any]:
    """Hash and pad values of an item after ``set_pad_value`` (pad-wide4 has ``pad_values``)."""
    pads = getattr(item, "pad_values", None)
    return {
        "hash": int(item.hash),
        "pad_values": [int(p) for p in pads] if pads else [int(item.pad_value)],
    }


def real_item(feature: Any, device: str, preset_hash: int | None = None) -> dict[str, Any]:
    """Run SGLang's ``MultimodalDataItem.set_pad_value`` on ``feature``; hash and pads, or the error.

    ``preset_hash`` is passed to the constructor as ``hash=`` (a hash supplied before set_pad_value).
    """
    feature = _to_device(feature, device)
    _sglang()  # import problems are the harness's, not a per-feature SGLang error
    try:
        item = _make_item(feature, preset_hash)
        item.set_pad_value()
        return _item_result(item)
    except Exception as e:  # the real SGLang exception, reported as is
        return _err(e)


def real_hash(feature: Any, device: str) -> int:
    """SGLang's own ``mm_utils.hash_feature`` on ``feature`` (raises what SGLang raises).

    Releases before 0.4.9 nest ``hash_feature`` inside ``set_pad_value``; there the hash is
    ``item.hash`` after SGLang's own ``set_pad_value`` (which always recomputes it).
    """
    feature = _to_device(feature, device)
    hf = getattr(_sglang()["mm_utils"], "hash_feature", None)
    if hf is not None:
        return int(hf(feature))
    item = _make_item(feature)
    item.set_pad_value()
    return int(item.hash)


# ---------------------------------------------------------------- selftest (docs/spec.md §7)


def _expected(version: str, device: str, name: str) -> tuple[Any, Any]:
    """The spec's hash (or the exception SGLang raises) for input ``name`` on this release's path
    (:data:`pytest_mmhash.spec_vectors.HASHES`), and the pads the engine derives from it; ``(None,
    None)`` where the spec tables no value."""
    from ..api import from_hash
    from ..errors import MmhashError
    from ..spec_vectors import HASHES
    from ..versions import resolve

    try:
        era = resolve(version).era
    except MmhashError:
        return None, None
    h = HASHES.get(era.cpu if device == "cpu" else era.cuda, {}).get(name)
    if not isinstance(h, int):
        return h, None
    return h, list(from_hash(h, sglang_version=version).pad_values)


def _selftest() -> int:
    """Print the spec's vectors from the installed sglang and compare them with the spec's table."""
    from ..spec_vectors import inputs

    v = start()
    print(
        f"sglang {v} from {os.path.dirname(_sglang()['sglang'].__file__)}; torch {torch.__version__};"
        f" TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')}; real cuda={_REAL_CUDA}"
    )
    bad = 0
    for device in ("cpu", "cuda"):
        for name, x in inputs().items():
            try:
                h: Any = real_hash(x, device)
            except Exception as e:
                h = _err(e)["error"]
            item = real_item(x, device)
            exp_h, exp_p = _expected(v, device, name)
            if exp_h is None:
                verdict = "(not in spec table)"
            elif isinstance(exp_h, str):
                ok = (
                    isinstance(h, str)
                    and h.startswith(exp_h)
                    and item.get("error", "").startswith(exp_h)
                )
                verdict = "OK" if ok else f"MISMATCH expected {exp_h}"
            else:
                ok = (
                    h == exp_h
                    and item.get("hash") == exp_h
                    and (exp_p is None or item.get("pad_values") == exp_p)
                )
                verdict = "OK" if ok else f"MISMATCH expected hash {exp_h} pads {exp_p}"
            bad += verdict.startswith("MISMATCH")
            print(f"{device:4} {name:3} hash_feature={h}  item={item}  {verdict}")
    MDI = _sglang()["schedule_batch"].MultimodalDataItem
    if hasattr(MDI, "set_identity"):  # 0.5.23+: compared with the engine's from_identity/from_hash
        import hashlib

        from ..api import from_hash, from_identity

        identity = hashlib.sha256(b"identity").digest()
        checks = [
            (
                "set_identity(sha256(b'identity'))",
                lambda it: it.set_identity(identity),
                from_identity(identity, sglang_version=v),
            ),
            ("set_hash(-1)", lambda it: it.set_hash(-1), from_hash(-1, sglang_version=v)),
            ("set_hash(0)", lambda it: it.set_hash(0), from_hash(0, sglang_version=v)),
        ]
        for label, fn, want in checks:
            it = _make_item(None)
            fn(it)
            got = _item_result(it)
            ok = (got["hash"], got["pad_values"]) == (want.hash, list(want.pad_values))
            bad += not ok
            print(f"{label}: {got}  {'OK' if ok else 'MISMATCH'}")
    print(f"selftest: {bad} mismatch(es)")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--selftest"]:
        sys.exit("usage: python -m pytest_mmhash.oracle.driver --selftest")
    sys.exit(_selftest())
