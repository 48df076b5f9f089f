"""``mmhash predict`` on audio against real SGLang 0.5.23's own processor + scheduler (``oracle``).

Qwen2-Audio and Whisper (``golden/models``, hand-written by ``tools/make_model_dirs.py``) on real
recordings that installable packages ship (``pytest_mmhash.oracle.recordings``): 16 kHz speech, an
11025 Hz 8-bit WAV that SGLang resamples, Ogg Vorbis and MP3. SGLang decodes audio with torchcodec
where it imports, else with soundfile + torchaudio; this venv has SGLang's fallback
(``tools/install-sglang-processor.sh 0.5.23``), so every prediction must equal what SGLang's
processor and scheduler assign here, and be exact only for a server that decodes the same way
(``--audio-decoder soundfile``). Per file, ``--together``, the OpenAI chat and ``/generate`` request
forms (data URL and ``file://``), and an unreadable file (one line, exit 2); Whisper takes one
audio per request (SGLang refuses two: one line, exit 2).
"""

from __future__ import annotations

import base64
import json
from importlib.util import find_spec
from pathlib import Path

import pytest

if find_spec("sglang") is None or find_spec("soundfile") is None:
    pytest.skip(
        "needs real sglang with its audio path (tools/install-sglang-processor.sh 0.5.23)",
        allow_module_level=True,
    )

from pytest_mmhash.cli import main  # noqa: E402
from pytest_mmhash.oracle.recordings import FRESH, SOURCES, package_recordings  # noqa: E402
from pytest_mmhash.oracle.shims import apply_processor_shims, importable_sglang_version  # noqa: E402
from pytest_mmhash.predict.sglang_processor import SGLangProcessor  # noqa: E402
from pytest_mmhash.predict.types import Deployment, Media  # noqa: E402

pytestmark = pytest.mark.oracle

MODELS = Path(__file__).resolve().parent.parent / "golden" / "models"
MODEL = MODELS / "qwen2-audio"
VERSION = importable_sglang_version() or ""
if not VERSION.startswith("0.5.2"):
    pytest.skip(f"audio is checked on sglang 0.5.2x; installed: {VERSION}", allow_module_level=True)
RECORDINGS = [path for _, _, path in package_recordings((*SOURCES, *FRESH))]
if len(RECORDINGS) < 4:
    pytest.skip("needs pyannote-audio and pygame (their recordings)", allow_module_level=True)


@pytest.fixture(scope="module")
def processors() -> dict[Path, SGLangProcessor]:
    """Real SGLang's processors with their own hashing, one per model directory."""
    apply_processor_shims()
    made: dict[Path, SGLangProcessor] = {}
    yield made
    for p in made.values():
        p.close()


@pytest.fixture
def sglang(processors: dict[Path, SGLangProcessor]) -> SGLangProcessor:
    """Real SGLang's Qwen2-Audio processor."""
    return _processor(processors, MODEL)


def _processor(processors: dict[Path, SGLangProcessor], model: Path) -> SGLangProcessor:
    if model not in processors:
        dep = Deployment(preprocess_device="cpu")
        processors[model] = SGLangProcessor(model, dep, sglang_hash=True)
    return processors[model]


def _sglang_values(sglang: SGLangProcessor, files: list[Path]) -> list[tuple]:
    items = sglang.process([Media(str(f), f.read_bytes(), "audio") for f in files])
    assert [it.audio_decoder for it in items] == ["soundfile"] * len(items)
    return [(it.sglang_hash, list(it.sglang_pad_values)) for it in items]


def _predict(capsys: pytest.CaptureFixture[str], *args: str, model: Path = MODEL) -> list[dict]:
    argv = ["predict", "--json", "--sglang-version", VERSION, "--model", str(model), *args]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize(
    ("name", "shape"), [("qwen2-audio", [1, 128, 3000]), ("whisper", [80, 3000])]
)
def test_per_file_equals_sglang_and_is_exact_for_a_soundfile_server(
    processors, capsys, name: str, shape: list[int]
) -> None:
    model = MODELS / name
    records = _predict(capsys, "--audio-decoder", "soundfile", *map(str, RECORDINGS), model=model)
    assert [r["path"] for r in records] == [str(f) for f in RECORDINGS]
    want = [_sglang_values(_processor(processors, model), [f])[0] for f in RECORDINGS]
    assert [(r["hash"], r["pad_values"]) for r in records] == want
    assert len({h for h, _ in want}) == len(RECORDINGS)  # four different recordings
    for r in records:
        assert (r["modality"], r["method"], r["exact"]) == ("audio", "sglang-processor", True)
        assert r["feature_shape"] == shape and r["feature_dtype"] == "float32"
        assert {"soundfile", "libsndfile", "torchaudio", "transformers"} <= set(r["stack"])
        assert "soundfile" in r["reasons"][0]


def test_together_one_item_per_audio_not_exact_for_a_torchcodec_server(sglang, capsys) -> None:
    files = RECORDINGS[:2]
    records = _predict(capsys, "--together", *map(str, files))
    assert {r["request"] for r in records} == {0} and len(records) == 2
    assert [(r["hash"], r["pad_values"]) for r in records] == _sglang_values(sglang, files)
    for r in records:  # the default server (x86-64) decodes with torchcodec, not here
        assert not r["exact"] and "torchcodec" in r["reasons"][0]
        assert "--audio-decoder soundfile" in r["reasons"][1]


def test_chat_and_generate_requests(sglang, capsys, tmp_path: Path) -> None:
    speech, effect = RECORDINGS[:2]
    url = "data:audio/wav;base64," + base64.b64encode(speech.read_bytes()).decode()
    parts = [{"type": "audio_url", "audio_url": {"url": url}}, {"type": "text", "text": "Hi"}]
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": parts}]}))
    generate = tmp_path / "generate.json"
    generate.write_text(json.dumps({"text": "x", "audio_data": ["file://" + str(effect)]}))
    records = _predict(
        capsys, "--audio-decoder", "soundfile", "--request", str(chat), "--request", str(generate)
    )
    assert [r["request"] for r in records] == [0, 1]
    want = [_sglang_values(sglang, [f])[0] for f in (speech, effect)]
    assert [(r["hash"], r["pad_values"]) for r in records] == want
    assert all(r["exact"] for r in records)


def test_unreadable_audio_is_one_line_exit_2(capsys, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(RECORDINGS[0].read_bytes()[:12] + b"\xff" * 64)  # RIFF/WAVE, then junk
    code = main(["predict", "--json", "--model", str(MODEL), str(broken)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(broken) in err
    assert "not readable audio" in err and "Could not decode audio" in err


def test_whisper_refuses_two_audios_in_one_request(capsys) -> None:
    files = [str(f) for f in RECORDINGS[:2]]
    code = main(["predict", "--json", "--model", str(MODELS / "whisper"), "--together", *files])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Whisper expects exactly 1 audio input" in err
