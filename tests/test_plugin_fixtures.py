"""Fixtures that keep their word: the release ``mmhash_equal`` compares at, the fixtures' default
release, recorded values as expectations, when an ini-configured golden dir is collected, where a
``gpu`` skip points, and what the items of a store without values say.

Real SGLang is simulated by the engine-backed fake of ``fakes.py`` (in-process, monkeypatched).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fakes import FakeDriver

from pytest_mmhash import NEWEST, implementations
from pytest_mmhash.golden import store as G

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("CI", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)


def make_store(root: Path, pin: str = "0.5.23") -> Path:
    """A golden dir with one fp32 entry ``a`` and no values."""
    (root / "features").mkdir(parents=True)
    torch.save(torch.arange(10, dtype=torch.float32), root / "features/a.pt")
    G.write_manifest(G.new_manifest(root, pin, [G.make_entry(root, "a", "features/a.pt")]))
    return root


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    """A store whose 0.5.23 values were recorded (by the engine-backed fake SGLang)."""
    root = make_store(pytester.path / "golden")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(implementations, "_real_sglang_driver", lambda: FakeDriver("0.5.23"))
        pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update").assert_outcomes(passed=2)
    return root


def test_mmhash_equal_compares_at_the_release_and_path_the_expected_value_names(pytester):
    pytester.makepyfile(
        """
        import dataclasses, torch

        def test_names_its_release(mmhash, mmhash_equal):
            x = torch.arange(10.0)
            mmhash_equal(x, mmhash(x, sglang_version="0.5.9", device="cuda"))

        def test_only_pads_differ(mmhash, mmhash_equal):
            x = torch.arange(10.0)
            e = mmhash(x, sglang_version="0.5.9", device="cuda")
            mmhash_equal(x, dataclasses.replace(e, pad_values=(1,)))
        """
    )
    result = pytester.runpytest("--mmhash-sglang-version", "0.5.23")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*mmhash_equal: the hashes are equal, only the pad values differ (sglang 0.5.9, cuda path)",
            "E*note:     compared at sglang 0.5.9, cuda path, as the expected value names them "
            "(this session's default release: 0.5.23)",
        ]
    )


def test_fixture_default_follows_option_then_pin_then_newest(pytester):
    make_store(pytester.path / "golden", pin="0.5.9")
    pytester.makepyfile(
        """
        import os, torch

        def test_default(mmhash):
            assert mmhash(torch.ones(2)).sglang_version == os.environ["WANT"]
        """
    )
    pytester.makeini("[pytest]\nmmhash_golden = golden\n")
    for want, args in (("0.5.9", ()), ("0.5.10", ("--mmhash-sglang-version", "0.5.10"))):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WANT", want)
            pytester.runpytest_inprocess(*args).assert_outcomes(passed=1)
    (pytester.path / "tox.ini").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANT", NEWEST)  # no sglang is installed in the test venv
        pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_recorded_value_is_an_expectation_at_its_release(pytester, recorded):
    pytester.makepyfile(
        """
        import torch

        def test_recorded(mmhash_golden, mmhash_equal):
            x = torch.arange(10, dtype=torch.float32)
            mmhash_equal(x, mmhash_golden["a"].value("0.5.23", "cuda"))
            mmhash_equal(mmhash_golden.load("a"), mmhash_golden["a"].value("0.5.23", "cpu"))

        def test_other_bytes(mmhash_golden, mmhash_equal):
            mmhash_equal(torch.ones(10), mmhash_golden["a"].value("0.5.23", "cpu"))
        """
    )
    result = pytester.runpytest(
        "--mmhash-golden", "golden", "test_recorded_value_is_an_expectation_at_its_release.py"
    )
    result.assert_outcomes(passed=3, failed=1)  # with the 2 golden items
    result.stdout.fnmatch_lines(["E*mmhash_equal: the hashes differ (sglang 0.5.23, cpu path)"])


def test_ini_golden_dir_is_collected_only_when_named(pytester, recorded):
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    pytester.makeini("[pytest]\nmmhash_golden = golden\n")
    pytester.runpytest("test_one.py").assert_outcomes(passed=1)
    pytester.runpytest("test_one.py", "golden").assert_outcomes(passed=3)
    pytester.runpytest("golden/manifest.json::a[cpu]").assert_outcomes(passed=1)
    pytester.runpytest("test_one.py", "--mmhash-golden", "golden").assert_outcomes(passed=3)
    pytester.makeini("[pytest]\nmmhash_golden = golden\nmmhash_golden_always = true\n")
    pytester.runpytest("test_one.py").assert_outcomes(passed=3)


def test_ini_golden_dir_without_values_does_not_break_other_tests(pytester):
    make_store(pytester.path / "golden")
    pytester.makepyfile(
        test_one="def test_one(mmhash_golden):\n    assert mmhash_golden.ids == ('a',)\n"
    )
    pytester.makeini("[pytest]\nmmhash_golden = golden\nmmhash_sglang_version = 0.5.9\n")
    pytester.runpytest("test_one.py").assert_outcomes(passed=1)


def test_new_store_items_say_no_value_is_recorded_yet_and_how_to_record(pytester):
    make_store(pytester.path / "golden")
    result = pytester.runpytest("--mmhash-golden", "golden")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "golden entry 'a' [[]cpu path[]] vs sglang 0.5.23: no value is recorded yet for sglang 0.5.23 on the cpu path",
            "  to record: run real SGLang on it:",
            '    TRITON_INTERPRET=1 "$VENV"/bin/python -m pytest -p no:cacheprovider '
            "--mmhash-golden golden --mmhash-update --mmhash-sglang-version 0.5.23 "
            "'golden/manifest.json::a[[]cpu[]]'   # $VENV: real sglang==0.5.23, from: "
            'mmhash install-sglang 0.5.23 "$VENV"',
        ]
    )


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour without CUDA")
def test_gpu_skip_points_at_the_test(pytester):
    pytester.makepyfile(
        test_loc="import pytest\n\n\n@pytest.mark.gpu\ndef test_on_gpu():\n    pass\n"
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_loc.py:4: needs a CUDA device*"])


PROJECT_GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_fixtures_default_to_the_session_engine(pytester):
    """--mmhash-engine picks the fixtures' engine as --mmhash-sglang-version picks the release; a
    recorded fork value (real sglang-kt 0.7.2's, from the project's store) is compared at its own
    engine and release whatever the session's."""
    pytester.makepyfile(
        """
        import os

        def test_default(mmhash, mmhash_golden, mmhash_equal):
            x = mmhash_golden.load("bf16-odd7")
            m = mmhash(x)
            assert f"{m.engine} {m.sglang_version}" == os.environ["WANT"]
            mmhash_equal(x, mmhash_golden["bf16-odd7"].value("sglang-kt==0.7.2", "cpu"))
            mmhash_equal(x, mmhash_golden["bf16-odd7"].value("0.5.23", "cuda"))
        """
    )
    pytester.makeini(f"[pytest]\nmmhash_golden = {PROJECT_GOLDEN}\n")
    for want, args in (
        ("sglang 0.5.23", ()),
        ("sglang 0.5.9", ("--mmhash-sglang-version", "0.5.9")),
        ("sglang-kt 0.7.2", ("--mmhash-engine", "sglang-kt")),
        ("sglang-kt 0.6.1", ("--mmhash-engine", "sglang-kt", "--mmhash-sglang-version", "0.6.1")),
    ):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WANT", want)
            pytester.runpytest_inprocess(*args).assert_outcomes(passed=1)


def test_a_fork_pin_is_the_fixtures_default(pytester):
    make_store(pytester.path / "golden", pin="sglang-kt==0.7.2")
    pytester.makepyfile(
        """
        import torch

        def test_default(mmhash, mmhash_equal):
            m = mmhash(torch.arange(10.0))
            # sglang-kt's own code gives 1458572134434550373 (the family notes' vector)
            assert (m.engine, m.sglang_version, m.hash) == ("sglang-kt", "0.7.2", 1458572134434550373)
            mmhash_equal(torch.arange(10.0), 1458572134434550373)

        def test_message(mmhash_equal):
            mmhash_equal(torch.arange(10.0), torch.ones(10))
        """
    )
    pytester.makeini("[pytest]\nmmhash_golden = golden\n")
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E*mmhash_equal: the hashes differ (sglang-kt 0.7.2, cpu path)"])
