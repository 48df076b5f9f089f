"""Throughput of the ``sglang-processor`` method against calling SGLang's processor directly.

    python benchmarks/bench_processor.py [--model golden/models/qwen2-vl] [--images 24] [--rounds 3]

Run with the python of a venv that has real SGLang's processor path (``tools/install-sglang.sh``)
and scikit-image/matplotlib (their sample photographs). Both sides build SGLang's processor once and
then go over the same images, one request per image:

- direct: what a user would write: SGLang's own calls in a loop (``process_mm_data_async``, then
  ``MultimodalInputs.from_processor_output``, which sets each item's hash and pads);
- mmhash: :func:`pytest_mmhash.predict.sglang_processor.run_processor` over all requests (SGLang's
  own hashing skipped), then this engine's hash and pads of every item's feature (what the
  ``sglang-processor`` method does; tests/test_processor_oracle.py shows the values are SGLang's).

SGLang is imported once before the timings; rounds alternate the order; the figure is images per
second of the best round (the machine is shared) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from pytest_mmhash import hash_feature
from pytest_mmhash.oracle.photos import package_photos
from pytest_mmhash.oracle.shims import apply_processor_shims
from pytest_mmhash.predict.sglang_processor import run_processor
from pytest_mmhash.predict.types import Deployment, Media

ROOT = Path(__file__).resolve().parent.parent


def direct(model: Path, images: list[bytes], backend: str) -> float:
    """Seconds for SGLang's own calls: build the processor once, loop over the images."""
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
    for data in images:
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


def ours(model: Path, images: list[bytes], backend: str) -> float:
    """Seconds for run_processor over all requests plus this engine's hash of every item."""
    start = time.perf_counter()
    dep = Deployment(image_processor_backend=backend, preprocess_device="cpu")
    requests = [[Media(f"image{i}", data, "image")] for i, data in enumerate(images)]
    for items in run_processor(requests, model=model, deployment=dep):
        for it in items:
            hash_feature(it.feature, sglang_version="0.5.23", device="cpu")
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
    images = [photos[i % len(photos)][2].read_bytes() for i in range(a.images)]
    ours(a.model, images[:1], a.backend)  # warm-up: import SGLang once, outside the timings
    times: dict[str, list[float]] = {"direct": [], "mmhash": []}
    for r in range(a.rounds):
        order = [("direct", direct), ("mmhash", ours)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            times[name].append(fn(a.model, images, a.backend))
    rate = {k: a.images / min(v) for k, v in times.items()}  # best round: the machine is shared
    print(
        f"{a.images} images ({len(photos)} package photographs), model {a.model.name}, "
        f"backend {a.backend}, {a.rounds} rounds, processor built once per round"
    )
    for k, v in times.items():
        print(f"  {k:7} {rate[k]:6.2f} images/s   rounds: {', '.join(f'{t:.2f}s' for t in v)}")
    print(f"  mmhash/direct throughput: {rate['mmhash'] / rate['direct']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
