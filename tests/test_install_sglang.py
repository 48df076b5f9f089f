"""``mmhash install-sglang``: recipes ship in the package, the wrapper finds them, the printed command.

The real build (minutes, ~1.5 GB) runs in ``.ci/run``, which makes its pinned SGLang venv with this
command; here only what needs no download is checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from pytest_mmhash import install_sglang as I
from pytest_mmhash.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_recipes_ship_inside_the_package() -> None:
    """Every recipe and the installer are package data, so a pip install carries them."""
    section = (REPO / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    line = re.search(r"^pytest_mmhash = (\[.*\])$", section, re.M)
    assert line is not None
    globs = json.loads(line.group(1))
    files = sorted(p.relative_to(I.RECIPES.parent).as_posix() for p in I.RECIPES.iterdir())
    assert "recipes/install-sglang.sh" in files and "0.5.23" in I.recipe_releases()
    assert all(any(fnmatch(f, g) for g in globs) for f in files if not f.endswith(".md")), files


def test_wrapper_runs_the_packaged_installer() -> None:
    """tools/install-sglang.sh (used by .ci/run and tox) reaches the packaged script and its recipes."""
    r = subprocess.run(
        ["bash", str(REPO / "tools/install-sglang.sh"), "0.5.15", "/nonexistent/venv"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "no venv recipe known to run sglang 0.5.15" in r.stderr
    assert "0.5.23" in r.stderr  # it listed the recipes it found next to itself


FAKE_PIP = """#!{python}
import os, sys, zipfile
args = sys.argv[1:]
with open(os.environ["PIP_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
if args[0] == "download":  # the wheel: only its sglang/ directory matters
    spec, dest = args[args.index("--no-deps") + 1], args[args.index("-d") + 1]
    version = spec.split("==")[1]
    with zipfile.ZipFile(f"{{dest}}/sglang-{{version}}-py3-none-any.whl", "w") as z:
        z.writestr("sglang/version.py", f"__version__ = '{{version}}'\\n")
if "--target" in args:
    target, req = args[args.index("--target") + 1], args[args.index("--target") + 2]
    os.makedirs(f"{{target}}/{{req.replace('==', '-')}}.dist-info")
"""


def test_0_5_20_runs_in_the_0_5_23_venv_with_xgrammar_beside_its_source(tmp_path: Path) -> None:
    """0.5.20 is hosted by the 0.5.23 recipe; the xgrammar its server_args imports (the version it
    declares) goes next to its source only, once. pip is a stand-in that logs its calls."""
    venv = tmp_path / "v"
    (venv / "bin").mkdir(parents=True)
    (venv / ".sglang-recipe").write_text("0.5.23\n")
    (venv / "bin/python").symlink_to(sys.executable)
    (venv / "bin/pip").write_text(FAKE_PIP.format(python=sys.executable))
    (venv / "bin/pip").chmod(0o755)
    log = tmp_path / "pip.log"
    run = ["bash", str(I.INSTALLER), "0.5.20", str(venv)]
    for _ in range(2):
        r = subprocess.run(
            run, capture_output=True, text=True, env={**os.environ, "PIP_LOG": str(log)}
        )
        assert r.returncode == 0, r.stderr
    src = venv / "sglang-src/0.5.20"
    calls = log.read_text().splitlines()
    (xgrammar,) = [c for c in calls if "xgrammar" in c]  # the second run finds it there
    assert xgrammar.startswith(f"install -q --no-deps --target {src} xgrammar==0.2.1 -c ")
    assert (src / "sglang/version.py").is_file() and (src / "xgrammar-0.2.1.dist-info").is_dir()
    assert f'export PYTHONPATH="{src}' in (src / "sglang-env.sh").read_text()


def test_record_command_for_a_recipe_release(tmp_path: Path) -> None:
    cmd = I.record_command("0.5.23", "mygolden/", tmp_path / "v")
    assert cmd == (
        f"TRITON_INTERPRET=1 {tmp_path}/v/bin/python -m pytest -p no:cacheprovider "
        "--mmhash-golden mygolden --mmhash-update --mmhash-sglang-version 0.5.23 "
        "mygolden/manifest.json"
    )
    assert I.record_command("0.5.23", "g", targets=["g/manifest.json::a[cpu]"]).startswith(
        'TRITON_INTERPRET=1 "$VENV"/bin/python -m pytest'
    )


def test_record_command_for_a_hosted_release_sources_its_env(tmp_path: Path) -> None:
    cmd = I.record_command("0.5.9", "g", tmp_path / "v")
    assert cmd.startswith(f"source {tmp_path}/v/sglang-src/0.5.9/sglang-env.sh && ")


def test_record_command_for_a_fork_release_names_its_own_code() -> None:
    """A fork's values come from the fork's own code (MMHASH_FORK_SITES), never from a venv."""
    cmd = I.record_command("sglang-kt==0.7.2", "g/", targets=["g/manifest.json::a[cuda]"])
    assert cmd == (
        'MMHASH_FORK_SITES="$FORK_SITES" TRITON_INTERPRET=1 python -m pytest -p no:cacheprovider '
        "--mmhash-golden g --mmhash-update --mmhash-engine sglang-kt --mmhash-sglang-version 0.7.2 "
        "'g/manifest.json::a[cuda]'"
    )
    assert I.record_source("sglang-omni==0.1.9") == (
        '$FORK_SITES: sglang-omni==0.1.9, from: tools/install-fork.sh sglang-omni 0.1.9 "$FORK_SITES"'
    )
    assert I.record_source("0.5.23").startswith("$VENV: real sglang==0.5.23")


def test_installs_this_checkout_editable() -> None:
    """In this repo's venv the package is an editable checkout: that checkout is what is installed."""
    assert I.self_requirement() == ["-e", str(REPO)]


def test_bad_version_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["install-sglang", "9.9.9", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmhash install-sglang: error:") and err.count("\n") == 1
    assert not (tmp_path / "v").exists()


def test_failed_step_names_the_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing build step stops the command with exit 1 and names what failed."""
    monkeypatch.setattr(I, "INSTALLER", tmp_path / "missing.sh")
    assert main(["install-sglang", "0.5.23", str(tmp_path / "v")]) == 1
    assert "real sglang 0.5.23 into" in capsys.readouterr().err


def test_help_lists_recipes() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pytest_mmhash.cli", "install-sglang", "--help"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "0.5.23" in r.stdout
