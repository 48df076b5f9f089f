"""What the installed plugin adds to pytest startup (target: < 50 ms), hyperfine-style.

    python benchmarks/bench_import.py [--runs 30]

Runs ``python -m pytest --version`` with the plugin and with ``-p no:mmhash``, alternating, after
warm-up runs, and prints mean, median and min of each and of the difference. Also lists the heavy
modules (torch, numpy, numba) that plain ``import pytest_mmhash.plugin`` pulls in.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PYTEST = [sys.executable, "-m", "pytest", "--version"]
HEAVY = ("torch", "numpy", "numba", "PIL", "safetensors")


def run_once(extra: list[str]) -> float:
    """Seconds of one ``pytest --version`` run."""
    start = time.perf_counter()
    subprocess.run(PYTEST + extra, check=True, capture_output=True)
    return time.perf_counter() - start


def heavy_imports() -> list[str]:
    """Heavy modules loaded by importing the plugin module."""
    code = f"import sys, pytest_mmhash.plugin; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return [m for m in out.stdout.strip().split(",") if m]


def _stats(xs: list[float]) -> str:
    return f"mean {1e3 * statistics.mean(xs):7.1f}  median {1e3 * statistics.median(xs):7.1f}  min {1e3 * min(xs):7.1f} ms"


def main() -> None:
    """Time both variants and print the comparison."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args()
    for _ in range(3):
        run_once([]), run_once(["-p", "no:mmhash"])
    with_plugin, without = [], []
    for _ in range(args.runs):
        with_plugin.append(run_once([]))
        without.append(run_once(["-p", "no:mmhash"]))
    diffs = [a - b for a, b in zip(with_plugin, without, strict=True)]
    print(f"{' '.join(PYTEST)}  ({args.runs} alternating runs)")
    print(f"  with plugin        {_stats(with_plugin)}")
    print(f"  -p no:mmhash       {_stats(without)}")
    print(f"  added by plugin    {_stats(diffs)}")
    print(f"  heavy modules imported by the plugin module: {', '.join(heavy_imports()) or 'none'}")


if __name__ == "__main__":
    main()
