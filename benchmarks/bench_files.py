"""Peak RSS and time of ``mmhash`` hashing a large ``.npy`` file (target: < 200 MB for 1 GiB).

    python benchmarks/bench_files.py [--size-mb 1024] [--dir /tmp] [--keep]

Writes a float32 ``.npy`` of the given size (in 16 MiB steps), runs ``mmhash FILE`` on the CPU path
and with ``--cuda`` (default threads, then ``MMHASH_THREADS=16``, then with numba made unimportable:
the numpy fallback), and reports each run's wall time and ``ru_maxrss`` (``os.wait4``). File-backed
pages of a memory map count in RSS as they are touched, so this checks the streaming as a whole.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEP = 4 << 20  # elements written per step (16 MiB of float32)


def write_npy(path: Path, nbytes: int) -> None:
    """A reproducible random float32 ``.npy`` of ``nbytes`` data bytes, written without a full copy."""
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(nbytes // 4,))
    for i in range(0, out.size, STEP):
        out[i : i + STEP] = rng.random(min(STEP, out.size - i), dtype=np.float32)
    out.flush()
    del out


#: ``mmhash`` in a process where numba cannot be imported (``sys.modules`` holds ``None``).
WITHOUT_NUMBA = (
    "import sys; sys.modules['numba'] = None; from pytest_mmhash.cli import main; sys.exit(main())"
)


def run_mmhash(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds, peak RSS in MB and output of one ``mmhash`` run (``env`` added to ours)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{command} exited {proc.returncode}:\n{out}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out.strip()


def mmhash_script() -> str:
    """The ``mmhash`` script next to this interpreter, else the one on PATH."""
    here = Path(sys.executable).with_name("mmhash")
    return str(here) if here.exists() else shutil.which("mmhash") or "mmhash"


def main() -> None:
    """Write the file, hash it both ways, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=1024, help="data size in MiB (default 1024)")
    p.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the file")
    p.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = p.parse_args()
    path = Path(args.dir) / f"mmhash-bench-{args.size_mb}MiB.npy"
    if not path.exists():
        # Written in a child process: Linux carries a parent's peak RSS into its children's
        # ru_maxrss, so writing the file here would inflate every measurement below.
        ctx = multiprocessing.get_context("spawn")
        writer = ctx.Process(target=write_npy, args=(path, args.size_mb << 20))
        writer.start()
        writer.join()
    mmhash = mmhash_script()
    print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB), {mmhash}, {os.cpu_count()} CPUs")
    print(f"  load average {os.getloadavg()[0]:.1f} at start")
    print(f"  {'run':44} {'seconds':>8} {'peak RSS MB':>12}  output")
    sixteen = {"MMHASH_THREADS": "16"}
    runs = (
        ("mmhash FILE", [mmhash], {}),
        ("mmhash --cuda FILE", [mmhash, "--cuda"], {}),
        ("MMHASH_THREADS=16 mmhash FILE", [mmhash], sixteen),
        ("MMHASH_THREADS=16 mmhash --cuda FILE", [mmhash, "--cuda"], sixteen),
        ("mmhash --cuda FILE, numpy fallback", [sys.executable, "-c", WITHOUT_NUMBA, "--cuda"], {}),
    )
    try:
        for label, command, env in runs:
            seconds, rss, out = run_mmhash([*command, str(path)], env)
            print(f"  {label:44} {seconds:8.2f} {rss:12.1f}  {out.splitlines()[-1][:60]}")
        print(f"  load average {os.getloadavg()[0]:.1f} at end")
    finally:
        if not args.keep:
            path.unlink()


if __name__ == "__main__":
    main()
