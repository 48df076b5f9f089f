"""``mmhash --json`` reproduces every value recorded from real SGLang in golden/, file by file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mmhash import engines as E
from pytest_mmhash.cli import main

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("release", sorted(MANIFEST["provenance"]))
def test_cli_reproduces_recorded_values(release, device, capsys):
    engine, version = E.split_key(release)  # a fork's release is keyed "sglang-kt==0.7.2"
    if device == "cuda" and engine == E.SGLANG_OMNI:
        pytest.skip("sglang-omni hashes waveforms on the CPU only")
    files = sorted({e["file"] for e in MANIFEST["entries"]})
    code = main(
        [
            "--json",
            "--engine",
            engine,
            "--sglang-version",
            version,
            "--device",
            device,
            *(str(GOLDEN / f) for f in files),
        ]
    )
    out, err = capsys.readouterr()
    got = {
        (Path(r["path"]).relative_to(GOLDEN).as_posix(), r["key"]): r
        for r in map(json.loads, out.splitlines())
    }
    expected_errors = 0
    for e in MANIFEST["entries"]:
        want = e["values"][release][device]
        row = got.get((e["file"], e["key"]))
        if "error" in want:  # real SGLang raised: the CLI reports it (exit 3), no value
            expected_errors += 1
            assert row is None, f"{e['id']}: SGLang raises {want['error']}, mmhash gave {row}"
        else:
            assert row is not None, f"{e['id']}: no result; stderr: {err}"
            assert (row["hash"], row["hex"], row["pad_values"]) == (
                want["hash"],
                want["hex"],
                want["pad_values"],
            ), e["id"]
    assert code == (3 if expected_errors else 0)
    assert len(err.splitlines()) == expected_errors
