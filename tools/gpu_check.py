"""The checks that need a real CUDA device, in one run with a time budget per step.

Run by ``tools/gpu-check.sh`` (which prepares the environment); on its own:
``python tools/gpu_check.py --out DIR --kernels DIR``. Steps, in order:

1. ``pytest -m gpu --mmhash-require-gpu``: own Triton kernels == CPU emulation == SGLang's kernels.
2. Hypothesis on the GPU: for each CUDA-path scheme, random single tensors hashed by SGLang's own
   kernel (loaded from that release's wheel), by this project on the device (own Triton kernel)
   and by the CPU emulation; all three must agree, or all refuse.
3. Throughput of own kernel vs SGLang's kernel at 16 MiB and 1 GiB (side by side, one run), and
   the CPU emulation's throughput on the same machine.
4. Preprocessing on the GPU vs the CPU: the Qwen2-VL/Qwen2.5-VL fast image processor with
   ``device="cuda"`` vs ``"cpu"`` on the same images (bitwise equality, max abs diff, whether the
   SGLang 0.5.23 item hash differs), and nvJPEG decode vs Pillow for the JPEGs.
5. Real SGLang's processor (the installed release) on the GPU vs the CPU, as a default deployment
   runs it (nvJPEG for JPEGs, the fast processor on CUDA): per model and photograph, whether the
   features are bitwise equal, their max abs diff, SGLang's own item hash on each device, and
   whether ``predict`` with the release's default deployment on this machine equals the GPU value.
6. The processor oracle tests (``tests/test_processor_oracle.py``, ``tests/test_predict_oracle.py``)
   with ``MMHASH_ORACLE_DEVICE=cuda``: ``mmhash predict --preprocess-device cuda`` against real
   SGLang's processor + scheduler, both preprocessing on this GPU.

Results go to ``DIR/gpu-check.json`` and a short ``DIR/summary.txt``. Without a CUDA device every
step is skipped, one line says so, and the exit status is 0.
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
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STEPS = (
    "gpu_tests",
    "hypothesis",
    "throughput",
    "preprocessing",
    "sglang_preprocessing",
    "oracle_on_gpu",
)
# The release whose kernel each CUDA-path scheme is checked against, and where the kernel lives
# inside that release's wheel (only torch and triton are imported by these files).
SCHEME_KERNELS = {
    "gpu-xor-int32": ("0.4.6.post5", "sglang/srt/layers/multimodal.py"),
    "gpu-xor-int64": ("0.4.10", "sglang/srt/layers/multimodal.py"),
    "gpu-tile-fmix32": ("0.5.23", "sglang/kernels/ops/memory/gpu_tensor_hash.py"),
}
MIB = 1 << 20


def cuda_device() -> tuple[str | None, str]:
    """The CUDA device's name (``None`` without one) and, without one, why."""
    try:
        import torch
    except ImportError:
        return None, f"torch is not importable by {sys.executable}"
    if not torch.cuda.is_available():
        return None, "torch.cuda.is_available() is False"
    return torch.cuda.get_device_name(0), ""


def skipped_report(reason: str) -> dict[str, Any]:
    """The report of a run where no step could run."""
    return {
        "device": None,
        "reason": reason,
        "steps": {name: {"status": "skipped", "reason": reason} for name in STEPS},
    }


