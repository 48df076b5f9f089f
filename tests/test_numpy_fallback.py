"""numba is the default backend of the CUDA-path emulation; without it the numpy fallback gives the
same values and says so once (a warning in the API, one stderr line in the CLI). The kernels'
JIT is paid once per machine: a second process loads them from numba's disk cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from pytest_mmhash import NumpyFallbackWarning, hash_feature
from pytest_mmhash.cuda import numba_backend

#: Python run in a child process where numba cannot be imported (``sys.modules`` holds ``None``)
#: and the compiled backend is wanted for every input size.
WITHOUT_NUMBA = (
    "import sys; sys.modules['numba'] = None; "
    "from pytest_mmhash.cuda import numba_backend; numba_backend.MIN_BYTES = 0; "
)
API_CHILD = """
import json, warnings
import numpy as np
from pytest_mmhash import hash_feature
a = np.arange(50_000, dtype=np.int32)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    hashes = [hash_feature(a, sglang_version=v, device="cuda").hash for v in VERSIONS]
print(json.dumps({"hashes": hashes, "warnings": [(w.category.__name__, str(w.message)) for w in caught]}))
"""
CLI_CHILD = "from pytest_mmhash.cli import main; sys.exit(main())"
#: One release per CUDA-path scheme: gpu-tile-fmix32, gpu-xor-int64, gpu-xor-int32.
VERSIONS = ["0.5.23", "0.4.10", "0.4.6.post5"]


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_api_without_numba_warns_once_and_hashes_the_same() -> None:
    proc = _child(WITHOUT_NUMBA + f"VERSIONS = {VERSIONS!r}\n" + API_CHILD)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    a = np.arange(50_000, dtype=np.int32)
    assert out["hashes"] == [
        hash_feature(a, sglang_version=v, device="cuda").hash for v in VERSIONS
    ]
    assert len(out["warnings"]) == 1, out["warnings"]
    category, message = out["warnings"][0]
    assert category == NumpyFallbackWarning.__name__
    assert message.startswith("numba cannot be imported (") and "numpy fallback" in message


def test_cli_without_numba_says_so_in_one_line(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        files.append(tmp_path / f"f{i}.npy")
        np.save(files[-1], np.arange(i, 30_000 + i, dtype=np.float32))
    args = ["--json", "--sglang-version", "0.5.23", "--cuda", "-j", "3", *map(str, files)]
    proc = _child(WITHOUT_NUMBA + CLI_CHILD, *args)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmhash: warning: numba cannot be imported ("), (
        proc.stderr
    )
    got = {r["path"]: r["hash"] for r in map(json.loads, proc.stdout.splitlines())}
    assert got == {
        str(f): hash_feature(np.load(f), sglang_version="0.5.23", device="cuda").hash for f in files
    }


def test_with_numba_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numba_backend, "MIN_BYTES", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumpyFallbackWarning)
        hash_feature(np.arange(10, dtype=np.int32), sglang_version="0.5.23", device="cuda")
    assert numba_backend.backend() is not None


JIT_CHILD = """
import json
import numpy as np
from pytest_mmhash.cuda import numba_backend, numba_kernels
b = numba_backend.backend()
w = np.arange(8192, dtype=np.uint32)
b.tile_sum(w, 0, 4 * w.size), b.xor64_sum(w, 0), b.xor32_sum(w, 0)
kernels = (numba_kernels.tile_sum, numba_kernels.xor64_sum, numba_kernels.xor32_sum)
print(json.dumps([[sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())] for k in kernels]))
"""


def test_jit_is_paid_once_then_loaded_from_the_disk_cache(tmp_path: Path) -> None:
    """A fresh cache compiles each kernel (a miss); the next process loads all three (hits only)."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [_child(JIT_CHILD, env=env) for _ in range(2)]
    assert all(p.returncode == 0 for p in runs), runs[0].stderr + runs[1].stderr
    cold, warm = (json.loads(p.stdout) for p in runs)
    assert cold == [[0, 1]] * 3, cold
    assert warm == [[1, 0]] * 3, warm
