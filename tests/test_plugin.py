"""The pytest plugin, end to end with pytester: golden items, the update flow, xdist, fixtures, gpu marker.

Real SGLang is simulated by a fake driver that returns the engine's values; it replaces
``pytest_mmhash.implementations._real_sglang_driver`` (in-process runs: monkeypatch; subprocess
runs: a conftest). Values of these synthetic goldens come from that fake; the project's real ``golden/``
is only ever read (copied) here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import packaging.version  # noqa: F401  loaded before pytester snapshots sys.modules (versions.py caches Versions)
import pytest
import torch
from fakes import FakeDriver

from pytest_mmhash import hash_feature, implementations
from pytest_mmhash.golden import model as GM
from pytest_mmhash.golden import request_entries
from pytest_mmhash.golden import store as GS
from pytest_mmhash.golden import validation as GV

PROJECT_GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NO_CUDA = not torch.cuda.is_available()

FAKE_DRIVER = """
import os
from pytest_mmhash import UnhashableFeatureError, hash_feature

def sglang_version():
    return os.environ.get("FAKE_SGLANG_VERSION", "0.5.23")

def real_item(feature, device):
    try:
        m = hash_feature(feature, sglang_version=sglang_version(), device=device)
    except UnhashableFeatureError:
        return {"error": "TypeError: object supporting the buffer API required"}
    return {"hash": m.hash, "pad_values": list(m.pad_values)}
"""
FAKE_CONFTEST = """
import fake_sglang
import pytest_mmhash.implementations as implementations

