"""``mmhash vectors export`` and the real-SGLang pad vectors it reads (``golden/pad-vectors.json``).

The export is checked by rebuilding every feature from its raw parts alone and hashing it with the
engine (which reproduces every recorded golden value): wrong bytes, order, dtype or layout in the
export would show up as a mismatch with the expected values real SGLang gave.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_mmhash import BadArgumentError, UnhashableFeatureError, from_hash, from_mm_hash
from pytest_mmhash import hash_feature as engine_hash
from pytest_mmhash.cli import main as cli_main
from pytest_mmhash.golden.store import load_manifest
from pytest_mmhash.oracle.pad_vectors import MM_HASHES, PRESET_HASHES, tokenizer_block
from pytest_mmhash.vectors import read_pad_vectors

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "vectors"
    assert cli_main(["vectors", "export", str(out), "--golden", str(GOLDEN)]) == 0
    return out


def _vectors(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "vectors.jsonl").read_text().splitlines()]


def _part(out: Path, p: dict):
    with open(out / p["path"], "rb") as f:
        f.seek(p["offset"])
        raw = f.read(p["nbytes"])
    assert len(raw) == p["nbytes"] and not Path(p["path"]).is_absolute()
    if p["dtype"][0] in "<>|=":
        return np.frombuffer(raw, dtype=np.dtype(p["dtype"])).reshape(p["shape"]).copy()
    flat = (
        torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        if raw
        else torch.empty(0, dtype=torch.uint8)
    )
    return flat.view(getattr(torch, p["dtype"])).reshape(p["shape"])


def _feature(out: Path, v: dict):
    parts = [_part(out, p) for p in v["parts"]]

    def nest(layout):
        return [nest(x) if isinstance(x, list) else parts[x] for x in layout]

    if v["kind"] == "bytes":
        return parts[0].numpy().tobytes()
    if v["kind"] == "list":
        return nest(v["layout"])
    if v["kind"] == "tuple":
        return tuple(nest(v["layout"]))
    return parts[0]


def _engine_reply(out: Path, v: dict) -> dict:
    try:
        if "mm_hash" in v:
            m = from_mm_hash(v["mm_hash"], sglang_version=v["sglang_version"])
        elif "preset_hash" in v:
            m = from_hash(v["preset_hash"], sglang_version=v["sglang_version"])
        else:
            m = engine_hash(
                _feature(out, v), sglang_version=v["sglang_version"], device=v["device"]
            )
    except (UnhashableFeatureError, BadArgumentError):
        return {"error": True}
    return {"hash": m.hash, "pad_values": list(m.pad_values)}


def test_every_exported_vector_rebuilds_to_the_value_real_sglang_gave(exported):
    vectors = _vectors(exported)
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    n_values = sum(  # a fork's values (release key ENGINE==V) are not protocol v1 vectors
        len(d) for e in manifest["entries"] for r, d in e["values"].items() if "==" not in r
    )
    pads = read_pad_vectors(GOLDEN)
    n_pads = sum(len(r.get("preset_hash", [])) + len(r.get("mm_hash", [])) for r in pads.values())
    assert len(vectors) == n_values + n_pads
    assert len({v["id"] for v in vectors}) == len(vectors)
    bad = []
    for v in vectors:
        want = {k: v[k] for k in ("hash", "pad_values", "error") if k in v}
        got = _engine_reply(exported, v)
        if ("error" in want) != ("error" in got) or ("error" not in want and got != want):
            bad.append((v["id"], want, got))
    assert not bad, bad[:5]


def test_export_covers_the_pad_edges_and_mm_hash_strings(exported):
    vectors = _vectors(exported)
    presets = {(v["sglang_version"], v["preset_hash"]) for v in vectors if "preset_hash" in v}
    for h in (0, 1, 2**63, 2**64 - 1, -4112607171272427439):
        assert ("0.4.10", h) in presets and ("0.5.23", h) in presets
    pin = {
        v["mm_hash"]: v for v in vectors if v.get("sglang_version") == "0.5.23" and "mm_hash" in v
    }
    assert pin["0000000000000001"]["hash"] == 1
    assert pin["FFFFFFFFFFFFFFFF"]["pad_values"] == pin["ffffffffffffffff"]["pad_values"]
    assert pin["9f86d081884c7d659a2feaa0c55ad015"]["hash"] == 0x9A2FEAA0C55AD015  # mask64
    assert pin["xyz"]["error"].startswith("ValueError")
    assert (exported / "README.md").read_text().startswith("# SGLang multimodal hash")


def test_release_selection_and_refusals(tmp_path, capsys):
    out = tmp_path / "pin"
    assert (
        cli_main(
            ["vectors", "export", str(out), "--golden", str(GOLDEN), "--sglang-version", "v0.5.23"]
        )
        == 0
    )
    assert {v["sglang_version"] for v in _vectors(out)} == {"0.5.23"}
    capsys.readouterr()
    assert cli_main(["vectors", "export", str(out), "--golden", str(GOLDEN)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    args = ["vectors", "export", str(tmp_path / "x"), "--golden", str(GOLDEN), "--sglang-version"]
    assert cli_main([*args, "0.5.21"]) == 2
    assert "no values are recorded for sglang 0.5.21" in capsys.readouterr().err
    assert cli_main([*args, "9.9"]) == 2
    assert not (tmp_path / "x").exists()


def test_pad_vectors_file_is_what_the_recorder_asks_real_sglang():
    recorded = read_pad_vectors(GOLDEN)
    upstream = {r for r in load_manifest(GOLDEN).releases() if "==" not in r}  # forks: ENGINE==V
    assert set(recorded) == upstream  # every golden sglang release
    for release, r in recorded.items():
        assert r["provenance"]["sglang"] == release
        ignored = r.get("preset_hash_ignored", False)
        assert [v["input"] for v in r["preset_hash"]] == ([] if ignored else list(PRESET_HASHES))
        if "mm_hash" in r:
            assert [v["input"] for v in r["mm_hash"]] == list(MM_HASHES)
            assert "int(hex_hash, 16)" in r["provenance"]["tokenizer_manager_block"]
    # measured: 0.4.6.post5's set_pad_value rehashes the feature whatever hash was preset
    assert [r for r, v in recorded.items() if v.get("preset_hash_ignored")] == ["0.4.6.post5"]


@pytest.mark.skipif(importlib.util.find_spec("sglang") is not None, reason="sglang is installed")
def test_the_recorder_refuses_without_real_sglang(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pytest_mmhash.oracle.pad_vectors", str(tmp_path / "p.json")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 1 and "real SGLang is not importable" in r.stderr
    assert not (tmp_path / "p.json").exists()


def test_tokenizer_block_is_read_from_the_source():
    source = """
    async def f(self):
            for item, hex_hash in zip(items, hashes):
                try:
                    item.set_hash(int(hex_hash, 16))
                except (TypeError, ValueError):
                    logger.warning("x %r", hex_hash)
            done()
    """
    assert tokenizer_block(source) == (
        "try:\n    item.set_hash(int(hex_hash, 16))\nexcept (TypeError, ValueError):\n"
        '    logger.warning("x %r", hex_hash)\n'
    )
    assert tokenizer_block("def f():\n    pass\n") is None
