"""``mmhash install-sglang RELEASE DIR``: install the code a release's golden values come from.

Golden values come only from real SGLang, and a fork's only from the fork's own code. For an sglang
release this builds the venv they are recorded in from the recipes shipped in
``pytest_mmhash/recipes/`` (CPU torch; SGLang's GPU kernels later run under ``TRITON_INTERPRET=1``)
and installs this very pytest-mmhash and pytest into it; for a fork's ``ENGINE==V`` it installs the
fork's files (and sglang-omni's pinned sglang) into the folder ``MMHASH_FORK_SITES`` names, with the
installer shipped beside the recipes. Either way it prints the one command that records values.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from . import __version__
from .errors import (
    BadArgumentError,
    InstallError,
    MmhashError,
    NewerReleaseError,
    UnknownVersionError,
)

RECIPES = Path(__file__).parent / "recipes"
INSTALLER = RECIPES / "install-sglang.sh"
FORK_INSTALLER = RECIPES / "install-fork.sh"
#: The file the fork installer writes into each install dir: the ``DIST==VERSION`` it holds.
FORK_MARKER = ".mmhash-installed"
DIST = "pytest-mmhash"


def recipe_releases() -> list[str]:
    """Releases with a full venv recipe of their own (others run in a host recipe's venv)."""
    return sorted(
        p.name.removeprefix("sglang-").removesuffix(".txt") for p in RECIPES.glob("*.txt")
    )


def self_requirement() -> list[str]:
    """pip arguments that install this same pytest-mmhash: the checkout it runs from (editable),
    else the local file or folder it was installed from, else its version from the package index."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "pytest_mmhash").is_dir():
        return ["-e", str(checkout)]
    for dist in metadata.distributions(name=DIST):
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file://"):
            return [url.removeprefix("file://")]
    return [f"{DIST}=={__version__}"]


#: How commands name a real-SGLang venv the reader makes with ``mmhash install-sglang R "$VENV"``.
VENV_PLACEHOLDER = '"$VENV"'


#: How commands name the folder of fork installs made with ``mmhash install-sglang ENGINE==V "$FORK_SITES"``.
FORK_SITES_PLACEHOLDER = '"$FORK_SITES"'


def install_command(release: str) -> str:
    """The command that installs what ``release``'s values are recorded from, into ``"$VENV"``
    (an sglang release) or ``"$FORK_SITES"`` (a fork's ``ENGINE==V``)."""
    from .engines import SGLANG, split_key

    where = VENV_PLACEHOLDER if split_key(release)[0] == SGLANG else FORK_SITES_PLACEHOLDER
    return f"mmhash install-sglang {release} {where}"


def record_command(
    release: str, golden: str, where: Path | None = None, targets: Sequence[str] = ()
) -> str:
    """The one command that records ``release``'s values into the golden dir ``golden`` from the
    real SGLang in the venv ``where`` (None: ``"$VENV"``); ``targets`` are node ids (default: the
    manifest).

    A fork's release key (``sglang-kt==0.7.2``) records from the fork's own code, installed under
    the folder ``where`` (None: ``"$FORK_SITES"``) and named by ``MMHASH_FORK_SITES``, with this
    project's own python.
    """
    from .engines import SGLANG, split_key

    engine, version = split_key(release)
    g = golden.rstrip("/") or golden
    args = ["--mmhash-golden", g, "--mmhash-update"]
    if engine != SGLANG:
        sites = shlex.quote(str(where)) if where is not None else FORK_SITES_PLACEHOLDER
        args += ["--mmhash-engine", engine, "--mmhash-sglang-version", version]
        args += list(targets) or [f"{g}/manifest.json"]
        return (
            f"MMHASH_FORK_SITES={sites} TRITON_INTERPRET=1 python -m pytest "
            f"-p no:cacheprovider {shlex.join(args)}"
        )
    py = shlex.quote(str(where)) if where is not None else VENV_PLACEHOLDER
    args += ["--mmhash-sglang-version", release]
    args += list(targets) or [f"{g}/manifest.json"]
    cmd = f"TRITON_INTERPRET=1 {py}/bin/python -m pytest -p no:cacheprovider {shlex.join(args)}"
    if release in recipe_releases():
        return cmd
    return f"source {py}/sglang-src/{release}/sglang-env.sh && {cmd}"  # wheel source on PYTHONPATH


def record_source(release: str) -> str:
    """Where :func:`record_command` finds the code whose values it records, and how to make it."""
    from .engines import SGLANG, split_key

    engine, version = split_key(release)
    if engine == SGLANG:
        return f"$VENV: real sglang=={release}, from: {install_command(release)}"
    return f"$FORK_SITES: {engine}=={version}, from: {install_command(release)}"


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    print(f"mmhash install-sglang: {what}", flush=True)
    if subprocess.run(cmd, env=env).returncode != 0:
        raise InstallError(f"{what} failed (command: {shlex.join(cmd)})")


def _installer_env() -> dict[str, str]:
    """The environment of an installer script: ``PYTHON`` (its python) defaults to this mmhash's."""
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    return env


def install(release: str, venv: Path, golden: str) -> str:
    """Build ``venv`` for ``release`` and install this project and pytest into it; the record command."""
    cmd = ["bash", str(INSTALLER), release, str(venv)]
    _run(cmd, f"real sglang {release} into {venv}", _installer_env())  # a venv of the same Python
    py = str(venv / "bin" / "python")
    pinned = subprocess.run(
        [
            py,
            "-c",
            "import importlib.metadata as m; print(m.version('torch')); print(m.version('numpy'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if pinned.returncode != 0:
        raise InstallError(f"{py} cannot report its torch and numpy: {pinned.stderr.strip()}")
    torch_v, numpy_v = pinned.stdout.split()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as c:
        c.write(f"torch=={torch_v}\nnumpy=={numpy_v}\n")  # keep the recipe's CPU torch and numpy
    try:
        _run(
            [py, "-m", "pip", "install", "-q", "-c", c.name, *self_requirement(), "pytest>=7.4"],
            f"pytest-mmhash and pytest into {venv} (torch {torch_v}, numpy {numpy_v} kept)",
        )
    finally:
        os.unlink(c.name)
    return record_command(release, golden, venv)


def install_fork(release: str, sites: Path, golden: str) -> str:
    """Install the fork release ``release`` (``ENGINE==V``) into ``sites/ENGINE-V`` (sglang-omni's
    pinned sglang beside it); the record command."""
    from .engines import split_key

    engine, version = split_key(release)
    cmd = ["bash", str(FORK_INSTALLER), engine, version, str(sites)]
    _run(cmd, f"{engine} {version} (its own files) into {sites}", _installer_env())
    return record_command(release, golden, sites)


def other_installs(release: str, sites: Path) -> list[str]:
    """Releases of ``release``'s engine other than it installed in ``sites`` (read from the
    installer's markers): recording needs exactly one install of the engine there."""
    from .engines import split_key

    engine = split_key(release)[0]
    held = (m.read_text().strip() for m in sites.glob(f"*/{FORK_MARKER}"))
    return sorted(k for k in held if k != release and split_key(k)[0] == engine)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash install-sglang",
        description="Install what golden values are recorded from. An SGLang release VERSION: a "
        "venv DIR with real SGLang (CPU torch; its GPU kernels run under TRITON_INTERPRET=1), "
        "this pytest-mmhash and pytest. Full recipes: "
        f"{', '.join(recipe_releases())}; other runnable releases use the venv of their host "
        "recipe. Takes a few minutes (downloads and installs about 1.5 GB). A fork release "
        "ENGINE==VERSION (sglang-kt==0.7.2, sglang-omni==0.1.9): the fork's own files, pip "
        "install --no-deps --target DIR/ENGINE-VERSION (sglang-omni's pinned sglang beside it), "
        "nothing of it imported; DIR is the folder MMHASH_FORK_SITES names when recording.",
    )
    p.add_argument(
        "version",
        metavar="VERSION",
        help="an SGLang release (0.5.23) or a fork's ENGINE==VERSION (sglang-kt==0.7.2)",
    )
    p.add_argument(
        "dir",
        metavar="DIR",
        help="SGLang: the venv to create (or re-check); a fork: the folder its installs go into",
    )
    p.add_argument(
        "--golden",
        metavar="GOLDEN_DIR",
        default="GOLDEN_DIR",
        help="golden dir to name in the printed record command",
    )
    return p


def _known_release(text: str) -> str:
    """The release key ``text`` names; a release newer than any known has no recipe to install."""
    from .engines import resolve_key, split_key

    if not split_key(text)[1]:
        raise BadArgumentError(f"{text!r}: no version (expected e.g. 0.5.23 or sglang-kt==0.7.2)")
    try:
        return resolve_key(text)
    except NewerReleaseError as e:
        raise UnknownVersionError(
            f"{text}: newer than the newest release this pytest-mmhash knows ({e.newest}), so it "
            f"has no recipe to install it; upgrade pytest-mmhash"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 done, 2 bad arguments, 1 a failed install step."""
    from .engines import SGLANG, key_text, split_key

    args = _parser().parse_args(argv)
    try:
        release = _known_release(args.version)
        engine = split_key(release)[0]
        where = Path(args.dir).absolute()
        if where.exists() and not where.is_dir():
            raise BadArgumentError(f"{args.dir}: exists and is not a directory")
        if engine == SGLANG:
            command = install(release, where, args.golden)
            ready = f"Real sglang {release} is ready in {where}"
        else:
            command = install_fork(release, where, args.golden)
            ready = f"{key_text(release)}'s own code is installed under {where}"
    except MmhashError as e:
        print(f"mmhash install-sglang: error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"\n{ready}. Record golden values with:\n\n  {command}\n")
    if engine != SGLANG and (others := other_installs(release, where)):
        print(
            f"Note: {where} also holds {', '.join(others)}; recording needs exactly one {engine} "
            "install under MMHASH_FORK_SITES: install this one into a folder of its own.\n"
        )
    return 0
