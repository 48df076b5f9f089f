"""Write local model directories without weights for SGLang's multimodal processors.

    python tools/make_model_dirs.py OUT_DIR [NAME ...]

Each directory holds a hand-written ``config.json`` and ``preprocessor_config.json`` (the values of
the public checkpoint where the processor reads them) and a tiny tokenizer built with the
``tokenizers`` package: byte-level BPE with the 256 byte symbols (id = byte value), no merges, the
model's special tokens from id 256 on, and a chat template (also as ``vocab.json``/``merges.txt``
for slow tokenizers). Every token id in ``config.json`` is
looked up in that tokenizer, so they always match. Enough for SGLang's own processor to run
offline (``pytest_mmhash.predict.sglang_processor``); no model can be loaded from them.

Needs only the standard library and ``tokenizers``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' or c['type'] == 'image_url' %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_SPECIALS = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
LLAVA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' or c['type'] == 'image_url' %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if m['role'] != 'user' %}</s>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
QWEN_AUDIO_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
]
# Qwen2-Audio-7B-Instruct's chat template, its audio part: one placeholder span per audio.
QWEN_AUDIO_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% for m in messages %}"
    "<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'audio' or c['type'] == 'audio_url' %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WHISPER_SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|notimestamps|>",
    "<|0.00|>",
]
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def byte_symbols() -> list[str]:
    """GPT-2's byte-to-unicode map, in byte order: the symbol of byte b is at index b."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_tokenizer(
    out: Path,
    specials: list[str],
    template: str,
    placed: dict[str, int] | None = None,
    **tokens: str,
) -> dict[str, int]:
    """Write ``tokenizer.json`` + ``tokenizer_config.json``; return every special token's id.

    Specials in ``placed`` keep the given ids (a config's own token ids); the rest follow id 256.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {s: i for i, s in enumerate(byte_symbols())}
    tok = Tokenizer(models.BPE(vocab={**vocab, **(placed or {})}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    tok.save(str(out / "tokenizer.json"))
    ids = {s: tok.token_to_id(s) for s in specials}
    # The same vocabulary for slow tokenizers (transformers 4.x loads one under use_fast=False).
    _write_json(out / "vocab.json", vocab)
    (out / "merges.txt").write_text("#version: 0.2\n")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 32768,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {
            str(i): {
                "content": s,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for s, i in ids.items()
        },
        **tokens,
    }
    _write_json(out / "tokenizer_config.json", config)
    return ids


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _qwen_text(ids: dict[str, int], vocab: int) -> dict[str, Any]:
    """A small Qwen2-style text config (sizes do not matter: nothing is loaded)."""
    return {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "torch_dtype": "bfloat16",
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
    }


def _qwen_tokens(ids: dict[str, int]) -> dict[str, int]:
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
    }


def _qwen_tokenizer(out: Path) -> dict[str, int]:
    return write_tokenizer(
        out,
        QWEN_SPECIALS,
        QWEN_TEMPLATE,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )


def _qwen2_preprocessor(processor: str) -> dict[str, Any]:
    """Qwen2-VL / Qwen2.5-VL ``preprocessor_config.json`` as published (14 px patches)."""
    return {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": processor,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "rescale_factor": 1 / 255,
        "image_mean": OPENAI_CLIP_MEAN,
        "image_std": OPENAI_CLIP_STD,
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "resample": 3,
    }


def make_qwen2_vl(out: Path) -> None:
    """Qwen2-VL (``Qwen2VLForConditionalGeneration``)."""
    ids = _qwen_tokenizer(out)
    config = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        **_qwen_text(ids, len(ids) + 256),
        **_qwen_tokens(ids),
        "vision_config": {
            "depth": 1,
            "embed_dim": 64,
            "hidden_size": 64,
            "num_heads": 4,
            "in_chans": 3,
            "mlp_ratio": 4,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
    }
    _write_json(out / "config.json", config)
    _write_json(out / "preprocessor_config.json", _qwen2_preprocessor("Qwen2VLProcessor"))


def make_qwen2_5_vl(out: Path) -> None:
    """Qwen2.5-VL (``Qwen2_5_VLForConditionalGeneration``)."""
    ids = _qwen_tokenizer(out)
    config = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        **_qwen_text(ids, len(ids) + 256),
        **_qwen_tokens(ids),
        "vision_config": {
            "depth": 1,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "in_chans": 3,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [0],
            "tokens_per_second": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
    }
    _write_json(out / "config.json", config)
    _write_json(out / "preprocessor_config.json", _qwen2_preprocessor("Qwen2_5_VLProcessor"))


def make_qwen3_vl(out: Path) -> None:
    """Qwen3-VL (``Qwen3VLForConditionalGeneration``; 16 px patches, text config nested)."""
    ids = _qwen_tokenizer(out)
    text = {**_qwen_text(ids, len(ids) + 256), "head_dim": 16, "model_type": "qwen3_vl_text"}
    text["rope_scaling"] = {
        "rope_type": "default",
        "mrope_section": [2, 3, 3],
        "mrope_interleaved": True,
    }
    config = {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "text_config": text,
        **_qwen_tokens(ids),
        "vision_config": {
            "model_type": "qwen3_vl",
            "depth": 1,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "in_channels": 3,
            "out_hidden_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [0],
        },
        "tie_word_embeddings": False,
    }
    pre = {
        "image_processor_type": "Qwen2VLImageProcessorFast",
        "processor_class": "Qwen3VLProcessor",
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "rescale_factor": 1 / 255,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "size": {"longest_edge": 16777216, "shortest_edge": 65536},
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "resample": 3,
    }
    video = {
        **pre,
        "video_processor_type": "Qwen3VLVideoProcessor",
        "size": {"longest_edge": 25165824, "shortest_edge": 4096},
        "fps": 2,
        "min_frames": 4,
        "max_frames": 768,
    }
    del video["image_processor_type"]
    _write_json(out / "config.json", config)
    _write_json(out / "preprocessor_config.json", pre)
    _write_json(out / "video_preprocessor_config.json", video)


def make_llava(out: Path) -> None:
    """LLaVA-1.5 in the Hugging Face layout (``LlavaForConditionalGeneration``, CLIP ViT-L/14-336)."""
    ids = write_tokenizer(
        out,
        LLAVA_SPECIALS,
        LLAVA_TEMPLATE,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "image_token_index": ids["<image>"],
        "pad_token_id": ids["<pad>"],
        "projector_hidden_act": "gelu",
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "image_seq_length": 576,
        "text_config": {
            "model_type": "llama",
            "vocab_size": len(ids) + 256,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "bos_token_id": ids["<s>"],
            "eos_token_id": ids["</s>"],
            "torch_dtype": "float16",
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "image_size": 336,
            "patch_size": 14,
            "projection_dim": 64,
        },
    }
    pre = {
        "image_processor_type": "CLIPImageProcessor",
        "processor_class": "LlavaProcessor",
        "crop_size": {"height": 336, "width": 336},
        "size": {"shortest_edge": 336},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "rescale_factor": 1 / 255,
        "image_mean": OPENAI_CLIP_MEAN,
        "image_std": OPENAI_CLIP_STD,
        "resample": 3,
    }
    processor = {
        "processor_class": "LlavaProcessor",
        "image_token": "<image>",
        "patch_size": 14,
        "vision_feature_select_strategy": "default",
        "num_additional_image_tokens": 1,
    }
    _write_json(out / "config.json", config)
    _write_json(out / "preprocessor_config.json", pre)
    _write_json(out / "processor_config.json", processor)


def make_qwen2_audio(out: Path) -> None:
    """Qwen2-Audio (``Qwen2AudioForConditionalGeneration``): Whisper's 128-bin log-mel features."""
    ids = write_tokenizer(
        out,
        QWEN_AUDIO_SPECIALS,
        QWEN_AUDIO_TEMPLATE,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    config = {
        "architectures": ["Qwen2AudioForConditionalGeneration"],
        "model_type": "qwen2_audio",
        "audio_token_index": ids["<|AUDIO|>"],
        "vocab_size": len(ids) + 256,
        "audio_config": {
            "model_type": "qwen2_audio_encoder",
            "num_mel_bins": 128,
            "d_model": 64,
            "encoder_layers": 1,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 128,
            "max_source_positions": 1500,
        },
        "text_config": {"model_type": "qwen2", **_qwen_text(ids, len(ids) + 256)},
    }
    pre = _whisper_feature_extractor("Qwen2AudioProcessor", 128, attention_mask=True)
    _write_json(out / "config.json", config)
    _write_json(out / "preprocessor_config.json", pre)


def _whisper_feature_extractor(
    processor_class: str, mel_bins: int, *, attention_mask: bool
) -> dict[str, Any]:
    """A ``WhisperFeatureExtractor`` config as the checkpoints ship it (30 s at 16 kHz)."""
    return {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "processor_class": processor_class,
        "chunk_length": 30,
        "feature_size": mel_bins,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": attention_mask,
        "sampling_rate": 16000,
    }


def make_whisper(out: Path) -> None:
    """Whisper (``WhisperForConditionalGeneration``): 80 log-mel bins as whisper-tiny..large-v2."""
    ids = write_tokenizer(
        out,
        WHISPER_SPECIALS,
        "",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    tokenizer_config["tokenizer_class"] = "WhisperTokenizer"
    del tokenizer_config["chat_template"]
    _write_json(out / "tokenizer_config.json", tokenizer_config)
    eot = ids["<|endoftext|>"]
    config = {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": len(ids) + 256,
        "num_mel_bins": 80,
        "d_model": 64,
        "encoder_layers": 1,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "decoder_layers": 1,
        "decoder_attention_heads": 4,
        "decoder_ffn_dim": 128,
        "max_source_positions": 1500,
        "max_target_positions": 448,
        "decoder_start_token_id": ids["<|startoftranscript|>"],
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
    }
    pre = _whisper_feature_extractor("WhisperProcessor", 80, attention_mask=False)
    _write_json(out / "config.json", config)
    _write_json(out / "preprocessor_config.json", pre)


MODELS: dict[str, Callable[[Path], None]] = {
    "qwen2-vl": make_qwen2_vl,
    "qwen2.5-vl": make_qwen2_5_vl,
    "qwen3-vl": make_qwen3_vl,
    "llava-1.5": make_llava,
    "qwen2-audio": make_qwen2_audio,
    "whisper": make_whisper,
}


def make_model_dirs(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write one directory per model name under ``root``; return name -> directory."""
    made = {}
    for name in names or list(MODELS):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        out = root / name
        out.mkdir(parents=True, exist_ok=True)
        MODELS[name](out)
        made[name] = out
    return made


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for name, path in make_model_dirs(Path(sys.argv[1]), sys.argv[2:]).items():
        print(f"{name}: {path}")
