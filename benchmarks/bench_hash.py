"""Hashing speed and peak memory of pytest-mmhash, side by side with raw SHA-256 and real SGLang.

    python benchmarks/bench_hash.py [--size-mb 256] [--repeat 7] [--sglang-python PATH] [--paths cpu,cuda]

Prints one table. Every row times its methods in the same worker process on the same buffer,
interleaved over ``--repeat`` rounds (best round reported, median in brackets). Peak memory is the
``ru_maxrss`` (``os.wait4``) of a fresh worker that builds the feature and hashes it once, minus
that of one that only builds it (both first warm the same code on a tiny input). The CPU-path rows include SGLang's own ``hash_feature``
when ``sglang`` is importable here or in ``--sglang-python`` (default ``$MMHASH_SGLANG_PYTHON``);
the worker then runs in that interpreter. The CUDA-path rows run the default backend (numba), then
the numpy fallback, each against raw SHA-256 in the same rounds. A last table gives the first call
in a fresh process, numba against numpy, which sets ``numba_backend.MIN_BYTES``.

The CPU-path table also gives the ratio of the median rounds by the calling thread's CPU time
(``time.thread_time``): on a shared machine a wall-clock round also counts the time slices other
jobs took, which swings a best-of-few ratio by several percent either way, while the thread's own
CPU time does not (it leaves out helper threads, so it fits the rows hashed in place).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MARK = "@@bench@@"
#: Row-name suffix of the CUDA-path rows timed with numba disabled.
FALLBACK = "(numpy fallback)"
#: (scheme, the release whose CUDA path uses it).
CUDA_SCHEMES = (
    ("gpu-tile-fmix32", "0.5.23"),
    ("gpu-xor-int64", "0.4.10"),
    ("gpu-xor-int32", "0.4.6.post5"),
)

# ---------------------------------------------------------------- worker side


def _time_rounds(
    methods: dict[str, Callable[[], Any]], repeat: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, calling-thread CPU) seconds per call of each method, interleaved round by round
    (order rotated each round)."""
    names = list(methods)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t, c = time.perf_counter(), time.thread_time()
            methods[name]()
            times[name].append((time.perf_counter() - t, time.thread_time() - c))
    return times


def _measure(methods: dict[str, Callable[[], Any]], nbytes: int, repeat: int) -> dict[str, dict]:
    """Throughput (best and median GB/s; median by thread CPU time), and value of every method."""
    values = {n: fn() for n, fn in methods.items()}  # warm-up, and the values compared
    times = _time_rounds(methods, repeat)
    return {
        n: {
            "best": nbytes / min(w for w, _ in times[n]) / 1e9,
            "median": nbytes / statistics.median(w for w, _ in times[n]) / 1e9,
            "cpu_median": nbytes / statistics.median(c for _, c in times[n]) / 1e9,
            "value": values[n],
        }
        for n in methods
    }


def _sglang_hash() -> Callable[[Any], int] | None:
    """Real SGLang's ``hash_feature``, when sglang is importable in this interpreter."""
    if importlib.util.find_spec("sglang") is None:
        return None
    from pytest_mmhash.oracle import driver

    driver.start()  # this benchmark process is one meant for real SGLang
    from sglang.srt.managers.mm_utils import hash_feature

    return hash_feature