implementations._real_sglang_driver = lambda: fake_sglang
"""


def make_golden(root: Path, extra: int = 0) -> Path:
    """A synthetic golden dir: 4 features (one SGLang raises on) + ``extra`` random fp32 ones, no values."""
    (root / "features").mkdir(parents=True)
    torch.save(torch.arange(10, dtype=torch.float32), root / "features/a.pt")
    torch.save(torch.arange(7, dtype=torch.bfloat16), root / "features/b.pt")
    torch.save([], root / "features/empty.pt")
    np.save(root / "features/n.npy", np.arange(12, dtype=np.uint8))
    files = {
        "a": "features/a.pt",
        "b": "features/b.pt",
        "empty": "features/empty.pt",
        "n": "features/n.npy",
    }
    gen = torch.Generator().manual_seed(0)
    for i in range(extra):
        files[f"x{i:03d}"] = f"features/x{i:03d}.pt"
        torch.save(torch.rand(3 + i, generator=gen), root / files[f"x{i:03d}"])
    GS.write_manifest(
        GS.new_manifest(root, "0.5.23", [GS.make_entry(root, k, f) for k, f in files.items()])
    )
    return root


def engine_value(root: Path, entry_id: str, device: str, release: str = "0.5.23") -> dict:
    m = GS.load_manifest(root)
    return dict(implementations.resolve_impl("engine")(m.load(entry_id), release, device).value)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


@pytest.fixture
def fake_sglang(monkeypatch):
    """Simulate real SGLang in-process; returns a setter for its version."""
    driver = FakeDriver()
    monkeypatch.setattr(implementations, "_real_sglang_driver", lambda: driver)
    return driver


@pytest.fixture
def golden_dir(pytester: pytest.Pytester) -> Path:
    return make_golden(pytester.path / "golden")


@pytest.fixture
def recorded(pytester: pytest.Pytester, golden_dir: Path, fake_sglang) -> Path:
    """The synthetic golden with 0.5.23 values recorded through --mmhash-update."""
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update").assert_outcomes(passed=8)
    return golden_dir


def subprocess_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(fake_sglang=FAKE_DRIVER)
    pytester.makeconftest(FAKE_CONFTEST)


# ------------------------------------------------------------------ the update flow


def test_update_records_real_sglang_values_then_checks_pass(pytester, recorded):
    m = GS.load_manifest(recorded)
    assert m.pin == "0.5.23" and m.releases() == ("0.5.23",)
    assert m["a"].value("0.5.23", "cuda") == engine_value(recorded, "a", "cuda")
    assert m["empty"].value("0.5.23", "cpu") == {
        "error": "TypeError: object supporting the buffer API required"
    }
    prov = m.provenance["0.5.23"]
    assert prov["sglang"] == "0.5.23" and prov["cuda_path"] in GM.CUDA_PATHS
    result = pytester.runpytest("--mmhash-golden", "golden", "-v")
    result.assert_outcomes(
        passed=8
    )  # incl. empty[cpu]/[cuda]: the engine raises UnhashableFeatureError
    result.stdout.fnmatch_lines(["*golden/manifest.json::empty?cpu? PASSED*"])


def test_update_summary_and_idempotence(pytester, recorded):
    before = (recorded / "manifest.json").read_bytes()
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update")
    result.stdout.fnmatch_lines(["*8 values recorded from real sglang 0.5.23; all already in*"])
    assert (recorded / "manifest.json").read_bytes() == before


def test_update_refused_in_ci(pytester, golden_dir, fake_sglang, monkeypatch):
    monkeypatch.setenv("CI", "true")
    before = (golden_dir / "manifest.json").read_bytes()
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--mmhash-update is refused when the CI environment variable is set*"]
    )
    assert (golden_dir / "manifest.json").read_bytes() == before


def test_update_refused_without_real_sglang(pytester, golden_dir):
    import importlib.util

    if importlib.util.find_spec("sglang") is not None:
        pytest.skip("sglang is installed here")
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*real SGLang is not importable*"])


def test_update_refuses_other_impls(pytester, golden_dir, fake_sglang):
    result = pytester.runpytest(
        "--mmhash-golden", "golden", "--mmhash-update", "--mmhash-impl", "sglang"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*records from the installed real SGLang only*"])


def test_update_version_mismatch_needs_repin(pytester, golden_dir, fake_sglang):
    fake_sglang.version = "0.5.22"
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*installed sglang 0.5.22 differs from the manifest pin 0.5.23*--mmhash-repin*"]
    )
    assert GS.load_manifest(golden_dir).releases() == ()

    pytester.runpytest(
        "--mmhash-golden", "golden", "--mmhash-update", "--mmhash-repin"
    ).assert_outcomes(passed=8)
    m = GS.load_manifest(golden_dir)
    assert m.pin == "0.5.22" and m.releases() == ("0.5.22",)
    assert m["a"].value("0.5.22", "cpu") == engine_value(golden_dir, "a", "cpu", "0.5.22")


def test_update_other_release_keeps_pin_then_check_it(pytester, recorded, fake_sglang):
    fake_sglang.version = "0.5.9"
    pytester.runpytest(
        "--mmhash-golden", "golden", "--mmhash-update", "--mmhash-sglang-version", "0.5.9"
    ).assert_outcomes(passed=8)
    m = GS.load_manifest(recorded)
    assert m.pin == "0.5.23" and m.releases() == ("0.5.9", "0.5.23")
    pytester.runpytest(
        "--mmhash-golden", "golden", "--mmhash-sglang-version", "v0.5.9"
    ).assert_outcomes(passed=8)


def test_update_needs_golden_dir(pytester):
    result = pytester.runpytest("--mmhash-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mmhash-update needs --mmhash-golden DIR*"])


# ------------------------------------------------------------------ checks and failures


def test_release_without_values_is_a_usage_error(pytester, recorded):
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-sglang-version", "0.5.9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*no values are recorded for sglang 0.5.9 (recorded releases: 0.5.23)*"]
    )


def test_one_byte_change_fails_that_item_with_bytes_diagnosis(pytester, recorded):
    p = recorded / "features/n.npy"
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    result = pytester.runpytest("--mmhash-golden", "golden")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*golden entry 'n' [[]cpu path[]] vs sglang 0.5.23: the feature bytes changed",
            "*file:*golden/features/n.npy",
            "*diagnosis: the feature bytes changed: features/n.npy has sha256*",
        ]
    )
    out = result.stdout.str()
    assert not any(
        f in out
        for f in ("store.py", "validation.py", "model.py", "implementations.py", "plugin.py")
    )  # no internals


def test_value_change_fails_with_scheme_diagnosis_and_update_command(pytester, recorded):
    path = recorded / "manifest.json"
    data = json.loads(path.read_text())
    a = next(e for e in data["entries"] if e["id"] == "a")
    a["values"]["0.5.23"]["cpu"].update(hash=5, hex="0000000000000005")
    path.write_text(json.dumps(data))
    result = pytester.runpytest("--mmhash-golden", "golden")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected:  hash 5 (hex 0000000000000005), pad_values*",
            "*actual:    hash *",
            "*differs:   hash",
            "*schemes:   hash sha256-raw, pad pad-wide4, modifiers mask64",
            "*diagnosis: the hash scheme/implementation changed*",
            "*pytest -p no:cacheprovider --mmhash-golden golden --mmhash-update "
            "--mmhash-sglang-version 0.5.23 'golden/manifest.json::a[[]cpu[]]'*",
        ]
    )


def test_unlisted_and_missing_files_fail(pytester, recorded):
    (recorded / "features/a.pt").unlink()
    np.save(recorded / "features/stray.npy", np.zeros(3))
    result = pytester.runpytest("--mmhash-golden", "golden")
    result.assert_outcomes(passed=6, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*golden a[[]cpu[]]*",
            "golden entry 'a' [[]cpu path[]] vs sglang 0.5.23: the feature file is missing",
            "*golden unlisted[[]features/stray.npy[]]*",
            "*features/stray.npy is in the golden dir but no manifest entry names it*",
        ]
    )


def test_invalid_manifest_is_a_usage_error_naming_the_entry(pytester, recorded):
    path = recorded / "manifest.json"
    data = json.loads(path.read_text())
    data["entries"][1]["sha256"] = "nope"
    path.write_text(json.dumps(data))
    result = pytester.runpytest("--mmhash-golden", "golden")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*invalid golden manifest (1 problem): entries[[]1[]] (id 'b') field 'sha256'*"]
    )


def test_node_id_and_keyword_selection(pytester, recorded):
    pytester.runpytest(
        "--mmhash-golden", "golden", "golden/manifest.json::b[cuda]"
    ).assert_outcomes(passed=1)
    pytester.runpytest("--mmhash-golden", "golden", "-k", "cpu").assert_outcomes(passed=4)


def test_ini_keys(pytester, recorded):
    pytester.makeini("[pytest]\nmmhash_golden = golden\nmmhash_impl = engine\n")
    # the ini golden dir is collected when named (test_plugin_fixtures has the other cases)
    pytester.runpytest("golden").assert_outcomes(passed=8)


def test_project_corpus_collects_one_item_per_entry_and_path(pytester, fake_sglang):
    shutil.copytree(PROJECT_GOLDEN, pytester.path / "golden")
    before = (pytester.path / "golden/manifest.json").read_bytes()
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update", "--co", "-q")
    n = len(GS.load_manifest(PROJECT_GOLDEN).entries) * 2
    assert n >= 48
    requests = len(request_entries.load(request_entries.requests_path(PROJECT_GOLDEN)).entries)
    result.stdout.fnmatch_lines([f"{n + requests} tests collected*"])
    assert (pytester.path / "golden/manifest.json").read_bytes() == before


# ------------------------------------------------------------------ implementations


def test_impl_selection(pytester, recorded, fake_sglang):
    pytester.makepyfile(
        myimpl="""
        from pytest_mmhash import hash_feature

        def good(feature, *, sglang_version, device):
            return hash_feature(feature, sglang_version=sglang_version, device=device)

        def const(feature, *, sglang_version, device):
            return 42
        """
    )
    pytester.syspathinsert()
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", "engine").assert_outcomes(
        passed=8
    )
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", "myimpl:good").assert_outcomes(
        passed=8
    )
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", "sglang").assert_outcomes(
        passed=8
    )
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", "myimpl:const")
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(
        [
            "*impl:      myimpl:const",
            "*actual:    hash 42 (hex 000000000000002a), pad_values (not returned)",
        ]
    )
    fake_sglang.version = "0.5.22"
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", "sglang")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*runs the installed sglang 0.5.22, but sglang 0.5.23 is being checked*"]
    )
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", "nomodule:f")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# ------------------------------------------------------------------ xdist


def test_xdist_n2_check_passes(pytester):
    make_golden(pytester.path / "golden", extra=6)
    subprocess_files(pytester)
    pytester.runpytest_subprocess(
        "--mmhash-golden", "golden", "--mmhash-update", "-p", "no:cacheprovider"
    )
    result = pytester.runpytest_subprocess(
        "--mmhash-golden", "golden", "-n", "2", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=20)


def test_xdist_n4_update_loses_nothing(pytester):
    root = make_golden(pytester.path / "golden", extra=40)
    subprocess_files(pytester)
    result = pytester.runpytest_subprocess(
        "--mmhash-golden", "golden", "--mmhash-update", "-n", "4", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=88)
    result.stdout.fnmatch_lines(
        ["*recorded 88 values from real sglang 0.5.23 into*: 88 new or changed*"]
    )
    m = GS.load_manifest(root)
    got = {(e.id, d): e.value("0.5.23", d) for e, d in GM.iter_items(m)}
    assert len(got) == 88 and all(v is not None for v in got.values())
    for entry_id, device in [("a", "cpu"), ("b", "cuda"), ("x000", "cpu"), ("x039", "cuda")]:
        assert got[entry_id, device] == engine_value(root, entry_id, device)


# ------------------------------------------------------------------ a killed update


SLOW_REPLACE = """
import os, pathlib, time

