"""Mutation check: every scheme constant or step, changed, must make at least one test fail.

Each mutation edits one line of ``pytest_mmhash/cuda/{constants,emulation}.py`` or
``pytest_mmhash/schemes/{cpu,pad}.py`` in a temporary copy of the repository and runs the relevant
tests there (stopping at the first failure). A mutation the tests do not notice ("SURVIVED") means the suite cannot tell that scheme detail from a wrong one.

    python tools/mutation_check.py                 # CPU tests of the current interpreter
    python tools/mutation_check.py --oracle "$VENV/bin/python" \\
        --oracle-env "$VENV/sglang-env.sh"     # plus the real-SGLang oracle ($VENV: requirements/README.md)

Not collected by pytest (it lives under tools/). Prints a Markdown table; exits 1 if any survived.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TESTS = (
    "tests/test_spec_vectors.py",
    "tests/test_triton_kernels.py",
    "tests/test_strategies.py",
    "tests/test_front_end.py",
)


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``path``."""

    path: str
    old: str
    new: str
    what: str


K, C, P, D = (
    "pytest_mmhash/cuda/constants.py",
    "pytest_mmhash/cuda/emulation.py",
    "pytest_mmhash/schemes/cpu.py",
    "pytest_mmhash/schemes/pad.py",
)
MUTATIONS = (
    Mutation(K, "TILE_WORDS = 8192", "TILE_WORDS = 4096", "tile size 8192 -> 4096 words"),
    Mutation(K, "TILE_S1 = 0x243F6A88", "TILE_S1 = 0x243F6A89", "TILE_S1 +1"),
    Mutation(K, "^ 0xDEADBEEF) & M32", "^ 0xDEADBEEE) & M32", "TILE_S2 derivation constant"),
    Mutation(K, "TILE_A = 0x27D4EB2D", "TILE_A = 0x27D4EB2F", "TILE_A"),
    Mutation(K, "TILE_B = 0x165667B1", "TILE_B = 0x165667B3", "TILE_B"),
    Mutation(C, "x *= np.uint32(0x85EBCA6B)", "x *= np.uint32(0x85EBCA6D)", "fmix32 multiplier 1"),
    Mutation(C, "x ^= x >> np.uint32(13)", "x ^= x >> np.uint32(12)", "fmix32 shift 13 -> 12"),
    Mutation(C, "_rotl32(i, 15)", "_rotl32(i, 14)", "lane-1 rotation 15 -> 14"),
    Mutation(
        C,
        "nb = np.uint32(nbytes_padded & M32)",
        "nb = np.uint32((nbytes_padded - 1) & M32)",
        "tile NB: padded byte count - 1",
    ),
    Mutation(
        C,
        "padded = stream.nbytes + (-stream.nbytes % 4)",
        "padded = stream.nbytes",
        "tile NB: unpadded byte count",
    ),
    Mutation(
        C,
        'carry += b"\\0" * (-len(carry) % 4)',
        'carry += b"\\1" * (-len(carry) % 4)',
        "padding byte 0 -> 1",
    ),
    Mutation(K, "x ^= x >> 30", "x ^= x >> 31", "splitmix64 shift 30 -> 31"),
    Mutation(K, "0xBF58476D1CE4E5B9", "0xBF58476D1CE4E5B7", "splitmix64 multiplier 1"),
    Mutation(K, "0x94D049BB133111EB", "0x94D049BB133111E9", "splitmix64 multiplier 2"),
    Mutation(K, "XOR_P1 = 0x9E3779B185EBCA87", "XOR_P1 = 0x9E3779B185EBCA89", "xxHash PRIME64_1"),
    Mutation(K, "XOR_P2 = 0xC2B2AE3D27D4EB4F", "XOR_P2 = 0xC2B2AE3D27D4EB51", "xxHash PRIME64_2"),
    Mutation(C, "x ^= x >> np.int64(16)", "x ^= x >> np.int64(15)", "xor-int64 shift 16 -> 15"),
    Mutation(C, "x ^= x >> np.int32(13)", "x ^= x >> np.int32(12)", "xor-int32 shift 13 -> 12"),
    Mutation(
        C,
        '_sum("xor64_sum", stream), 64)',
        '_sum("xor64_sum", stream), 65)',
        "xor-int64 result not wrapped to signed 64",
    ),
    Mutation(
        P,
        'return int.from_bytes(h.digest()[:8], "big")',
        'return int.from_bytes(h.digest()[:8], "little")',
        "digest8 byte order big -> little",
    ),
    Mutation(
        P,
        'return int.from_bytes(h.digest()[:8], "big")',
        'return int.from_bytes(h.digest()[1:9], "big")',
        "digest8 bytes [0:8] -> [1:9]",
    ),
    Mutation(
        D, "return (h % (1 << 30),)", "return (h % (1 << 31),)", "pad-mod30 modulus 2^30 -> 2^31"
    ),
    Mutation(
        D,
        "return (PAD_SHIFT + h % (1 << 30),)",
        "return (PAD_SHIFT + h % (1 << 29),)",
        "pad-shift-1e6 modulus 2^30 -> 2^29",
    ),
    Mutation(D, "PAD_SHIFT = 1_000_000", "PAD_SHIFT = 1_000_001", "pad shift 1e6 -> 1e6+1"),
    Mutation(
        D,
        'WIDE_PAD_TAG = b"sglang-mm-wide-pad-v1"',
        'WIDE_PAD_TAG = b"sglang-mm-wide-pad-v2"',
        "wide4 tag",
    ),
    Mutation(D, "& ((1 << 62) - 1)", "& ((1 << 63) - 1)", "wide4 62-bit slices -> 63-bit"),
    Mutation(D, "return h & M64", "return h & (M64 >> 1)", "mask64 -> 63 bits"),
    Mutation(
        D, 'NS_TAG = b"multimodal-feature-v1"', 'NS_TAG = b"multimodal-feature-v2"', "ns-mix-v1 tag"
    ),
)


