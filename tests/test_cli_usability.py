"""The ``mmhash`` command's rough edges a new user hit: ``-j`` on mixed folders, closed pipes,
``--version``, what was loaded, why ``--list-versions`` rows differ, the keys a file offers."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from pytest_mmhash import __version__
from pytest_mmhash.cli import main
from pytest_mmhash.errors import FeatureLoadError
from pytest_mmhash.features import is_ndarray, is_tensor
from pytest_mmhash.loaders import load_feature

MMHASH = [sys.executable, "-m", "pytest_mmhash.cli"]


@pytest.fixture
def mixed(tmp_path):
    """A folder of .npy and .pt files (the -j crash needed both kinds)."""
    for i in range(6):
        np.save(tmp_path / f"a{i}.npy", np.arange(10 + i, dtype=np.float32))
        torch.save(torch.arange(10 + i, dtype=torch.float32), tmp_path / f"b{i}.pt")
    return tmp_path


def test_type_checks_while_another_thread_is_still_importing(monkeypatch):
    """A half-imported torch/numpy (in sys.modules, no Tensor/ndarray yet) is not an error."""
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    monkeypatch.setitem(sys.modules, "numpy", types.ModuleType("numpy"))
    assert is_tensor(b"x") is False
    assert is_ndarray(b"x") is False


def test_jobs_on_a_mixed_folder_in_a_fresh_process(mixed):
    """Each run is a fresh interpreter (torch not imported yet), as when the crash happened."""
    for _ in range(2):
        r = subprocess.run(
            [*MMHASH, "--json", "-j", "2", str(mixed)], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert len([json.loads(line) for line in r.stdout.splitlines()]) == 12


def test_closed_pipe_exits_quietly():
    """``mmhash ... | head -1``: no traceback; the exit status of a tool killed by SIGPIPE.

    3000 results are far more than a pipe buffers, so mmhash is still writing when head exits.
    """
    args = [a for i in range(3000) for a in ("--hash", str(i))]
    p = subprocess.Popen(
        [*MMHASH, "--sglang-version", "0.5.23", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 141
    assert first.startswith(b"hash 0") and err == ""


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"mmhash (pytest-mmhash) {__version__}"


def test_dtype_and_shape_in_json_and_text(tmp_path, capsys):
    np.save(tmp_path / "u.npy", np.arange(12, dtype=np.uint8).reshape(3, 4))
    torch.save([torch.ones(3), [torch.arange(4)]], tmp_path / "l.pt")
    assert main(["--json", str(tmp_path / "u.npy"), str(tmp_path / "l.pt")]) == 0
    rows = sorted(
        (json.loads(line) for line in capsys.readouterr().out.splitlines()),
        key=lambda r: r["path"],
    )
    assert [(r["dtype"], r["shape"]) for r in rows] == [
        (["float32", "int64"], [[3], [4]]),
        ("uint8", [3, 4]),
    ]
    assert main([str(tmp_path / "u.npy"), str(tmp_path / "l.pt"), "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "  Loaded: uint8 [3, 4]\n" in out
    assert "  Loaded: list of 2: float32 [3], int64 [4]\n" in out


def test_list_versions_says_what_each_row_changes(capsys):
    """Rows with the same schemes (0.5.10-0.5.12.post1 vs 0.5.13) still say why they are rows."""
    assert main(["--list-versions", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["changes"] for r in rows)
    by_first = {r["first"]: r["changes"] for r in rows}
    assert by_first["0.5.13"] == ["the request field mm_hashes sets the item hash"]
    assert by_first["0.5.14"] == ["hash_feature([]) raises TypeError (was IndexError)"]
    assert by_first["0.5.9"] == ["pad scheme pad-mod30 -> pad-shift-1e6"]
    assert main(["--list-versions"]) == 0
    text = capsys.readouterr().out
    assert "0.5.13" in text and "the request field mm_hashes sets the item hash" in text


def test_missing_key_lists_the_available_keys(tmp_path):
    np.savez(tmp_path / "c.npz", pixel_values=np.ones(3), image_grid_thw=np.ones(2))
    with pytest.raises(FeatureLoadError) as e:
        load_feature(tmp_path / "c.npz", key="pixel_value")
    assert str(e.value).endswith(
        "no entry named 'pixel_value' (available keys: pixel_values, image_grid_thw)"
    )
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(FeatureLoadError, match="holds one feature without a key"):
        load_feature(tmp_path / "one.npy", key="x")