_replace = os.replace

def _slow_replace(src, dst, *a, **k):
    if str(dst).endswith("manifest.json"):
        pathlib.Path(os.environ["MMHASH_SIGNAL"]).write_text(str(src))
        time.sleep(300)
    return _replace(src, dst, *a, **k)

os.replace = _slow_replace
"""


def test_killed_update_leaves_the_old_manifest_intact(pytester):
    root = make_golden(pytester.path / "golden")
    subprocess_files(pytester)
    pytester.makeconftest(FAKE_CONFTEST + SLOW_REPLACE)
    before = (root / "manifest.json").read_bytes()
    sig = pytester.path / "replacing"
    env = {**os.environ, "MMHASH_SIGNAL": str(sig)}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--mmhash-golden",
        "golden",
        "--mmhash-update",
        "-p",
        "no:cacheprovider",
    ]
    proc = subprocess.Popen(
        cmd, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not sig.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sig.exists(), "the update never reached os.replace"
        tmp = Path(sig.read_text())
        assert (
            tmp.parent == root and len(GV.parse(tmp.read_bytes(), root).releases()) == 1
        )  # new file complete
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (root / "manifest.json").read_bytes() == before
    assert GS.load_manifest(root).releases() == ()
    assert (
        GS.unlisted_files(GS.load_manifest(root)) == []
    )  # the leftover hidden temp file is not a feature


# ------------------------------------------------------------------ fixtures in a downstream project


def test_mmhash_equal_downstream_without_conftest(pytester):
    pytester.makepyfile(
        """
        import torch

        def test_equal(mmhash_equal):
            mmhash_equal(torch.arange(4.0), torch.arange(4.0), sglang_version="0.5.23")

        def test_equal_forms(mmhash, mmhash_equal):
            m = mmhash(torch.arange(4.0), sglang_version="0.5.23")
            mmhash_equal(torch.arange(4.0), m)
            mmhash_equal(torch.arange(4.0), m.hash, sglang_version="0.5.23")
            mmhash_equal(torch.arange(4.0), m.hex, sglang_version="0.5.23")

        def test_unequal(mmhash_equal):
            b = torch.arange(4.0)
            b[2] = 7
            mmhash_equal(torch.arange(4.0), b, sglang_version="0.5.23")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    a = hash_feature(torch.arange(4.0), sglang_version="0.5.23")
    b = hash_feature(torch.tensor([0.0, 1.0, 7.0, 3.0]), sglang_version="0.5.23")
    result.stdout.fnmatch_lines(
        [
            '>*mmhash_equal(torch.arange(4.0), b, sglang_version="0.5.23")',
            "E*mmhash_equal: the hashes differ (sglang 0.5.23, cpu path)",
        ]
    )
    out = result.stdout.str()
    assert f"actual:   hash {a.hash} (hex {a.hex}), pad_values {list(a.pad_values)}" in out
    assert f"expected: hash {b.hash} (hex {b.hex}), pad_values {list(b.pad_values)}" in out
    assert (
        "features: feature: first differing element at index (2,): 2.0 vs 7.0 (bits 0x40000000 vs 0x40e00000)"
        in out
    )
    assert "def assert_mmhash_equal" not in out