def load_kernel(kernels: Path, scheme: str) -> ModuleType:
    """SGLang's own kernel module for ``scheme``, loaded by path from the extracted wheel."""
    version, relpath = SCHEME_KERNELS[scheme]
    path = kernels / version / relpath
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SGLang {version}'s kernel source is missing")
    spec = importlib.util.spec_from_file_location(f"sglang_kernel_{scheme.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_sources(kernels: Path) -> dict[str, str | None]:
    """SHA-256 of each SGLang kernel source that was checked (``None`` where it is missing)."""
    out: dict[str, str | None] = {}
    for scheme, (version, relpath) in SCHEME_KERNELS.items():
        path = kernels / version / relpath
        out[scheme] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return out


def outcome(fn: Callable[[], int]) -> int | str:
    """``fn()``, or the name of the exception it raised (a refusal is an outcome too)."""
    try:
        return fn()
    except Exception as exc:  # SGLang's kernels raise whatever torch raises
        return f"raised {type(exc).__name__}"


def agree(sglang: int | str, own_gpu: int | str, emulation: int | str) -> bool:
    """All three hashed to one value, or all three refused the input."""
    values = (sglang, own_gpu, emulation)
    if all(isinstance(v, int) for v in values):
        return len(set(values)) == 1
    return all(isinstance(v, str) for v in values)


# ------------------------------------------------------------------------------------- steps


def step_gpu_tests(out: Path) -> dict[str, Any]:
    """Step 1: the suite's ``gpu``-marked tests, with CUDA required."""
    return run_pytest(out, "gpu-tests", ["-m", "gpu", "--mmhash-require-gpu", str(REPO / "tests")])


def step_oracle_on_gpu(out: Path) -> dict[str, Any]:
    """Step 6: the processor oracle tests with every processor preprocessing on this GPU."""
    if importlib.util.find_spec("sglang") is None:
        return {"status": "skipped", "reason": "sglang is not importable"}
    tests = [
        str(REPO / "tests" / t) for t in ("test_processor_oracle.py", "test_predict_oracle.py")
    ]
    return run_pytest(out, "oracle-on-gpu", tests, {"MMHASH_ORACLE_DEVICE": "cuda"})


def run_pytest(
    out: Path, name: str, args: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """pytest in a child process, its log and JUnit report in ``out``; passed only when it exits 0
    having run at least one test (a run that skipped everything proves nothing)."""
    junit = out / f"{name}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    proc = subprocess.run(
        [*cmd, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    counts = junit_counts(junit)
    ran = counts.get("tests", 0) - counts.get("skipped", 0)
    ok = proc.returncode == 0 and ran > 0
    return {"status": "passed" if ok else "failed", "exit": proc.returncode, **counts}


def junit_counts(path: Path) -> dict[str, int]:
    """Test, failure, error and skip counts from a JUnit XML report."""
    import xml.etree.ElementTree as ET

    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def step_hypothesis(kernels: Path, examples: int) -> dict[str, Any]:
    """Step 2: SGLang's kernel == own kernel on the GPU == CPU emulation, per scheme."""
    results: dict[str, Any] = {}
    for scheme, (version, _) in SCHEME_KERNELS.items():
        sglang_hash = load_kernel(kernels, scheme).gpu_tensor_hash
        broken = kernel_error(sglang_hash)
        results[scheme] = (
            {"release": version, "not_run": broken}
            if broken
            else check_scheme(sglang_hash, version, examples)
        )
    ran = [r for r in results.values() if "not_run" not in r]
    ok = bool(ran) and all(r["mismatch_count"] == 0 and r["examples"] >= examples for r in ran)
    return {"status": "passed" if ok else "failed", "schemes": results}


def kernel_error(sglang_hash: Callable[[Any], int]) -> str | None:
    """Why SGLang's kernel cannot run with this machine's Triton at all (``None`` when it runs).

    The 0.4.x kernels pass 64-bit constants that newer Tritons reject; such a scheme is reported
    as not run here rather than as a mismatch.
    """
    import torch

    try:
        sglang_hash(torch.arange(1024, dtype=torch.int32).cuda())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return None


def check_scheme(sglang_hash: Callable[[Any], int], version: str, examples: int) -> dict[str, Any]:
    """Random single tensors (every dtype, up to 3 tiles, some transposed) through the three hashers."""
    import torch
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pytest_mmhash import hash_feature

    dtypes = [torch.uint8, torch.int16, torch.int32, torch.int64, torch.float16]
    dtypes += [torch.bfloat16, torch.float32, torch.float64]
    seen: list[dict[str, Any]] = []

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        dtype=st.sampled_from(dtypes),
        numel=st.integers(0, 3 * 8192 + 9),
        transpose=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
    )
    def check(dtype: Any, numel: int, transpose: bool, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        raw = torch.randint(0, 256, (numel * dtype.itemsize,), dtype=torch.uint8, generator=gen)
        cpu = raw.view(dtype)
        if transpose and numel % 2 == 0 and numel:
            cpu = cpu.reshape(2, -1).t()  # a non-contiguous view, as SGLang may receive
        gpu = cpu.cuda()
        got = {
            "sglang": outcome(lambda: int(sglang_hash(gpu))),
            "own_gpu": outcome(lambda: hash_feature(gpu, sglang_version=version).hash),
            "emulation": outcome(
                lambda: hash_feature(cpu, sglang_version=version, device="cuda").hash
            ),
        }
        case = {"dtype": str(dtype), "numel": numel, "transpose": transpose, "seed": seed}
        seen.append({**case, **got, "agree": agree(*got.values())})

    check()
    bad = [case for case in seen if not case["agree"]]
    return {
        "release": version,
        "examples": len(seen),
        "mismatch_count": len(bad),
        "mismatches": bad[:5],
    }


def gpu_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall seconds of ``fn`` on the GPU (synchronised, after one warm-up call)."""
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_throughput(kernels: Path, sizes_mib: tuple[int, ...]) -> dict[str, Any]:
    """Step 3: GB/s of own kernel vs SGLang's kernel (same tensor, one run), and the emulation."""
    import torch

    rows = []
    for scheme, (version, _) in SCHEME_KERNELS.items():
        sglang_hash = load_kernel(kernels, scheme).gpu_tensor_hash
        if kernel_error(sglang_hash):
            continue  # step 2 reports why
        for mib in sizes_mib:
            rows.append(measure(sglang_hash, scheme, version, mib))
            torch.cuda.empty_cache()  # the 1 GiB tensors of one row are gone before the next
    return {"status": "measured", "rows": rows, "cpu_count": os.cpu_count()}


def measure(
    sglang_hash: Callable[[Any], int], scheme: str, version: str, mib: int
) -> dict[str, Any]:
    """One row of step 3: the same random ``mib`` MiB int32 tensor through each hasher."""
    import torch

    from pytest_mmhash import hash_feature

    gpu = torch.randint(0, 2**31 - 1, (mib * MIB // 4,), dtype=torch.int32, device="cuda")
    repeats = 20 if mib <= 64 else 5
    t_sglang = gpu_seconds(lambda: sglang_hash(gpu), repeats)
    t_own = gpu_seconds(lambda: hash_feature(gpu, sglang_version=version), repeats)
    cpu = gpu.cpu()
    start = time.perf_counter()
    hash_feature(cpu, sglang_version=version, device="cuda")
    t_emulation = time.perf_counter() - start
    gb = mib * MIB / 1e9
    return {
        "scheme": scheme,
        "release": version,
        "mib": mib,
        "sglang_gbps": gb / t_sglang,
        "own_gbps": gb / t_own,
        "own_vs_sglang": t_sglang / t_own,
        "emulation_cpu_gbps": gb / t_emulation,
    }


def test_images() -> list[Path]:
    """Photographs shipped by installed packages, plus the repo's golden PNG."""
    found = [REPO / "golden" / "features" / "grace_hopper_crop_64x48.png"]
    for package, names in (
        (
            "skimage",
            ("data/chelsea.png", "data/coffee.png", "data/astronaut.png", "data/rocket.jpg"),
        ),
        ("matplotlib", ("mpl-data/sample_data/grace_hopper.jpg",)),
    ):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        root = Path(spec.origin).parent
        found += [root / n for n in names if (root / n).is_file()]
    return [p for p in found if p.is_file()]


def step_preprocessing() -> dict[str, Any]:
    """Step 4: fast image processor on cuda vs cpu, and nvJPEG vs Pillow decode."""
    import numpy as np
    from PIL import Image

    from pytest_mmhash import hash_feature

    try:
        processor_cls = torchvision_qwen2_vl_processor()
    except ImportError as exc:
        return {"status": "skipped", "reason": f"transformers fast Qwen2-VL processor: {exc}"}
    proc = processor_cls()  # Qwen2.5-VL uses Qwen2-VL's image processor
    rows = []
    for path in test_images():
        img = Image.open(path).convert("RGB")
        on = {
            dev: proc(images=[img], return_tensors="pt", device=dev)["pixel_values"].cpu()
            for dev in ("cpu", "cuda")
        }
        hashes = {dev: hash_feature(pv, sglang_version="0.5.23").hash for dev, pv in on.items()}
        row: dict[str, Any] = {
            "image": path.name,
            "shape": list(on["cpu"].shape),
            **tensor_diff(on["cpu"], on["cuda"]),
            "hash_cpu": hashes["cpu"],
            "hash_cuda": hashes["cuda"],
            "hash_differs": hashes["cpu"] != hashes["cuda"],
        }
        if path.suffix.lower() in (".jpg", ".jpeg"):
            row["nvjpeg"] = nvjpeg_vs_pillow(path, np.asarray(img))
        rows.append(row)
    return {"status": "measured", "processor": processor_cls.__name__, "rows": rows}


def torchvision_qwen2_vl_processor() -> Any:
    """transformers' torchvision-backed Qwen2-VL image processor: ``Qwen2VLImageProcessorFast``
    in 4.x, ``Qwen2VLImageProcessor`` in 5.x (where ``...Pil`` is the Pillow one)."""
    import transformers

    if hasattr(transformers, "Qwen2VLImageProcessorFast"):
        return transformers.Qwen2VLImageProcessorFast
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor


def nvjpeg_vs_pillow(path: Path, pillow_rgb: Any) -> dict[str, Any]:
    """nvJPEG (torchvision, on the GPU) decode of ``path`` against Pillow's RGB decode."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    gpu = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB, device="cuda")
    return tensor_diff(gpu.permute(1, 2, 0).cpu(), torch.from_numpy(pillow_rgb.copy()))


def tensor_diff(a: Any, b: Any) -> dict[str, Any]:
    """How two tensors differ: bitwise equality, the fraction of elements that differ and the
    largest absolute difference (``None`` for both when the shapes differ)."""
    import torch

    if a.shape != b.shape:
        return {"bitwise_equal": False, "elements_differing": None, "max_abs_diff": None}
    diff = (a.double() - b.double()).abs()
    return {
        "bitwise_equal": bool(torch.equal(a, b)),
        "elements_differing": float((diff > 0).double().mean()),
        "max_abs_diff": float(diff.max()),
    }


def step_sglang_preprocessing() -> dict[str, Any]:
    """Step 5: the installed SGLang's own processor on cuda vs cpu, as a default deployment runs
    it, per Qwen model and photograph; and ``predict``'s default deployment on this machine."""
    if importlib.util.find_spec("sglang") is None:
        return {"status": "skipped", "reason": "sglang is not importable"}
    import torch

    from pytest_mmhash.oracle.photos import FRESH, package_photos
    from pytest_mmhash.oracle.shims import apply_processor_shims
    from pytest_mmhash.predict import Request, predict_requests
    from pytest_mmhash.predict.sglang_processor import SGLangProcessor
    from pytest_mmhash.predict.types import Deployment, Media

    apply_processor_shims()
    photos = [path for _, _, path in package_photos() + package_photos(FRESH)]
    rows = []
    for model in ("qwen2-vl", "qwen2.5-vl"):
        model_dir = REPO / "golden" / "models" / model
        on = {
            dev: SGLangProcessor(model_dir, Deployment(preprocess_device=dev))
            for dev in ("cpu", "cuda")
        }
        media = [Media(photo.name, photo.read_bytes(), "image") for photo in photos]
        # predict with the release's default deployment, its processor built once for all photos
        defaults = predict_requests(
            [Request((m,)) for m in media],
            model=model_dir,
            sglang_version=on["cuda"].sglang_version,
        )
        for photo, m, (default,) in zip(photos, media, defaults, strict=True):
            cpu, cuda = (on[dev].process([m])[0] for dev in ("cpu", "cuda"))
            a, b = (torch.as_tensor(it.feature).cpu() for it in (cpu, cuda))
            rows.append(
                {
                    "model": model,
                    "image": photo.name,
                    "shape": list(a.shape),
                    "dtype": str(a.dtype),
                    **tensor_diff(a, b),
                    "sglang_hash_cpu": cpu.sglang_hash,
                    "sglang_hash_cuda": cuda.sglang_hash,
                    "hash_differs": cpu.sglang_hash != cuda.sglang_hash,
                    "predict_default_hash": default.hash,
                    "predict_default_exact": default.exact,
                    "predict_default_equals_sglang_cuda": default.hash == cuda.sglang_hash,
                }
            )
        for proc in on.values():
            proc.close()
    ok = all(r["predict_default_equals_sglang_cuda"] and r["predict_default_exact"] for r in rows)
    return {
        "status": "measured" if ok and rows else "failed",
        "sglang": on["cuda"].sglang_version if rows else None,
        "rows": rows,
    }


# ------------------------------------------------------------------------------------ driver


def run_step(name: str, fn: Callable[[], dict[str, Any]], budget_s: float) -> dict[str, Any]:
    """One step with its wall time and budget; a crash is recorded, never fatal to the run."""
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["budget_s"] = budget_s
    over = " (over budget)" if result["seconds"] > budget_s else ""
    print(f"gpu-check: {name}: {result['status']} in {result['seconds']} s{over}", flush=True)
    return result


def diff_text(r: dict[str, Any]) -> str:
    """A :func:`tensor_diff` row's difference in words."""
    return "shape differs" if r["max_abs_diff"] is None else f"max abs diff {r['max_abs_diff']:.4g}"


def pytest_line(label: str, t: dict[str, Any]) -> str:
    """One summary line for a pytest step's counts."""
    return (
        f"{label}: {t['status']} ({t['tests']} tests, {t.get('failures', 0)} failed,"
        f" {t.get('errors', 0)} errors, {t.get('skipped', 0)} skipped)"
    )


def summary(report: dict[str, Any]) -> str:
    """A few readable lines of the report."""
    if report["device"] is None:
        return f"gpu-check: no CUDA device ({report['reason']}); every step skipped\n"
    s = report["steps"]
    lines = [
        f"gpu-check on {report['device']} (torch {report.get('torch')}, triton {report.get('triton')})"
    ]
    if "tests" in s["gpu_tests"]:
        lines.append(pytest_line("gpu tests", s["gpu_tests"]))
    for scheme, r in s["hypothesis"].get("schemes", {}).items():
        if "not_run" in r:
            lines.append(
                f"hypothesis {scheme}: SGLang {r['release']}'s kernel does not run here:"
                f" {r['not_run']}"
            )
            continue
        lines.append(
            f"hypothesis {scheme} vs SGLang {r['release']}: {r['examples']} examples,"
            f" {r['mismatch_count']} mismatches"
        )
    for r in s["throughput"].get("rows", []):
        lines.append(
            f"throughput {r['scheme']} {r['mib']} MiB: own {r['own_gbps']:.1f} GB/s,"
            f" SGLang {r['sglang_gbps']:.1f} GB/s (own/SGLang {r['own_vs_sglang']:.2f}x),"
            f" CPU emulation {r['emulation_cpu_gbps']:.2f} GB/s"
        )
    for r in s["preprocessing"].get("rows", []):
        nv = r.get("nvjpeg")
        nv_text = (
            ""
            if nv is None
            else (f"; nvJPEG vs Pillow equal={nv['bitwise_equal']} max diff {nv['max_abs_diff']}")
        )
        lines.append(
            f"preprocess {r['image']}: cuda==cpu {r['bitwise_equal']}, {diff_text(r)}, hash"
            f" differs {r['hash_differs']}{nv_text}"
        )
    for r in s["sglang_preprocessing"].get("rows", []):
        lines.append(
            f"sglang {s['sglang_preprocessing'].get('sglang')} {r['model']} {r['image']}:"
            f" cuda==cpu {r['bitwise_equal']}, {diff_text(r)}, hash differs {r['hash_differs']};"
            f" predict (default deployment) == SGLang on cuda"
            f" {r['predict_default_equals_sglang_cuda']}, exact {r['predict_default_exact']}"
        )
    if "tests" in s["oracle_on_gpu"]:
        lines.append(pytest_line("oracle on gpu", s["oracle_on_gpu"]))
    for name in STEPS:
        if s[name]["status"] in ("error", "skipped", "not run"):
            lines.append(
                f"{name}: {s[name]['status']}: {s[name].get('error') or s[name].get('reason')}"
            )
    return "\n".join(lines) + "\n"


#: Each step's time budget in seconds (printed with its wall time; the whole run is capped by
#: tools/gpu-check.sh at 470 s).
BUDGETS = {
    "gpu_tests": 90,
    "hypothesis": 120,
    "throughput": 60,
    "preprocessing": 30,
    "sglang_preprocessing": 60,
    "oracle_on_gpu": 100,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen steps (or skip all without CUDA); write the JSON report and the summary
    after each step, so a run stopped at its time limit still leaves what it measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check-out"), help="report folder")
    parser.add_argument(
        "--kernels",
        type=Path,
        default=REPO / ".gpu-check" / "src",
        help="folder with each release's extracted sglang/ sources",
    )
    parser.add_argument("--examples", type=int, default=200, help="Hypothesis examples per scheme")
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[16, 1024])
    parser.add_argument(
        "--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to run, in order"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    device, why_not = cuda_device()
    if device is None:
        report = skipped_report(why_not)
        write_report(args.out, report)
        print(summary(report), end="")
        return 0
    import torch
    import triton

    report = {
        "device": device,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "kernel_sources": kernel_sources(args.kernels),
        "steps": {name: {"status": "not run", "reason": "not chosen"} for name in STEPS},
    }
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "gpu_tests": lambda: step_gpu_tests(args.out),
        "hypothesis": lambda: step_hypothesis(args.kernels, args.examples),
        "throughput": lambda: step_throughput(args.kernels, tuple(args.sizes_mib)),
        "preprocessing": step_preprocessing,
        "sglang_preprocessing": step_sglang_preprocessing,
        "oracle_on_gpu": lambda: step_oracle_on_gpu(args.out),
    }
    for name in args.steps:
        report["steps"][name] = run_step(name, runs[name], BUDGETS[name])
        write_report(args.out, report)
    print(summary(report), end="")
    failed = [n for n, s in report["steps"].items() if s["status"] in ("failed", "error")]
    return 1 if failed else 0


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``gpu-check.json`` and ``summary.txt`` as they stand."""
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "summary.txt").write_text(summary(report))


if __name__ == "__main__":
    sys.exit(main())
