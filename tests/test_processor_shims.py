"""The processor shims ``mmhash predict`` applies: only for what a machine lacks (spec §10).

Machines are simulated in child processes (the shims change process state): fake ``sgl_kernel``,
``decord`` and ``torchvision`` packages on ``PYTHONPATH``, a torchvision whose C ops library does
not load (a file that is no shared library), and one that has none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_mmhash.predict import Media, ProcessedItem, predict

CHILD = """
import json, sys
from pytest_mmhash.oracle.shims import apply_missing_processor_shims, missing_processor_shims
before = list(sys.meta_path)
missing = missing_processor_shims()
applied = apply_missing_processor_shims()
import importlib
stub = type(importlib.import_module("sgl_kernel")).__name__ if "sgl_kernel" in applied else None
print(json.dumps({"missing": missing, "applied": applied, "finders_added": len(sys.meta_path)
                  - len(before), "sgl_kernel_module": stub}))
"""


def _package(root: Path, name: str, files: dict[str, bytes] | None = None) -> None:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for fname, data in (files or {}).items():
        (pkg / fname).write_bytes(data)


def _machine(tmp_path: Path, *, packages: dict[str, dict[str, bytes]]) -> dict:
    """Run CHILD with ``packages`` importable (name -> extra files) and return its report."""
    site = tmp_path / "site"
    site.mkdir()
    for name, files in packages.items():
        _package(site, name, files)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_machine_set_up_like_the_server_gets_no_shim(tmp_path: Path) -> None:
    """sgl_kernel and decord installed, torchvision without a C ops library to fail: nothing."""
    report = _machine(tmp_path, packages={"sgl_kernel": {}, "decord": {}, "torchvision": {}})
    assert report == {"missing": [], "applied": [], "finders_added": 0, "sgl_kernel_module": None}


def test_each_missing_piece_gets_its_shim_and_only_that(tmp_path: Path) -> None:
    """No sgl_kernel, no decord, and a torchvision whose C ops library does not load."""
    bad_lib = {"_C.so": b"this is not a shared library"}
    report = _machine(tmp_path, packages={"torchvision": bad_lib})
    assert report["missing"] == ["sgl_kernel", "decord", "torchvision"]
    assert report["applied"] == report["missing"]
    assert report["finders_added"] == 2  # the sgl_kernel stub and the decord placeholder
    assert report["sgl_kernel_module"] == "_Stub"


def test_an_installed_sgl_kernel_is_never_shadowed(tmp_path: Path) -> None:
    report = _machine(tmp_path, packages={"sgl_kernel": {}, "torchvision": {}})
    assert report["missing"] == ["decord"]
    assert report["finders_added"] == 1


def test_a_custom_runner_gets_no_shims(tmp_path: Path) -> None:
    """``shims=True`` is for the real SGLang runner; a stand-in runner's process is left alone."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps({"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl"})
    )
    for name in ("preprocessor_config.json", "tokenizer_config.json", "tokenizer.json"):
        (model / name).write_text("{}")

    def runner(requests, *, model, deployment):
        import torch

        for _ in requests:
            yield [ProcessedItem("image", torch.arange(6, dtype=torch.float32), None, None)]

    png = b"\x89PNG\r\n\x1a\n" + b"payload"
    (item,) = predict(
        [Media("a.png", png, "image")],
        model=model,
        sglang_version="0.5.23",
        runner=runner,
        shims=True,
    )
    assert "shims" not in item.stack
