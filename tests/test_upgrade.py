"""``upgrade_report`` / ``mmhash upgrade-report``: which golden values change between releases, and why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_mmhash import upgrade as U
from pytest_mmhash.golden import store as GS
from pytest_mmhash.implementations import Observed

PROJECT_GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture
def golden_dir(tmp_path: Path) -> Path:
    """Features chosen to hit each cause; no recorded values (the report uses the engine only)."""
    feats = {
        "fp32": torch.arange(10, dtype=torch.float32),
        "bf16": torch.arange(8, dtype=torch.bfloat16),
        "bf16-odd": torch.arange(7, dtype=torch.bfloat16),
        "mixed": [torch.ones(3), torch.arange(4)],
        "f8": torch.zeros(4, dtype=torch.float8_e4m3fn),
        "empty-list": [],
    }
    (tmp_path / "features").mkdir()
    for name, x in feats.items():
        torch.save(x, tmp_path / f"features/{name}.pt")
    np.save(tmp_path / "features/np.npy", np.arange(12, dtype=np.uint8))
    files = {n: f"features/{n}.pt" for n in feats} | {"np": "features/np.npy"}
    GS.write_manifest(
        GS.new_manifest(
            tmp_path, "0.5.23", [GS.make_entry(tmp_path, i, f) for i, f in files.items()]
        )
    )
    return tmp_path


def _by_key(changes: list[U.Change]) -> dict[tuple[str, str], U.Change]:
    return {(c.entry_id, c.device): c for c in changes}


def _kinds(c: U.Change) -> set[str]:
    return {k.kind for k in c.causes}


def test_pad_scheme_only(golden_dir: Path):
    changes = U.upgrade_report(str(golden_dir), "0.5.22")
    assert len(changes) == 12  # 7 entries x 2 paths, minus the empty list that raises on both
    assert all(
        _kinds(c) == {"pad-scheme"} and not c.hash_changed and c.pads_changed for c in changes
    )
    assert changes[0].causes[0].detail == "pad-wide4 -> pad-shift-1e6"
    assert {c.from_version for c in changes} == {"0.5.23"}


def test_sha256_raw_to_f32_is_feature_dependent(golden_dir: Path):
    ch = _by_key(U.upgrade_report(str(golden_dir), "0.5.9", from_version="0.5.10"))
    assert set(ch) == {("bf16", "cpu"), ("bf16-odd", "cpu"), ("mixed", "cpu"), ("f8", "cpu")}
    assert _kinds(ch["bf16", "cpu"]) == {"feature-dependent"}
    assert "sha256-raw -> sha256-f32: bf16 is upcast to fp32" in ch["bf16", "cpu"].causes[0].detail
    assert "a list mixing dtypes (float32, int64)" in ch["mixed", "cpu"].causes[0].detail
    assert (
        _kinds(ch["f8", "cpu"]) == {"error"}
        and "sglang 0.5.10 hashes, sglang 0.5.9 raises" in ch["f8", "cpu"].causes[0].detail
    )


def test_gpu_content_scheme_change(golden_dir: Path):
    ch = _by_key(U.upgrade_report(str(golden_dir), "0.5.1", from_version="0.4.10"))
    assert all(d == "cuda" for _, d in ch)  # the CPU path keeps sha256-f32 and pad-mod30
    assert ch["fp32", "cuda"].causes == (
        U.Cause("content-scheme", "gpu-xor-int64 -> gpu-tile-fmix32"),
    )
    assert _kinds(ch["bf16-odd", "cuda"]) == {
        "error"
    }  # 14 bytes: the int64 kernel raises, the tile kernel hashes
    assert ch["fp32", "cuda"].schemes_before["hash"] == "gpu-xor-int64"


def test_mask64_cause():
    scheme = {"hash": "gpu-xor-int64", "pad": "pad-mod30", "modifiers": []}
    b = Observed({"hash": -5, "hex": "fffffffffffffffb", "pad_values": [1]}, scheme)
    a = Observed({"hash": 2**64 - 5, "hex": "fffffffffffffffb", "pad_values": [1]}, scheme)
    assert U._causes(None, b, a, "x", "y") == (
        U.Cause(
            "mask64",
            "mask64 stores h & (2^64-1): the signed hash -5 is stored as 18446744073709551611",
        ),
    )


def test_cli_text_and_json(golden_dir: Path, capsys):
    assert U.main([str(golden_dir), "--to", "0.5.22"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sglang 0.5.23 -> 0.5.22: 12 of 14 values change")
    assert "  pad-scheme: 12" in out and "    cause:  pad-scheme: pad-wide4 -> pad-shift-1e6" in out
    assert U.main([str(golden_dir), "--from", "v0.5.10", "--to", "0.5.9", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["from"], data["to"], data["values"], len(data["changes"])) == (
        "0.5.10",
        "0.5.9",
        14,
        4,
    )
    assert data["changes"][0]["hash_changed"] is True


def test_cli_errors(golden_dir: Path, capsys):
    assert U.main([str(golden_dir), "--to", "0.5.99"]) == 2
    assert "mmhash upgrade-report: error:" in capsys.readouterr().err
    assert U.main([str(golden_dir / "nowhere"), "--to", "0.5.22"]) == 2


def test_project_corpus(capsys):
    changes = U.upgrade_report(str(PROJECT_GOLDEN), "0.5.22")
    assert changes and all(c.causes for c in changes)
    assert {k.kind for c in changes for k in c.causes} == {"pad-scheme"}


def test_plain_files_and_folders_need_no_manifest(golden_dir: Path, capsys):
    """Features outside any golden store: --from is the start (there is no pin)."""
    feats = golden_dir / "features"
    argv = [str(feats), str(feats / "np.npy"), "--from", "0.5.10", "--to", "0.5.9", "--json"]
    assert U.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["golden"] is None and data["values"] == 16  # 7 in the folder + np.npy again, x2
    labels = {(c["entry_id"], c["device"]) for c in data["changes"]}
    assert (str(feats / "bf16.pt"), "cpu") in labels
    assert U.main([str(feats), "--to", "0.5.9"]) == 2
    assert "--from V is needed" in capsys.readouterr().err


def test_allow_newer(golden_dir: Path, capsys):
    feats = str(golden_dir / "features")
    assert U.main([feats, "--from", "0.5.9", "--to", "0.5.99"]) == 2
    assert "--allow-newer" in capsys.readouterr().err
    assert U.main([feats, "--from", "0.5.9", "--to", "0.5.99", "--allow-newer"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("sglang 0.5.9 -> 0.5.23:")
    assert err == (
        "mmhash upgrade-report: warning: sglang 0.5.99 is newer than 0.5.23; "
        "assuming 0.5.23's hash schemes\n"
    )


def test_fork_releases_by_release_key(golden_dir: Path, capsys):
    """--from/--to name a fork release as a manifest does (ENGINE==V): sglang-kt runs upstream
    0.5.9's schemes, so kt -> 0.5.9 changes nothing and kt -> 0.5.23 changes what 0.5.9 -> 0.5.23
    does; sglang-omni has no CUDA path, so only CPU values are compared."""
    assert U.upgrade_report(str(golden_dir), "0.5.9", from_version="sglang-kt==0.7.2") == []
    kt = U.upgrade_report(str(golden_dir), "0.5.23", from_version="sglang-kt==v0.6.1")
    up = U.upgrade_report(str(golden_dir), "0.5.23", from_version="0.5.9")
    assert kt and [(c.entry_id, c.device, c.before, c.after, _kinds(c)) for c in kt] == [
        (c.entry_id, c.device, c.before, c.after, _kinds(c)) for c in up
    ]
    assert {c.from_version for c in kt} == {"sglang-kt==0.6.1"}
    argv = [str(golden_dir), "--from", "sglang-kt==0.7.2", "--to", "sglang-omni==0.1.9"]
    assert U.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("sglang-kt 0.7.2 -> sglang-omni 0.1.9: ")
    assert " of 7 values change" in out.splitlines()[0] and "[cuda]" not in out
    assert U.main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["from"], data["to"], data["values"]) == (
        "sglang-kt==0.7.2",
        "sglang-omni==0.1.9",
        7,
    )


def test_a_fork_pin_is_the_default_start(tmp_path: Path):
    (tmp_path / "features").mkdir()
    torch.save(torch.arange(8, dtype=torch.bfloat16), tmp_path / "features/bf16.pt")
    entries = [GS.make_entry(tmp_path, "bf16", "features/bf16.pt")]
    GS.write_manifest(GS.new_manifest(tmp_path, "sglang-kt==0.7.2", entries))
    changes = U.upgrade_report(str(tmp_path), "0.5.23")
    assert {(c.entry_id, c.device, c.from_version) for c in changes} == {
        ("bf16", "cpu", "sglang-kt==0.7.2"),
        ("bf16", "cuda", "sglang-kt==0.7.2"),
    }
    assert _kinds(_by_key(changes)["bf16", "cpu"]) == {"feature-dependent", "pad-scheme"}


@pytest.mark.parametrize(
    "release,problem",
    [
        ("sglang-kt==0.5.9", "sglang-kt 0.5.9 is not a released version"),
        ("sglang-kt==9.0", "--allow-newer"),
        ("nope==1.0", "engine 'nope' is not one of sglang, sglang-kt, sglang-omni"),
    ],
)
def test_bad_fork_release_is_one_line(golden_dir: Path, capsys, release, problem):
    assert U.main([str(golden_dir), "--to", release]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmhash upgrade-report: error: ") and problem in err
    assert err.count("\n") == 1
