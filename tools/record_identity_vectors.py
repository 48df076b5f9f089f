"""Record Qwen3-VL identity vectors from real SGLang's own processor (0.5.20-0.5.23).

    source $VENV/sglang-src/0.5.22/sglang-env.sh   # for a wheel-source release; not for 0.5.23
    PYTHONPATH=$PWD $VENV/bin/python tools/record_identity_vectors.py tests/data/identity_vectors.json

Builds Qwen3-VL and Qwen3-VL-MoE model directories (``tools/make_model_dirs.py``), then runs the
installed SGLang's ``QwenVLImageProcessor`` offline on CPU on real photographs that scikit-image
ships, for several deployments and per-image request options, and records the item hash and pad
values SGLang set (``MultimodalInputs.from_processor_output``) with every input that identifies the
case. Entries of other SGLang versions already in the file are kept. ``tests/test_predict_identity.py``
checks :mod:`pytest_mmhash.predict.identity` against them without SGLang.

0.5.20 puts the fast image processor on ``cuda:N`` even without CUDA (0.5.21+ fall back to CPU), so
its fast-processor deployments run with :data:`CPU_PREPROCESSING_0_5_20`, the server flags that make
it preprocess on CPU (spec §10.2); they are recorded with the vector as ``server_args``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

PHOTOS = ("astronaut.png", "rocket.jpg")
DEPLOYMENTS: tuple[dict[str, Any], ...] = (
    {},
    {"image_processor_backend": "torchvision"},
    {"image_processor_backend": "pil"},
    {"disable_fast_image_processor": True},
    {"mm_process_config": {"image": {"max_pixels": 200000}}},
    {"revision": "0123abc"},
)
OPTIONS: tuple[dict[str, Any], ...] = (
    {},
    {"detail": "low"},
    {"detail": "high", "max_dynamic_patch": 6},
)
#: ``--rl-on-policy-target`` sends 0.5.20's fast image processor to CPU (``_fast_image_processor_device``);
#: deterministic inference, which it turns on, needs an attention backend that allows it.
CPU_PREPROCESSING_0_5_20: dict[str, Any] = {
    "rl_on_policy_target": "fsdp",
    "attention_backend": "triton",
}


def extra_server_args(version: str, deployment: dict[str, Any]) -> dict[str, Any]:
    """Server flags beyond the deployment that this release needs to preprocess on CPU."""
    pil = deployment.get("image_processor_backend") == "pil"
    if version != "0.5.20" or pil or deployment.get("disable_fast_image_processor"):
        return {}
    return CPU_PREPROCESSING_0_5_20


def make_models(root: Path) -> dict[str, Path]:
    """Qwen3-VL from the model-directory script, and its MoE variant (same processor files)."""
    import make_model_dirs

    dirs = make_model_dirs.make_model_dirs(root, ["qwen3-vl"])
    moe = root / "qwen3-vl-moe"
    moe.mkdir()
    for f in dirs["qwen3-vl"].iterdir():
        (moe / f.name).write_bytes(f.read_bytes())
    config = json.loads((moe / "config.json").read_text())
    config.update(architectures=["Qwen3VLMoeForConditionalGeneration"], model_type="qwen3_vl_moe")
    config["text_config"]["model_type"] = "qwen3_vl_moe_text"
    config["vision_config"]["model_type"] = "qwen3_vl_moe"
    (moe / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {**dirs, "qwen3-vl-moe": moe}


def sglang_items(proc: Any, photo: Path, options: dict[str, Any]) -> list[Any]:
    """SGLang's items for a one-image request sent as the chat front end sends it (ImageData)."""
    from sglang.srt.managers.io_struct import GenerateReqInput
    from sglang.srt.utils import ImageData

    image = ImageData(url=str(photo), **options)
    prompt = proc._prompt(1)
    req = GenerateReqInput(text=prompt, image_data=[image])
    out = asyncio.new_event_loop().run_until_complete(
        proc._mm.process_mm_data_async(image_data=[image], input_text=prompt, request_obj=req)
    )
    items = proc._to_items(out)
    for item in items:
        item.set_pad_value()
    return items


def record() -> list[dict[str, Any]]:
    from pytest_mmhash.oracle.shims import apply_shims

    apply_shims()
    import sglang
    import skimage
    import transformers

    from pytest_mmhash.predict import Deployment, sglang_processor

    class AsServed(sglang_processor.SGLangProcessor):
        """SGLang's processor with the server's ``--revision`` and ``extra`` flags set as well."""

        revision: str | None = None
        extra: dict[str, Any] = {}

        def _server_args(self, server_args_cls: Any) -> Any:
            sa = super()._server_args(functools.partial(server_args_cls, **self.extra))
            sa.revision = self.revision
            return sa

    photos = [Path(skimage.__file__).parent / "data" / name for name in PHOTOS]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, path in make_models(Path(tmp)).items():
            for setting in DEPLOYMENTS:
                settings = dict(setting)
                AsServed.revision = settings.pop("revision", None)
                AsServed.extra = extra_server_args(sglang.__version__, settings)
                dep = Deployment(preprocess_device="cpu", **settings)
                proc = AsServed(path, dep)
                fingerprint = proc._mm.processor_fingerprint
                for photo in photos:
                    for options in OPTIONS:
                        (item,) = sglang_items(proc, photo, options)
                        out.append(
                            {
                                **({"server_args": AsServed.extra} if AsServed.extra else {}),
                                "sglang_version": sglang.__version__,
                                "transformers_version": transformers.__version__,
                                "model": model,
                                "files": {
                                    f: json.loads((path / f).read_text())
                                    for f in ("config.json", "preprocessor_config.json")
                                },
                                "deployment": setting,
                                "photo": f"scikit-image skimage/data/{photo.name}",
                                "content_digest": "sha256:"
                                + hashlib.sha256(photo.read_bytes()).hexdigest(),
                                "options": options,
                                "processor_fingerprint": fingerprint,
                                "hash": int(item.hash),
                                "pad_values": [
                                    int(p)
                                    for p in getattr(item, "pad_values", None) or [item.pad_value]
                                ],
                            }
                        )
                proc.close()
    return out


def main() -> int:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    target = Path(sys.argv[1])
    new = record()
    version = new[0]["sglang_version"]
    old = json.loads(target.read_text()) if target.is_file() else []
    kept = [v for v in old if v["sglang_version"] != version]
    target.write_text(json.dumps(kept + new, indent=1, sort_keys=True) + "\n")
    print(f"{len(new)} vectors from sglang {version}; {len(kept)} of other versions kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
