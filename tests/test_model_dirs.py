"""``tools/make_model_dirs.py``: the model directories in ``golden/models`` are exactly what it writes,
and every token id a config names is the tokenizer's id for that token."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "make_model_dirs.py"
COMMITTED = ROOT / "golden" / "models"


def _script():
    spec = importlib.util.spec_from_file_location("make_model_dirs", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _script().make_model_dirs(tmp_path_factory.mktemp("models"))


def test_committed_dirs_are_what_the_script_writes(made: dict[str, Path]) -> None:
    for name, out in made.items():
        files = sorted(p.name for p in out.iterdir())
        assert files == sorted(p.name for p in (COMMITTED / name).iterdir()), name
        for f in files:  # JSON as data: tokenizers' own serialisation may differ between versions
            got, committed = ((d / f).read_bytes() for d in (out, COMMITTED / name))
            if f.endswith(".json"):
                got, committed = json.loads(got), json.loads(committed)
            assert got == committed, f"{name}/{f}"


def test_at_least_the_issue_families(made: dict[str, Path]) -> None:
    archs = {json.loads((d / "config.json").read_text())["architectures"][0] for d in made.values()}
    assert {
        "Qwen2VLForConditionalGeneration",
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen3VLForConditionalGeneration",
        "LlavaForConditionalGeneration",
    } <= archs


def _token_ids(config: dict) -> dict[str, int]:
    return {
        k: v
        for k, v in config.items()
        if k.endswith(("token_id", "token_index")) and isinstance(v, int)
    }


@pytest.mark.parametrize(
    "name", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "llava-1.5", "qwen2-audio", "whisper"]
)
def test_config_token_ids_match_the_tokenizer(made: dict[str, Path], name: str) -> None:
    from tokenizers import Tokenizer

    d = made[name]
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    config = json.loads((d / "config.json").read_text())
    ids = _token_ids(config)
    assert ids, "the config names no token ids"
    specials = {tok.id_to_token(i) for i in ids.values()}
    assert None not in specials
    assert all(s.startswith("<") for s in specials), specials  # special tokens, not bytes
    # the placeholder strings SGLang puts in a prompt encode to exactly those ids
    for key, token_id in ids.items():
        text = tok.id_to_token(token_id)
        assert tok.encode(text, add_special_tokens=False).ids == [token_id], key


def test_byte_level_round_trip(made: dict[str, Path]) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(made["qwen2-vl"] / "tokenizer.json"))
    text = "Grüße, 世界 <|vision_start|><|image_pad|><|vision_end|>\n"
    enc = tok.encode(text, add_special_tokens=False)
    assert tok.decode(enc.ids, skip_special_tokens=False) == text
    assert tok.encode("A").ids == [ord("A")]  # id = byte value
