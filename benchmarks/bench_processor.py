"""Throughput of ``mmhash predict`` against calling SGLang's processor directly in a loop.

    python benchmarks/bench_processor.py [--model golden/models/qwen2-vl] [--images 24] [--rounds 3]

Run with the python of a venv that has real SGLang's processor path
(``tools/install-sglang-processor.sh``) and scikit-image/matplotlib (their sample photographs).
Both sides start from the same image files, build SGLang's processor once and go over the
images, one request per image, CPU preprocessing:

- direct: what a user would write: SGLang's own calls in a loop (read the file,
  ``process_mm_data_async``, then ``MultimodalInputs.from_processor_output``, which sets each
  item's hash and pads);
- mmhash: one ``mmhash predict --json --preprocess-device cpu --model DIR IMG...`` (run in this
  process, its output discarded): SGLang's processor built once with SGLang's own hashing skipped,
  then this engine's hash and pads of every item's feature, the feature's SHA-256, the JSON
  (tests/test_processor_oracle.py shows the values are SGLang's).

SGLang is imported once before the timings; rounds alternate the order; the figures are images
per second of the best round (the machine is shared) and the ratios of the best and of the median
rounds; the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

from pytest_mmhash.oracle.photos import package_photos
from pytest_mmhash.oracle.shims import apply_processor_shims
from pytest_mmhash.predict import cli as predict_cli

ROOT = Path(__file__).resolve().parent.parent


def direct(model: Path, paths: list[Path], backend: str) -> float:
    """Seconds for SGLang's own calls: build the processor once, loop over the image files."""
    import os

    from sglang.srt import runtime_context
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.managers import tokenizer_manager as tm
    from sglang.srt.managers.io_struct import GenerateReqInput
    from sglang.srt.managers.multimodal_processor import get_mm_processor, import_processors
    from sglang.srt.managers.schedule_batch import MultimodalInputs
    from sglang.srt.multimodal.transport import determine_tensor_transport_mode
    from sglang.srt.server_args import ServerArgs

    os.environ["SGLANG_USE_CPU_ENGINE"] = "1"
    start = time.perf_counter()
    sa = ServerArgs(model_path=str(model), device="cpu", image_processor_backend=backend)
    runtime_context.publish(sa, role="tokenizer")
    mc = ModelConfig.from_server_args(sa)
    import_processors("sglang.srt.multimodal.processors")
    hf = tm.get_processor_wrapper()
    mm = get_mm_processor(mc.hf_config, sa, hf, determine_tensor_transport_mode(), model_config=mc)
    loop = asyncio.new_event_loop()
    token = mm.mm_tokens.image_token
    for path in paths:
        data = path.read_bytes()
        text = f"{token}\nDescribe."
        req = GenerateReqInput(text=text, image_data=[data])
        out = loop.run_until_complete(
            mm.process_mm_data_async(image_data=[data], input_text=text, request_obj=req)
        )
        items = MultimodalInputs.from_processor_output(out).mm_items
        assert items and items[0].hash is not None
    loop.close()
    del os.environ["SGLANG_USE_CPU_ENGINE"]
    return time.perf_counter() - start


def ours(model: Path, paths: list[Path], backend: str) -> float:
    """Seconds for one ``mmhash predict --json`` over all the image files (output discarded)."""
    argv = ["--json", "--preprocess-device", "cpu", "--image-processor-backend", backend]
    argv += ["--model", str(model), *map(str, paths)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = predict_cli.main(argv)
    assert code == 0 and out.getvalue().count("\n") == len(paths)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "golden" / "models" / "qwen2-vl")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()
    apply_processor_shims()
    photos = package_photos()
    paths = [photos[i % len(photos)][2] for i in range(a.images)]
    load = [os.getloadavg()[0]]
    ours(a.model, paths[:1], a.backend)  # warm-up: import SGLang once, outside the timings
    times: dict[str, list[float]] = {"direct": [], "mmhash": []}
    cpu: dict[str, list[float]] = {"direct": [], "mmhash": []}  # CPU seconds, all threads
    for r in range(a.rounds):
        order = [("direct", direct), ("mmhash", ours)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            used = time.process_time()
            times[name].append(fn(a.model, paths, a.backend))
            cpu[name].append(time.process_time() - used)
    load.append(os.getloadavg()[0])
    rate = {k: a.images / min(v) for k, v in times.items()}  # best round: the machine is shared
    median = {k: a.images / statistics.median(v) for k, v in times.items()}
    print(
        f"{a.images} images ({len(photos)} package photographs), model {a.model.name}, "
        f"backend {a.backend}, {a.rounds} rounds, processor built once per round, "
        f"load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after"
    )
    for k, v in times.items():
        rounds = ", ".join(f"{t:.2f}s" for t in v)
        cpus = ", ".join(f"{t:.2f}s" for t in cpu[k])
        print(f"  {k:7} {rate[k]:6.2f} images/s   rounds: {rounds}   CPU time: {cpus}")
    print(
        f"  mmhash/direct throughput: {rate['mmhash'] / rate['direct']:.3f}x best rounds, "
        f"{median['mmhash'] / median['direct']:.3f}x medians; CPU seconds (medians, lower is "
        f"better) mmhash/direct "
        f"{statistics.median(cpu['mmhash']) / statistics.median(cpu['direct']):.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
