"""The ``mmhash`` command: output formats, flags and exit codes (run in-process and as a script)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pytest_mmhash import hash_feature
from pytest_mmhash.cli import main

A = torch.arange(1000, dtype=torch.float32).reshape(10, 100)


@pytest.fixture
def files(tmp_path):
    torch.save(A, tmp_path / "a.pt")
    torch.save(
        {
            "x": torch.arange(7, dtype=torch.bfloat16),
            "y": [torch.ones(3), torch.arange(4)],
            "meta": "not a tensor",
        },
        tmp_path / "d.pt",
    )
    np.save(tmp_path / "u.npy", np.arange(12, dtype=np.uint8).reshape(3, 4))
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "b.npy", np.arange(6, dtype=">f4"))
    (tmp_path / "notes.txt").write_text("ignored in folders")
    return tmp_path


def run_json(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_human_output_keeps_old_helper_lines(files, capsys):
    assert main([str(files / "a.pt"), "--sglang-version", "0.5.9"]) == 0
    out = capsys.readouterr().out
    assert "Hash value: 6195373761911486496" in out
    assert "Pad value: 697416288" in out
    assert "Hash hex: 55fa639ca9827820" in out and "0.5.9" in out and "a.pt" in out


def test_json_fields_and_cuda_alias(files, capsys):
    code, rows, _ = run_json(
        capsys, "--json", "--sglang-version", "0.5.23", "--cuda", str(files / "a.pt")
    )
    assert code == 0 and len(rows) == 1
    row = rows[0]
    expected = hash_feature(A, sglang_version="0.5.23", device="cuda")
    assert row["path"] == str(files / "a.pt") and row["key"] is None
    assert (row["hash"], row["hex"], row["pad_value"], row["pad_values"]) == (
        expected.hash,
        expected.hex,
        expected.pad_value,
        list(expected.pad_values),
    )
    assert row["device"] == "cuda" and row["sglang_version"] == "0.5.23"
    assert row["schemes"] == {
        "hash": "gpu-tile-fmix32",
        "pad": "pad-wide4",
        "modifiers": ["mask64"],
    }


def test_folder_is_recursive_sorted_and_containers_expand(files, capsys):
    code, rows, err = run_json(capsys, "--json", "--sglang-version", "0.5.23", str(files))
    assert code == 0, err
    assert [(r["path"].removeprefix(str(files) + "/"), r["key"]) for r in rows] == [
        ("a.pt", None),
        ("d.pt", "x"),
        ("d.pt", "y"),
        ("sub/b.npy", None),
        ("u.npy", None),
    ]


def test_key_selects_one_entry(files, capsys):
    code, rows, _ = run_json(
        capsys, "--json", "--key", "y", "--sglang-version", "0.5.10", str(files / "d.pt")
    )
    assert code == 0 and [r["key"] for r in rows] == ["y"]
    assert rows[0]["hash"] == 16533680723886250405  # spec: sha256-raw of M


def test_unhashable_exits_3_with_one_line(files, capsys):
    code = main(
        ["--sglang-version", "0.4.10", "--device", "cuda", "--key", "x", str(files / "d.pt")]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and err.startswith(f"mmhash: error: {files / 'd.pt'}[x]: ")
    assert "multiple of 4" in err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["missing.pt"], "missing.pt: no such file"),
        (["--sglang-version", "0.5.0", "x.pt"], "not a released version"),
        (["--sglang-version", "9.9", "x.pt"], "--allow-newer"),
        (["--mm-hash", "xyz", "--sglang-version", "0.5.23"], "not a hex string"),
        (["--identity", "00ff", "--sglang-version", "0.5.23"], "32 bytes"),
        ([], "give a FILE"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(needle in line for line in err) and all(line.startswith("mmhash: ") for line in err)


def test_given_hashes(capsys):
    code, rows, _ = run_json(
        capsys, "--json", "--sglang-version", "0.5.23", "--hash", "-1", "--mm-hash", "ff"
    )
    assert code == 0
    by_input = {tuple(r["input"].items())[0]: r for r in rows}
    assert by_input["hash", "-1"]["hash"] == 2**64 - 1
    assert by_input["mm_hash", "ff"]["hash"] == 255
    assert by_input["mm_hash", "ff"]["schemes"]["hash"] == "mm-hash"
    assert (
        main(["--mm-hash", "ff", "--sglang-version", "0.5.12"]) == 3
    )  # no mm_hashes before 0.5.13


def test_list_versions(capsys):
    assert main(["--list-versions"]) == 0
    out = capsys.readouterr().out
    assert "0.4.7 - 0.4.10.post2" in out and "gpu-xor-int64" in out and "pad-wide4" in out
    code, rows, _ = run_json(capsys, "--list-versions", "--json")
    assert sum(len(r["releases"]) for r in rows) == 92


def test_console_script_runs(files):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_mmhash.cli",
            "--json",
            "--sglang-version",
            "0.5.9",
            str(files / "u.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hash"] == 18443271527642641981  # spec vector


def test_progress_line_only_when_asked_or_on_a_terminal(files, capsys):
    assert main(["--json", "--progress", "--sglang-version", "0.5.23", str(files)]) == 0
    out, err = capsys.readouterr()
    assert "4/4 files" in err and "\r" in err  # a.pt, d.pt, sub/b.npy, u.npy
    assert all(line.startswith("{") for line in out.splitlines())  # stdout stays pure JSON
    assert main(["--json", "--sglang-version", "0.5.23", str(files)]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no progress by default
