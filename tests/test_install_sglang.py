"""``mmhash install-sglang``: recipes ship in the package, the wrapper finds them, the printed command.

The real build (minutes, ~1.5 GB) runs in ``.ci/run``, which makes its pinned SGLang venv and its
fork installs with this command; here only what needs no download is checked. A fork install's
pip commands are checked through a stand-in ``python`` (``PYTHON``) that logs its arguments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from pytest_mmhash import install_sglang as I
from pytest_mmhash.cli import main
from pytest_mmhash.errors import GoldenError

REPO = Path(__file__).resolve().parents[1]


def test_recipes_ship_inside_the_package() -> None:
    """Every recipe and the installer are package data, so a pip install carries them."""
    section = (REPO / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    line = re.search(r"^pytest_mmhash = (\[.*\])$", section, re.M)
    assert line is not None
    globs = json.loads(line.group(1))
    files = sorted(p.relative_to(I.RECIPES.parent).as_posix() for p in I.RECIPES.iterdir())
    assert "recipes/install-sglang.sh" in files and "0.5.23" in I.recipe_releases()
    assert "recipes/install-fork.sh" in files
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
        '$FORK_SITES: sglang-omni==0.1.9, from: mmhash install-sglang sglang-omni==0.1.9 "$FORK_SITES"'
    )
    assert I.record_source("0.5.23").startswith("$VENV: real sglang==0.5.23")


def test_hints_that_need_a_fork_install_name_the_shipped_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pip user has no tools/: the golden-store hint and the recording refusal name mmhash's."""
    from pytest_mmhash.implementations import real_fork
    from pytest_mmhash.lifecycle import record_hint

    hint = record_hint("g", "sglang-kt==0.7.2")
    assert (
        'from real sglang-kt 0.7.2: mmhash install-sglang sglang-kt==0.7.2 "$FORK_SITES" (once)'
        in hint
    )
    assert 'then: MMHASH_FORK_SITES="$FORK_SITES" TRITON_INTERPRET=1' in hint
    monkeypatch.delenv("MMHASH_FORK_SITES", raising=False)
    with pytest.raises(GoldenError, match=r"\(mmhash install-sglang sglang-omni==VERSION DIR\)"):
        real_fork("sglang-omni")


def test_installs_this_checkout_editable() -> None:
    """In this repo's venv the package is an editable checkout: that checkout is what is installed."""
    assert I.self_requirement() == ["-e", str(REPO)]