def _random_words(nbytes: int) -> Any:
    """A reproducible random int32 tensor of ``nbytes`` bytes, filled in 4 MB steps (no temporaries)."""
    import torch

    g = torch.Generator().manual_seed(0)
    t = torch.empty(nbytes // 4, dtype=torch.int32)
    for i in range(0, t.numel(), 1 << 20):
        part = t[i : i + (1 << 20)]
        part.copy_(torch.randint(-(2**31), 2**31 - 1, part.shape, dtype=torch.int32, generator=g))
    return t


def _cpu_cases(nbytes: int) -> dict[str, tuple[Any, memoryview]]:
    """CPU-path features over one buffer, each with the raw bytes SHA-256 is timed on."""
    import torch

    base = _random_words(nbytes)
    raw = memoryview(base.numpy()).cast("B")
    cols = 4096
    transposed = base[: base.numel() // cols * cols].view(torch.float32).reshape(-1, cols).t()
    return {
        "f32 contiguous": (base.view(torch.float32), raw),
        "bf16 (raw bytes)": (base.view(torch.bfloat16), raw),
        "f32 transposed": (transposed, raw),
    }


def _digest8(raw: memoryview) -> int:
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big")


def _cpu_methods(
    feature: Any, raw: memoryview, sglang: Callable[[Any], int] | None
) -> dict[str, Callable[[], int]]:
    """The CPU-path contenders on one feature."""
    from pytest_mmhash import hash_feature

    methods = {
        "sha256": lambda: _digest8(raw),
        "mmhash": lambda: hash_feature(feature, sglang_version="0.5.23").hash,
    }
    if sglang is not None:
        methods["sglang"] = lambda: sglang(feature)
    return methods


def _cuda_methods(t: Any, raw: memoryview, version: str) -> dict[str, Callable[[], int]]:
    """The CUDA-path contenders on one feature: raw SHA-256 and the emulation of ``version``."""
    from pytest_mmhash import hash_feature

    return {
        "sha256": lambda: _digest8(raw),
        "mmhash": lambda: hash_feature(t, sglang_version=version, device="cuda").hash,
    }


def worker_cpu(nbytes: int, repeat: int) -> dict:
    """CPU path (sha256-raw, sglang 0.5.23): raw hashlib, pytest-mmhash, and SGLang if present."""
    sglang = _sglang_hash()
    rows = {}
    for name, (feature, raw) in _cpu_cases(nbytes).items():
        rows[name] = _measure(_cpu_methods(feature, raw, sglang), nbytes, repeat)
    return {"rows": rows, "sglang": _sglang_version() if sglang else None, "python": sys.executable}


def _sglang_version() -> str:
    import sglang

    return sglang.__version__


def worker_cuda(nbytes: int, repeat: int) -> dict:
    """CUDA-path emulation of every GPU scheme against raw hashlib: the default backend (numba,
    the default install), then the numpy fallback (what a platform without numba gets)."""
    from pytest_mmhash.cuda import numba_backend

    t = _random_words(nbytes)
    raw = memoryview(t.numpy()).cast("B")
    default = "numba" if numba_backend.backend(2**62) else "numpy fallback (numba not importable)"
    rows = {
        scheme: _measure(_cuda_methods(t, raw, version), nbytes, repeat)
        for scheme, version in CUDA_SCHEMES
    }
    saved = numba_backend.backend
    numba_backend.backend = lambda nbytes=0: None
    try:
        for scheme, version in CUDA_SCHEMES:
            methods = _cuda_methods(t, raw, version)
            rows[f"{scheme} {FALLBACK}"] = _measure(methods, nbytes, max(1, repeat // 3))
    finally:
        numba_backend.backend = saved
    return {"rows": rows, "default": default}


def worker_mem(nbytes: int, kind: str, case: str, method: str) -> dict:
    """Warm ``method`` on a tiny feature, build the full one, then hash it unless ``method`` is none."""
    from pytest_mmhash.cuda import numba_backend

    if kind == "cpu":
        sglang = _sglang_hash()
        for small in (_cpu_cases(1 << 16), _cpu_cases(nbytes)):
            feature, raw = small[case]
            fn = _cpu_methods(feature, raw, sglang).get(method)
            if fn is not None:
                fn()
    else:
        if numba_backend.backend() is not None:
            numba_backend.backend().sum_blocks(
                "tile_sum", iter([(0, _random_words(1 << 16).numpy().view("<u4"))]), 1
            )
        for size in (1 << 16, nbytes):
            t = _random_words(size)
            fn = _cuda_methods(t, memoryview(t.numpy()).cast("B"), dict(CUDA_SCHEMES)[case]).get(
                method
            )
            if fn is not None:
                fn()
    return {}


def worker_first(nbytes: int, mode: str) -> dict:
    """Seconds for the first gpu-tile-fmix32 hash in this fresh process, numba or numpy."""
    from pytest_mmhash import hash_feature
    from pytest_mmhash.cuda import numba_backend

    t = _random_words(nbytes)
    if mode == "numpy":
        numba_backend.backend = lambda nbytes=0: None
    else:
        numba_backend.MIN_BYTES = 0
    start = time.perf_counter()
    hash_feature(t, sglang_version="0.5.23", device="cuda")
    return {"seconds": time.perf_counter() - start}


# ---------------------------------------------------------------- driver side


def _spawn(python: str, *args: str) -> tuple[dict, int]:
    """Run this script as a worker in ``python``: its result and its peak RSS in KiB."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [python, __file__, "--worker", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        for line in out.splitlines():
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :]), usage.ru_maxrss
        raise RuntimeError(f"worker {args} failed:\n{err.read()[-3000:]}")


def _run_worker(python: str, *args: str) -> dict:
    """Run this script as a worker in ``python`` and parse its result."""
    return _spawn(python, *args)[0]


def _peak_mb(python: str, nbytes: int, kind: str, case: str, method: str) -> float:
    """MB by which hashing the feature once raises a fresh worker's peak RSS."""
    base = _spawn(python, "mem", str(nbytes), kind, case, "none")[1]
    return (_spawn(python, "mem", str(nbytes), kind, case, method)[1] - base) / 1024


def _sglang_python(arg: str | None) -> str | None:
    """The interpreter to run the CPU worker in: this one if it has sglang, else ``arg``."""
    if importlib.util.find_spec("sglang") is not None:
        return sys.executable
    return arg if arg and Path(arg).exists() else None


def _machine() -> str:
    """One line describing this machine and interpreter."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _add_peaks(res: dict, python: str, nbytes: int, kind: str) -> None:
    """Add each row's peak extra memory (mmhash, and sglang where timed) to a worker's result."""
    for case, row in res["rows"].items():
        for method in ("mmhash", "sglang"):
            if method in row:
                known = not case.endswith(FALLBACK)
                row[method]["peak_mb"] = (
                    _peak_mb(python, nbytes, kind, case, method) if known else None
                )


def _fmt_peak(mb: float | None, nbytes: int) -> str:
    if mb is None:
        return "n/a"
    return f"{mb:7.1f} MB ({(nbytes / 1e6 + mb) / (nbytes / 1e6):.3f}x)"


def _fmt_rate(m: dict) -> str:
    return f"{m['best']:6.2f} ({m['median']:5.2f})"


def _print_cpu(res: dict, nbytes: int) -> None:
    has_sglang = res["sglang"] is not None
    print(
        f"\nCPU path (sha256-raw, as sglang 0.5.23), {nbytes / 1e6:.0f} MB feature, worker {res['python']}"
    )
    print(
        f"  sglang: {'real sglang ' + res['sglang'] if has_sglang else 'skipped (not importable)'}"
    )
    head = f"  {'feature':18} {'sha256 GB/s':>14} {'mmhash GB/s':>14} {'mmhash/sha':>10}"
    head += f" {'cpu-time med':>12}"
    head += f" {'sglang GB/s':>14} {'mmhash/sglang':>13} {'same hash':>9}" if has_sglang else ""
    print(head + f"  {'mmhash peak extra (feature+extra)/feature':>40}")
    for name, r in res["rows"].items():
        line = f"  {name:18} {_fmt_rate(r['sha256']):>14} {_fmt_rate(r['mmhash']):>14}"
        line += f" {r['mmhash']['best'] / r['sha256']['best']:9.3f}x"
        line += f" {r['mmhash']['cpu_median'] / r['sha256']['cpu_median']:11.3f}x"
        if has_sglang:
            line += (
                f" {_fmt_rate(r['sglang']):>14} {r['mmhash']['best'] / r['sglang']['best']:12.3f}x"
            )
            line += f" {str(r['mmhash']['value'] == r['sglang']['value']):>9}"
        print(line + f"  {_fmt_peak(r['mmhash']['peak_mb'], nbytes):>40}")
    if has_sglang:
        print(
            "  sglang peak extra: "
            + ", ".join(
                f"{n}: {_fmt_peak(r['sglang']['peak_mb'], nbytes)}" for n, r in res["rows"].items()
            )
        )


def _print_cuda(res: dict, nbytes: int) -> None:
    print(f"\nCUDA-path emulation on CPU, {nbytes / 1e6:.0f} MB int32 feature")
    print(f"  default backend: {res['default']}; rows '{FALLBACK}': numba disabled")
    print(
        f"  {'scheme':32} {'sha256 GB/s':>14} {'mmhash GB/s':>14} {'mmhash/sha':>10}  {'peak extra':>22}"
    )
    for scheme, r in res["rows"].items():
        print(
            f"  {scheme:32} {_fmt_rate(r['sha256']):>14} {_fmt_rate(r['mmhash']):>14} "
            f"{r['mmhash']['best'] / r['sha256']['best']:9.3f}x  {_fmt_peak(r['mmhash']['peak_mb'], nbytes):>22}"
        )


def _print_first(sizes_mb: list[int]) -> None:
    print("\nFirst gpu-tile-fmix32 hash in a fresh process (numba loaded from its disk cache), ms")
    print(f"  {'MB':>6} {'numpy':>8} {'numba':>8}")
    for mb in sizes_mb:
        nbytes = mb * 10**6 // 4 * 4
        ms = [
            1e3 * _run_worker(sys.executable, "first", str(nbytes), m)["seconds"]
            for m in ("numpy", "numba")
        ]
        print(f"  {mb:>6} {ms[0]:8.1f} {ms[1]:8.1f}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=256, help="feature size in MB (default 256)")
    p.add_argument("--repeat", type=int, default=7, help="timed rounds per method (default 7)")
    p.add_argument(
        "--sglang-python",
        default=os.environ.get("MMHASH_SGLANG_PYTHON"),
        help="an interpreter where sglang is importable (default $MMHASH_SGLANG_PYTHON)",
    )
    p.add_argument(
        "--first-call-mb",
        default="4,32,128,256",
        help="sizes for the fresh-process first-call table ('' to skip)",
    )
    p.add_argument(
        "--paths",
        default="cpu,cuda",
        help="which path tables to run: cpu, cuda or both (default cpu,cuda)",
    )
    args = p.parse_args(argv)
    paths = args.paths.split(",")
    nbytes = args.size_mb * 10**6 // 4 * 4
    print(f"machine: {_machine()}; load average {os.getloadavg()[0]:.2f} at start")
    print("GB/s: best of the rounds (median); ratios use the best rounds of the same run")
    if "cpu" in paths:
        cpu_python = _sglang_python(args.sglang_python) or sys.executable
        cpu = _run_worker(cpu_python, "cpu", str(nbytes), str(args.repeat))
        print(f"load average {os.getloadavg()[0]:.2f} after the CPU-path rounds")
        _add_peaks(cpu, cpu_python, nbytes, "cpu")
        _print_cpu(cpu, nbytes)
    if "cuda" in paths:
        cuda = _run_worker(sys.executable, "cuda", str(nbytes), str(args.repeat))
        _add_peaks(cuda, sys.executable, nbytes, "cuda")
        _print_cuda(cuda, nbytes)
    if args.first_call_mb:
        _print_first([int(x) for x in args.first_call_mb.split(",")])
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


def _worker(argv: list[str]) -> None:
    kind, nbytes = argv[0], int(argv[1])
    if kind == "first":
        res = worker_first(nbytes, argv[2])
    elif kind == "mem":
        res = worker_mem(nbytes, *argv[2:5])
    else:
        res = (worker_cpu if kind == "cpu" else worker_cuda)(nbytes, int(argv[2]))
    print(MARK + json.dumps(res))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2:])
    else:
        main()
