"""Start-up cost: the ``mmhash`` command on small files, and the numba kernels' JIT, cold and warm.

    python benchmarks/bench_startup.py [--runs 5]

Table 1 times ``mmhash FILE`` in a fresh process (median and best of ``--runs``) on a small
``.npy`` and a small ``.pt``, beside bare ``python`` start-up and ``import numpy`` / ``import torch``
(what any tool that reads these files pays), and says whether the run imported torch
(``python -X importtime``). Table 2 is the first CUDA-path hash of each scheme in a fresh process
with the compiled backend forced on: with an empty ``NUMBA_CACHE_DIR`` (cold: numba compiles the
kernels and writes its disk cache, once per machine) and again with that cache (warm), beside the
numpy reference backend.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_files import mmhash_script
from bench_hash import CUDA_SCHEMES, MARK


def worker_jit(mode: str) -> dict:
    """Seconds of the first hash of each CUDA-path scheme on a 64 KiB array in this process."""
    import numpy as np

    from pytest_mmhash import hash_feature
    from pytest_mmhash.cuda import numba_backend

    if mode == "numpy":
        numba_backend.backend = lambda nbytes=0: None
    else:
        numba_backend.MIN_BYTES = 0
    a = np.arange(1 << 14, dtype=np.int32)
    seconds = {}
    for scheme, version in CUDA_SCHEMES:
        start = time.perf_counter()
        hash_feature(a, sglang_version=version, device="cuda")
        seconds[scheme] = time.perf_counter() - start
    loaded = "numba" in sys.modules and numba_backend.backend() is not None
    return {"seconds": seconds, "numba": loaded}


def _run_worker(env: dict[str, str], *args: str) -> dict:
    """This script as a worker in a fresh interpreter; its parsed result."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")


def _wall(argv: list[str], runs: int) -> tuple[float, float]:
    """Median and best wall seconds of ``argv`` over ``runs`` fresh processes (must succeed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _imports_torch(argv: list[str]) -> bool:
    """Whether running ``mmhash argv`` imports torch (``python -X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest_mmhash.cli", *argv],
        check=True,
        capture_output=True,
        text=True,
    )
    return any(line.rsplit("|", 1)[-1].strip() == "torch" for line in proc.stderr.splitlines())


def _small_files(folder: Path) -> dict[str, Path]:
    """A 1 MiB float32 ``.npy`` and the same tensor as a ``.pt``."""
    import numpy as np
    import torch

    a = np.random.default_rng(0).random(1 << 18, dtype=np.float32)
    np.save(folder / "small.npy", a)
    torch.save(torch.from_numpy(a), folder / "small.pt")
    return {"npy": folder / "small.npy", "pt": folder / "small.pt"}


def print_cli(runs: int) -> None:
    """Table 1: fresh-process wall times of ``mmhash`` on small files and of the baselines."""
    mmhash = mmhash_script()
    with tempfile.TemporaryDirectory() as d:
        files = _small_files(Path(d))
        version = ["--sglang-version", "0.5.23"]
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            ("python -c 'import numpy'", [sys.executable, "-c", "import numpy"], None),
            ("python -c 'import torch'", [sys.executable, "-c", "import torch"], None),
            ("mmhash small.npy", [mmhash, *version, str(files["npy"])], [str(files["npy"])]),
            (
                "mmhash --cuda small.npy",
                [mmhash, *version, "--cuda", str(files["npy"])],
                ["--cuda", str(files["npy"])],
            ),
            ("mmhash small.pt", [mmhash, *version, str(files["pt"])], [str(files["pt"])]),
        ]
        print(f"\n`mmhash` start-up on a 1 MiB file, fresh process, {runs} runs, ms")
        print(f"  {'command':28} {'median':>8} {'best':>8}  imports torch")
        for label, argv, torch_argv in rows:
            median, best = _wall(argv, runs)
            torch = "" if torch_argv is None else str(_imports_torch([*version, *torch_argv]))
            print(f"  {label:28} {1e3 * median:8.0f} {1e3 * best:8.0f}  {torch}")


def print_jit() -> None:
    """Table 2: first hash per scheme with a cold numba cache, a warm one, and numpy."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = _run_worker(env, "numba")
        warm = _run_worker(env, "numba")
    numpy = _run_worker(dict(os.environ), "numpy")
    print("\nFirst CUDA-path hash per scheme in a fresh process (64 KiB array), ms")
    print("  (the first row also imports numba; cold = empty NUMBA_CACHE_DIR, warm = same cache)")
    print(f"  {'scheme':16} {'numba cold':>10} {'numba warm':>10} {'numpy':>8}")
    for scheme, _ in CUDA_SCHEMES:
        ms = [1e3 * r["seconds"][scheme] for r in (cold, warm, numpy)]
        print(f"  {scheme:16} {ms[0]:10.0f} {ms[1]:10.0f} {ms[2]:8.0f}")
    total = [1e3 * sum(r["seconds"].values()) for r in (cold, warm, numpy)]
    print(f"  {'all three':16} {total[0]:10.0f} {total[1]:10.0f} {total[2]:8.0f}")
    if not (cold["numba"] and warm["numba"]):
        print("  (numba is not importable here: the numba columns ran the numpy fallback)")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and print both tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="fresh processes per command (default 5)")
    args = p.parse_args(argv)
    print(f"python {sys.executable}; load average {os.getloadavg()[0]:.1f} at start")
    print_cli(args.runs)
    print_jit()
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(MARK + json.dumps(worker_jit(sys.argv[2])))
    else:
        main()