def test_bad_version_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["install-sglang", "9.9.9", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmhash install-sglang: error:") and err.count("\n") == 1
    assert "has no recipe to install it; upgrade pytest-mmhash" in err
    assert "--allow-newer" not in err  # the hashing commands' way out; installing has none
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


# --------------------------------------------------------------------------- forks

#: A stand-in for ``python``: logs its arguments (one JSON list a line) to ``$FAKE_PY_LOG``; for
#: ``-m pip install ... --target DIR NAME==V`` it writes the dist-info pip would (sglang-omni's
#: pinning sglang 0.5.22, as 0.1.9's does); ``FAKE_PY_FAIL`` set: exits 1 instead.
FAKE_PYTHON = """#!{python}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_PY_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_PY_FAIL"):
    sys.exit(1)
name, version = args[-1].split("==")
info = Path(args[args.index("--target") + 1]) / f"{{name.replace('-', '_')}}-{{version}}.dist-info"
info.mkdir(parents=True)
pin = "Requires-Dist: sglang==0.5.22\\n" if name == "sglang-omni" else ""
(info / "METADATA").write_text(f"Metadata-Version: 2.1\\nName: {{name}}\\nVersion: {{version}}\\n{{pin}}")
"""


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PYTHON`` points at :data:`FAKE_PYTHON`; returns its log (empty until it is called)."""
    exe = tmp_path / "fake-bin" / "python"
    exe.parent.mkdir()
    exe.write_text(FAKE_PYTHON.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "fake-python.log"
    monkeypatch.setenv("PYTHON", str(exe))
    monkeypatch.setenv("FAKE_PY_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    """The argument lists the stand-in python was called with, in order."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def pip_target(site: Path, requirement: str) -> list[str]:
    """The pip call the fork installer makes for one distribution."""
    pip = ["-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target"]
    return [*pip, str(site), requirement]


def test_fork_install_puts_omni_and_its_pinned_sglang_under_dir(
    tmp_path: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ENGINE==V DIR``: one ``pip install --no-deps --target`` per distribution, the pin read
    from omni's own metadata; a re-run keeps both; the printed command names DIR."""
    sites = tmp_path / "sites"
    assert main(["install-sglang", "sglang-omni==0.1.9", str(sites), "--golden", "g"]) == 0
    assert calls(fake_python) == [
        pip_target(sites / "sglang-omni-0.1.9", "sglang-omni==0.1.9"),
        pip_target(sites / "sglang-0.5.22", "sglang==0.5.22"),
    ]
    assert (sites / "sglang-0.5.22/.mmhash-installed").read_text() == "sglang==0.5.22\n"
    out = capsys.readouterr().out
    assert f"MMHASH_FORK_SITES={sites} TRITON_INTERPRET=1 python -m pytest" in out
    assert "--mmhash-engine sglang-omni --mmhash-sglang-version 0.1.9 g/manifest.json" in out
    assert "Note:" not in out
    assert main(["install-sglang", "sglang-omni==v0.1.9", str(sites)]) == 0
    assert len(calls(fake_python)) == 2  # idempotent: nothing reinstalled


def test_fork_install_says_when_dir_holds_another_release(
    tmp_path: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recording needs exactly one install of the engine: a second kt release under DIR is named."""
    sites = tmp_path / "sites"
    assert main(["install-sglang", "sglang-kt==0.5.2", str(sites)]) == 0
    assert "Note:" not in capsys.readouterr().out
    assert main(["install-sglang", "sglang-kt==0.7.2", str(sites)]) == 0
    assert calls(fake_python)[-1] == pip_target(sites / "sglang-kt-0.7.2", "sglang-kt==0.7.2")
    out = capsys.readouterr().out
    assert f"Note: {sites} also holds sglang-kt==0.5.2; recording needs exactly one" in out


@pytest.mark.parametrize(
    ("release", "message"),
    [
        ("sglang-foo==1.0", "engine 'sglang-foo' is not one of sglang, sglang-kt, sglang-omni"),
        (
            "sglang-kt==9.9",
            "sglang-kt==9.9: newer than the newest release this pytest-mmhash knows",
        ),
        ("sglang-omni==0.0.1", "sglang-omni 0.0.1 predates 0.1.1"),
        ("sglang-kt==0.6.0", "sglang-kt 0.6.0 is not a released version"),
        ("sglang-kt==", "'sglang-kt==': no version"),
    ],
)
def test_bad_fork_release_is_one_line_exit_2(
    release: str,
    message: str,
    tmp_path: Path,
    fake_python: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown engine or release is refused before anything is installed."""
    assert main(["install-sglang", release, str(tmp_path / "sites")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmhash install-sglang: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "sites").exists() and calls(fake_python) == []


def test_fork_dir_that_is_a_file_or_missing_is_exit_2(
    tmp_path: Path, fake_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_text("")
    assert main(["install-sglang", "sglang-kt==0.7.2", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["install-sglang", "sglang-kt==0.7.2"])
    assert e.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "mmhash install-sglang: error: the following arguments are required: DIR"
    assert calls(fake_python) == []


def test_failed_fork_pip_step_exits_1_and_marks_nothing(
    tmp_path: Path,
    fake_python: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed pip leaves no marker, so the next run installs again instead of trusting it."""
    monkeypatch.setenv("FAKE_PY_FAIL", "1")
    sites = tmp_path / "sites"
    assert main(["install-sglang", "sglang-kt==0.7.2", str(sites)]) == 1
    assert "sglang-kt 0.7.2 (its own files) into" in capsys.readouterr().err
    assert not list(sites.glob("*/.mmhash-installed"))
    monkeypatch.delenv("FAKE_PY_FAIL")
    assert main(["install-sglang", "sglang-kt==0.7.2", str(sites)]) == 0
    assert len(calls(fake_python)) == 2


def test_fork_wrapper_runs_the_packaged_installer() -> None:
    """tools/install-fork.sh (used by tox) is the packaged script: its usage line names it."""
    r = subprocess.run(
        ["bash", str(REPO / "tools/install-fork.sh")], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "pytest_mmhash/recipes/install-fork.sh DIST VERSION PARENT" in r.stderr


def test_fork_installer_ships_in_the_wheel_and_runs_from_it(
    tmp_path: Path, fake_python: Path
) -> None:
    """A non-editable install (a wheel built here, installed with --target, no index) carries
    install-fork.sh, and its ``mmhash install-sglang sglang-kt==V DIR`` runs that copy."""
    pytest.importorskip("setuptools", minversion="68")  # the build backend, without the index
    src = tmp_path / "src"
    shutil.copytree(
        REPO / "pytest_mmhash", src / "pytest_mmhash", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = [*pip, "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(src)], check=True, capture_output=True)
    (wheel,) = wheels.glob("pytest_mmhash-*.whl")
    assert "pytest_mmhash/recipes/install-fork.sh" in zipfile.ZipFile(wheel).namelist()
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True
    )
    sites = tmp_path / "sites"
    script = (
        "import sys, pytest_mmhash.install_sglang as I\n"
        "print(I.FORK_INSTALLER)\n"
        "from pytest_mmhash.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [sys.executable, "-c", script, "install-sglang", "sglang-kt==0.7.2", str(sites)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(site / "pytest_mmhash/recipes/install-fork.sh")
    assert calls(fake_python) == [pip_target(sites / "sglang-kt-0.7.2", "sglang-kt==0.7.2")]
    assert (sites / "sglang-kt-0.7.2/sglang_kt-0.7.2.dist-info/METADATA").is_file()
