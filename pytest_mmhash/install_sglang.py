"""``mmhash install-sglang VERSION VENV``: a venv with real SGLang, this project and pytest in it.

Golden values come only from real SGLang. This builds the venv they are recorded in from the
recipes shipped in ``pytest_mmhash/recipes/`` (CPU torch; SGLang's GPU kernels later run under
``TRITON_INTERPRET=1``), installs this very pytest-mmhash and pytest into it, and prints the one
command that records values.
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
from .errors import BadArgumentError, InstallError, MmhashError

RECIPES = Path(__file__).parent / "recipes"
INSTALLER = RECIPES / "install-sglang.sh"
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


#: How commands name the folder of fork installs made with ``tools/install-fork.sh DIST V "$FORK_SITES"``.
FORK_SITES_PLACEHOLDER = '"$FORK_SITES"'


def record_command(
    release: str, golden: str, venv: Path | None = None, targets: Sequence[str] = ()
) -> str:
    """The one command that records ``release``'s values into the golden dir ``golden`` from the
    real SGLang in ``venv`` (None: ``"$VENV"``); ``targets`` are node ids (default: the manifest).

    A fork's release key (``sglang-kt==0.7.2``) records from the fork's own code, installed under
    ``"$FORK_SITES"`` and named by ``MMHASH_FORK_SITES``, with this project's own python.
    """
    from .engines import SGLANG, split_key

    engine, version = split_key(release)
    g = golden.rstrip("/") or golden
    args = ["--mmhash-golden", g, "--mmhash-update"]
    if engine != SGLANG:
        args += ["--mmhash-engine", engine, "--mmhash-sglang-version", version]
        args += list(targets) or [f"{g}/manifest.json"]
        return (
            f"MMHASH_FORK_SITES={FORK_SITES_PLACEHOLDER} TRITON_INTERPRET=1 python -m pytest "
            f"-p no:cacheprovider {shlex.join(args)}"
        )
    py = shlex.quote(str(venv)) if venv is not None else VENV_PLACEHOLDER
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
        return f'$VENV: real sglang=={release}, from: mmhash install-sglang {release} "$VENV"'
    return (
        f"$FORK_SITES: {engine}=={version}, from: tools/install-fork.sh {engine} {version} "
        f'"$FORK_SITES"'
    )


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    print(f"mmhash install-sglang: {what}", flush=True)
    if subprocess.run(cmd, env=env).returncode != 0:
        raise InstallError(f"{what} failed (command: {shlex.join(cmd)})")


def install(release: str, venv: Path, golden: str) -> str:
    """Build ``venv`` for ``release`` and install this project and pytest into it; the record command."""
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)  # a venv of the same Python as this mmhash
    _run(["bash", str(INSTALLER), release, str(venv)], f"real sglang {release} into {venv}", env)
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash install-sglang",
        description="Build a venv with real SGLang VERSION (CPU torch; its GPU kernels run under "
        "TRITON_INTERPRET=1), this pytest-mmhash and pytest, for recording golden values. "
        f"Full recipes: {', '.join(recipe_releases())}; other runnable releases use the venv of "
        "their host recipe. Takes a few minutes (downloads and installs about 1.5 GB).",
    )
    p.add_argument("version", metavar="VERSION", help="the SGLang release, e.g. 0.5.23")
    p.add_argument("venv", metavar="VENV", help="the venv directory to create (or re-check)")
    p.add_argument(
        "--golden",
        metavar="DIR",
        default="GOLDEN_DIR",
        help="golden dir to name in the printed record command",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 done, 2 bad arguments, 1 a failed install step."""
    from .versions import resolve

    args = _parser().parse_args(argv)
    try:
        release = resolve(args.version).version
        venv = Path(args.venv).absolute()
        if venv.exists() and not venv.is_dir():
            raise BadArgumentError(f"{args.venv}: exists and is not a directory")
        command = install(release, venv, args.golden)
    except MmhashError as e:
        print(f"mmhash install-sglang: error: {e}", file=sys.stderr)
        return e.exit_code
    print(
        f"\nReal sglang {release} is ready in {venv}. Record golden values with:\n\n  {command}\n"
    )
    return 0