def _copy_repo(dest: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".git", ".tox", ".hypothesis", "__pycache__", "*.egg-info", ".pytest_cache"
    )
    for name in ("pytest_mmhash", "tests", "golden"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")


def _apply(root: Path, m: Mutation) -> None:
    path = root / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(
            f"mutation {m.what!r}: {m.old!r} occurs {text.count(m.old)} times in {m.path}, not once"
        )
    path.write_text(text.replace(m.old, m.new))


def _pytest(python: str, root: Path, tests: list[str], env_file: str | None) -> bool:
    """Run the tests in ``root`` (its copy of pytest_mmhash first on the path); True if all passed."""
    args = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    cmd = " ".join(f"'{a}'" for a in args)
    if env_file:
        cmd = f"source '{env_file}' && {cmd}"
    env = {**os.environ, "MMHASH_ORACLE_EXAMPLES": os.environ.get("MMHASH_ORACLE_EXAMPLES", "100")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(root / ".hypothesis")
    proc = subprocess.run(["bash", "-c", cmd], cwd=root, env=env, capture_output=True, text=True)
    return proc.returncode == 0


def _check_copy_is_used(python: str, root: Path) -> None:
    out = subprocess.run(
        [python, "-c", "import pytest_mmhash; print(pytest_mmhash.__file__)"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    ).stdout
    if not out.startswith(str(root)):
        raise SystemExit(
            f"the test runs would import pytest_mmhash from {out.strip()}, not the mutated copy"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter for the CPU tests")
    ap.add_argument("--tests", nargs="*", default=list(DEFAULT_TESTS))
    ap.add_argument(
        "--oracle", help="interpreter of a real-SGLang venv: run tests/test_oracle.py on survivors"
    )
    ap.add_argument("--oracle-env", help="a sglang-env.sh to source before the oracle run")
    ap.add_argument("-k", dest="only", help="run only mutations whose description contains this")
    args = ap.parse_args()
    print("| file | mutation | CPU tests | oracle | verdict | s |\n|---|---|---|---|---|---|")
    survivors = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(x for x in MUTATIONS if not args.only or args.only in x.what):
            root = Path(tmp) / f"m{i}"
            _copy_repo(root)
            _check_copy_is_used(args.python, root)
            _apply(root, m)
            t0 = time.time()
            cpu_ok = _pytest(args.python, root, args.tests, None)
            oracle = "-"
            if cpu_ok and args.oracle:
                oracle = (
                    "passed"
                    if _pytest(args.oracle, root, ["tests/test_oracle.py"], args.oracle_env)
                    else "FAILED"
                )
            killed = not cpu_ok or oracle == "FAILED"
            survivors += not killed
            print(
                f"| {Path(m.path).name} | {m.what} | {'passed' if cpu_ok else 'FAILED'} | {oracle} | "
                f"{'killed' if killed else 'SURVIVED'} | {time.time() - t0:.0f} |",
                flush=True,
            )
            shutil.rmtree(root)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