def test_mmhash_golden_fixture(pytester, recorded):
    pytester.makepyfile(
        """
        def test_read(mmhash_golden):
            assert "a" in mmhash_golden.ids
            v = mmhash_golden["a"].value("0.5.23", "cpu")
            assert len(v["hex"]) == 16 and len(v["pad_values"]) == 4
            assert mmhash_golden.load("a").shape == (10,)
        """
    )
    pytester.runpytest("--mmhash-golden", "golden").assert_outcomes(passed=9)
    pytester.runpytest().assert_outcomes(failed=0, errors=1)


# ------------------------------------------------------------------ the gpu marker


GPU_TESTS = """
import pytest

@pytest.mark.gpu
def test_on_gpu():
    pass

def test_plain():
    pass
"""


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour without CUDA")
def test_gpu_marker_skips_without_cuda(pytester):
    pytester.makepyfile(GPU_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs a CUDA device*"])


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour without CUDA")
def test_require_gpu_turns_the_skip_into_an_error(pytester, recorded):
    pytester.makepyfile(GPU_TESTS)
    result = pytester.runpytest("--mmhash-require-gpu")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*--mmhash-require-gpu: this test needs a CUDA device*"])
    # cuda-path golden items run on the GPU under --mmhash-require-gpu, so they error too
    pytester.runpytest(
        "--mmhash-golden", "golden", "--mmhash-require-gpu", "-k", "golden"
    ).assert_outcomes(passed=4, errors=4)


def test_gpu_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gpu: needs a CUDA device*"])


# ------------------------------------------------------------------ staying light


def test_plugin_imports_nothing_heavy():
    code = (
        "import sys, pytest_mmhash.plugin; "
        "print(sorted(m for m in ('torch', 'numpy', 'triton', 'safetensors', 'pytest_mmhash.api') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_run_that_does_not_use_the_plugin_imports_no_torch(pytester):
    pytester.makepyfile(
        """
        import sys

        def test_light():
            assert "torch" not in sys.modules and "numpy" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:benchmark",
        "-p",
        "no:xdist",
        "-p",
        "no:xdist.looponfail",
    )
    result.assert_outcomes(passed=1)
