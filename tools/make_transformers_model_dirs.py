"""Write Qwen2-VL / Qwen2.5-VL model directories with transformers' own ``save_pretrained``.

    python tools/make_transformers_model_dirs.py OUT_DIR [NAME ...]

Unlike ``tools/make_model_dirs.py`` (hand-written JSON), every config and processor file here is
written by the installed transformers from its own classes' defaults (``Qwen2VLConfig`` /
``Qwen2_5_VLConfig``, ``Qwen2VLImageProcessor``, ``Qwen2VLVideoProcessor``, the processor class):
values and file layout are the transformers/Qwen authors' choice. This project sets only
``architectures`` (how SGLang picks its processor). The tokenizer is ours (``make_model_dirs``'s tiny
byte-level one, with its chat template: transformers ships none for Qwen), its special tokens put at
the ids the default config names, so no token id in the config is changed. No weights.

Needs transformers with torchvision (the SGLang 0.5.2x processor venv has both).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_dirs import QWEN_SPECIALS, QWEN_TEMPLATE, write_tokenizer  # noqa: E402

# Config attribute (top level, then ``text_config``) -> the special token it names.
CONFIG_TOKENS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
    "bos_token_id": "<|endoftext|>",
    "eos_token_id": "<|im_end|>",
}


def _config_id(config: Any, attr: str) -> int:
    value = getattr(config, attr, None)
    if value is None:
        value = getattr(config.get_text_config(), attr)
    return int(value)


def _placed_specials(config: Any) -> dict[str, int]:
    """Each special token at the id the config names; the others after the largest of those."""
    placed = {token: _config_id(config, attr) for attr, token in CONFIG_TOKENS.items()}
    rest = [s for s in QWEN_SPECIALS if s not in placed]
    top = max(placed.values())
    placed.update({s: top + 1 + i for i, s in enumerate(rest)})
    return placed


def make(out: Path, name: str) -> None:
    """Write the ``name`` directory (``qwen2-vl`` or ``qwen2.5-vl``) into ``out``."""
    import transformers as tf

    config_cls, processor_cls, arch = {
        "qwen2-vl": (tf.Qwen2VLConfig, tf.Qwen2VLProcessor, "Qwen2VLForConditionalGeneration"),
        "qwen2.5-vl": (
            tf.Qwen2_5_VLConfig,
            tf.Qwen2_5_VLProcessor,
            "Qwen2_5_VLForConditionalGeneration",
        ),
    }[name]
    config = config_cls(architectures=[arch])
    with tempfile.TemporaryDirectory() as tmp:
        placed = _placed_specials(config)
        write_tokenizer(
            Path(tmp),
            list(placed),
            QWEN_TEMPLATE,
            placed,
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
        )
        tokenizer = tf.AutoTokenizer.from_pretrained(tmp)
    processor = processor_cls(
        image_processor=tf.Qwen2VLImageProcessor(),
        tokenizer=tokenizer,
        video_processor=tf.Qwen2VLVideoProcessor(),
        chat_template=QWEN_TEMPLATE,
    )
    processor.save_pretrained(out)
    config.save_pretrained(out)


NAMES = ("qwen2-vl", "qwen2.5-vl")


def make_model_dirs(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write one directory per name under ``root``; return name -> directory."""
    made = {}
    for name in names or NAMES:
        if name not in NAMES:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(NAMES)}")
        made[name] = root / name
        made[name].mkdir(parents=True, exist_ok=True)
        make(made[name], name)
    return made


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    from pytest_mmhash.oracle.shims import apply_processor_shims

    apply_processor_shims()  # PyPI torchvision on CPU torch, as for SGLang's own processor
    for name, path in make_model_dirs(Path(sys.argv[1]), sys.argv[2:]).items():
        print(f"{name}: {path}")
