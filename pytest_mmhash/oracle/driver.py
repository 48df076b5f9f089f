"""Drive real SGLang's own hashing code (CPU path, and the CUDA path via FakeCuda) to get golden values.

Runs only inside a venv where real ``sglang`` is importable (``tools/install-sglang.sh``).

CUDA path without a GPU (spec §4): ``TRITON_INTERPRET=1`` must be in the environment before
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

CLI: ``python -m pytest_mmhash.oracle.driver --selftest`` prints the spec §5 vectors.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from typing import Any

import numpy as np
import torch

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
    """A CPU tensor that claims to be CUDA, so SGLang takes its GPU path (spec §4)."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        """Always claim CUDA."""
        return True

    def cuda(self, *a: Any, **k: Any) -> FakeCuda:  # type: ignore[override]
        """Stay on CPU."""
        return self


_mods: dict[str, Any] = {}


def _sglang() -> dict[str, Any]:
    """Apply the shims and import SGLang's own hashing entry points (once)."""
    if _mods:
        return _mods
    from pytest_mmhash.oracle.shims import apply_shims

    if os.environ.get("SGLANG_MM_SKIP_COMPUTE_HASH", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(
            "SGLANG_MM_SKIP_COMPUTE_HASH is set: SGLang would return random uuid4 hashes"
        )

    _interpret_triton()
    apply_shims()
    if not _REAL_CUDA:  # 0.4.9.post5-0.4.10.post2 launch the kernel inside torch.cuda.device(...)
        torch.cuda.device = lambda d: contextlib.nullcontext()  # type: ignore[assignment,misc]
    import sglang
    from sglang.srt.managers import mm_utils, schedule_batch

    _mods.update(sglang=sglang, mm_utils=mm_utils, schedule_batch=schedule_batch)
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
    lines = str(e).splitlines()
    return {"error": f"{type(e).__name__}: {lines[0] if lines else ''}"}


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


# ---------------------------------------------------------------- selftest (spec §5)


def _vkey(v: str) -> tuple[int, ...]:
    """Sortable key for a release string like 0.4.10.post2."""
    head, _, post = v.partition(".post")
    return tuple(int(x) for x in head.split(".")) + (int(post or 0),)


def _inputs() -> dict[str, Any]:
    """The spec §5 inputs."""
    return {
        "A": torch.arange(1000, dtype=torch.float32).reshape(10, 100),
        "B7": torch.arange(7, dtype=torch.bfloat16),
        "B8": torch.arange(8, dtype=torch.bfloat16),
        "M": [torch.ones(3), torch.arange(4)],
        "I": torch.arange(20000, dtype=torch.int32),
    }


_CPU = {
    "sha256-f32": {
        "A": 6195373761911486496,
        "B7": 12325294725044462236,
        "B8": 392323221453916089,
        "M": 12329395046253440683,
        "I": 13589998309442005720,
    },
    "sha256-raw": {
        "A": 6195373761911486496,
        "B7": 16244085110033407481,
        "B8": 15551355311054656151,
        "M": 16533680723886250405,
        "I": 13589998309442005720,
    },
}
_GPU = {
    "gpu-xor-int32": {"A": 1059033198886, "B8": 3060212859, "M": 5395639539, "B7": "RuntimeError"},
    "gpu-xor-int64": {
        "A": -1899298369056619034,
        "B8": 24157705902139387,
        "M": -8123164300371323469,
        "B7": "RuntimeError",
    },
    "gpu-tile-fmix32": {
        "A": 14660478606431258911,
        "B7": 7695844872513631682,
        "I": 4588543558511414631,
        "M": 17787887286460750404,
    },
}
_WIDE4 = {
    ("cpu", "A"): [
        1943739351697803261,
        2218631454615547932,
        2555005557022908026,
        3367784818563980755,
    ],
    ("cpu", "B7"): [
        566527132381785179,
        186557374693928239,
        3877462897444374262,
        2624099577502521545,
    ],
    ("cpu", "M"): [
        3319508214618362352,
        2131418205219196081,
        1490506654342658287,
        2639542910447886526,
    ],
    ("cuda", "A"): [
        1984757153445888498,
        1178681173285974006,
        513223713106534960,
        3770766702899660219,
    ],
    ("cuda", "B7"): [
        2642543058763123241,
        2096580958913303794,
        2370072151228103229,
        299015530752833871,
    ],
    ("cuda", "I"): [
        1397890412235208909,
        3675479225343482037,
        3372739040846971164,
        2669494158454809393,
    ],
}


def _expected(version: str, device: str, name: str) -> tuple[Any, Any]:
    """Spec §5 expectation (hash or error type, pads) for this release, or (None, None) if not tabled."""
    k = _vkey(version)
    if device == "cpu":
        h = _CPU["sha256-f32" if k < _vkey("0.5.10") else "sha256-raw"].get(name)
    elif k == _vkey("0.4.6.post5"):
        h = _GPU["gpu-xor-int32"].get(name)
    elif _vkey("0.4.7") <= k < _vkey("0.5.1"):
        h = _GPU["gpu-xor-int64"].get(name)
    elif k >= _vkey("0.5.1"):
        h = _GPU["gpu-tile-fmix32"].get(name)
    else:
        h = None
    if not isinstance(h, int):
        return h, None
    if k >= _vkey("0.5.23"):
        return h, _WIDE4.get((device, name))
    return h, [h % 2**30 + (1_000_000 if k >= _vkey("0.5.9") else 0)]


def _selftest() -> int:
    """Print spec §5 vectors from the installed sglang and compare them with the spec table."""
    v = sglang_version()
    print(
        f"sglang {v} from {os.path.dirname(_sglang()['sglang'].__file__)}; torch {torch.__version__};"
        f" TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')}; real cuda={_REAL_CUDA}"
    )
    bad = 0
    for device in ("cpu", "cuda"):
        for name, x in _inputs().items():
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
    if hasattr(MDI, "set_identity"):
        import hashlib

        checks = [
            (
                "set_identity(sha256(b'identity'))",
                lambda it: it.set_identity(hashlib.sha256(b"identity").digest()),
                (
                    7538861272318920668,
                    [
                        2346459779767466503,
                        607141024133249185,
                        2165520880982892944,
                        721568320551594429,
                    ],
                ),
            ),
            ("set_hash(-1)", lambda it: it.set_hash(-1), (18446744073709551615, None)),
            (
                "set_hash(0)",
                lambda it: it.set_hash(0),
                (
                    0,
                    [
                        3397727234245131147,
                        2304395387532635524,
                        2205624834353178515,
                        3623825934275559232,
                    ],
                ),
            ),
        ]
        for label, fn, (eh, ep) in checks:
            it = _make_item(None)
            fn(it)
            got = _item_result(it)
            ok = got["hash"] == eh and (ep is None or got["pad_values"] == ep)
            bad += not ok
            print(f"{label}: {got}  {'OK' if ok else 'MISMATCH'}")
    print(f"selftest: {bad} mismatch(es)")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--selftest"]:
        sys.exit("usage: python -m pytest_mmhash.oracle.driver --selftest")
    sys.exit(_selftest())
