"""``mmhash predict``: input forms, output, one-line errors (exit 2), ``--strict`` (exit 4)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import torch

from pytest_mmhash import api
from pytest_mmhash.cli import main
from pytest_mmhash.predict import ProcessedItem, predictor

PNG = b"\x89PNG\r\n\x1a\n" + b"payload"
JPEG = b"\xff\xd8" + b"jpeg" + b"\xff\xd9"


def write_model(root: Path, arch: str, model_type: str) -> Path:
    root.mkdir()
    (root / "config.json").write_text(
        json.dumps({"architectures": [arch], "model_type": model_type})
    )
    return root


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, data in (("a.png", PNG), ("b.jpg", JPEG)):
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    out["qwen2"] = write_model(tmp_path / "q2", "Qwen2VLForConditionalGeneration", "qwen2_vl")
    out["qwen3"] = write_model(tmp_path / "q3", "Qwen3VLForConditionalGeneration", "qwen3_vl")
    return out


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple]]:
    calls: list[list[tuple]] = []

    def run(requests, *, model, deployment):
        calls.append([tuple(m.source for m in r) for r in requests])
        return [
            [
                ProcessedItem(
                    m.modality,
                    torch.tensor(list(m.data), dtype=torch.float32),
                    None,
                    None,
                    "soundfile"
                    if m.modality == "audio"
                    else None,  # sglang's decoder without torchcodec
                )
                for m in r
            ]
            for r in requests
        ]

    monkeypatch.setattr(predictor, "_real_runner", lambda er: run)
    return calls


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_one_request_per_file_by_default_and_together(files, fake_runner, capsys) -> None:
    a, b = str(files["a.png"]), str(files["b.jpg"])
    common = ["--model", str(files["qwen2"]), "--sglang-version", "0.5.23", "--json"]
    code, records, _ = run_json(capsys, a, b, *common, "--preprocess-device", "cpu")
    assert code == 0 and [r["path"] for r in records] == [a, b]
    assert [r["request"] for r in records] == [0, 1] and all(r["exact"] for r in records)
    assert fake_runner[-1] == [(a,), (b,)]  # one runner call for every request
    code, records, _ = run_json(capsys, a, b, *common, "--together")
    assert [r["request"] for r in records] == [0, 0] and [r["item"] for r in records] == [0, 1]
    assert fake_runner[-1] == [(a, b)]
    assert not any(r["exact"] for r in records)  # default device on this CPU machine


def test_strict_exits_4_after_printing(files, fake_runner, capsys) -> None:
    code, records, err = run_json(
        capsys, str(files["b.jpg"]), "--model", str(files["qwen2"]), "--json", "--strict",
        "--sglang-version", "0.5.23",
    )  # fmt: skip
    assert code == 4 and len(records) == 1 and "not exact" in err


def test_identity_without_sglang(files, capsys) -> None:
    code, (record,), _ = run_json(
        capsys, str(files["a.png"]), "--model", str(files["qwen3"]), "--sglang-version", "0.5.23",
        "--transformers-version", "5.24.0", "--json", "--strict",
    )  # fmt: skip
    assert code == 0 and record["method"] == "identity" and record["exact"]
    assert record["feature_shape"] is None


def test_mm_hashes_and_request_files(files, tmp_path: Path, capsys) -> None:
    a = str(files["a.png"])
    code, records, _ = run_json(
        capsys, a, "--model", str(files["qwen2"]), "--sglang-version", "0.5.23",
        "--mm-hashes", "ff", "--json",
    )  # fmt: skip
    want = api.from_mm_hash("ff", sglang_version="0.5.23")
    assert code == 0 and records[0]["pad_values"] == list(want.pad_values)
    body = tmp_path / "gen.json"
    body.write_text(json.dumps({"text": "x", "image_data": ["file://" + a], "mm_hashes": ["ee"]}))
    code, records, _ = run_json(
        capsys, "--request", str(body), "--model", str(files["qwen2"]),
        "--sglang-version", "0.5.23", "--json",
    )  # fmt: skip
    assert code == 0 and records[0]["method"] == "mm_hashes"
    assert records[0]["hash"] == api.from_mm_hash("ee", sglang_version="0.5.23").hash


def test_video_is_refused_saying_why_and_what_to_do(
    files, fake_runner, tmp_path: Path, capsys
) -> None:
    """The processor method does not run video: one line naming the file, the reason and
    --mm-hashes; with the client's hashes the same request is predicted."""
    kind, why = "video", "torchcodec"
    clip = tmp_path / f"clip.{kind}"
    clip.write_bytes(b"media bytes")
    body = tmp_path / f"{kind}.json"
    body.write_text(json.dumps({"text": "x", f"{kind}_data": [str(clip)]}))
    args = ["--request", str(body), "--model", str(files["qwen2"]), "--sglang-version", "0.5.23"]
    code = main(["predict", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and fake_runner == []
    assert len(err.strip().splitlines()) == 1
    assert str(clip) in err and why in err and "--mm-hashes" in err
    body.write_text(json.dumps({"text": "x", f"{kind}_data": [str(clip)], "mm_hashes": ["ab"]}))
    code, records, _ = run_json(capsys, *args, "--json")
    assert code == 0 and [(r["modality"], r["method"]) for r in records] == [(kind, "mm_hashes")]


def test_chat_request_detail_enters_the_qwen3_identity(files, tmp_path: Path, capsys) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()

    def chat(detail: str) -> Path:
        part = {"type": "image_url", "image_url": {"url": url, "detail": detail}}
        f = tmp_path / f"chat-{detail}.json"
        f.write_text(json.dumps({"messages": [{"role": "user", "content": [part]}]}))
        return f

    args = ["--model", str(files["qwen3"]), "--sglang-version", "0.5.23"]
    args += ["--transformers-version", "5.24.0", "--json"]
    (auto,) = run_json(capsys, "--request", str(chat("auto")), *args)[1]
    (low,) = run_json(capsys, "--request", str(chat("low")), *args)[1]
    (plain,) = run_json(capsys, url, *args)[1]
    assert auto["hash"] == plain["hash"] != low["hash"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["https://example.com/a.png"], "remote URLs are never fetched"),
        (["data:image/png;base64,%%%"], "not valid base64"),
        (["MISSING.png"], "cannot read it"),
        (["A", "B", "--mm-hashes", "ff"], "--together"),
        (["A", "--env", "SGLANG_NOPE=1"], "SGLANG_NOPE"),
        (["A", "--mm-process-config", "{bad"], "not JSON"),
        (["A", "--mm-process-config", '{"image": 3}'], "objects"),
        (["A", "--sglang-version", "0.5.99"], "0.5.99"),
        (["A", "--mm-hashes", "zz"], "not hex"),
        ([], "give MEDIA"),
    ],
)
def test_bad_input_is_one_line_exit_2(files, fake_runner, capsys, argv, message) -> None:
    argv = [str(files["a.png"]) if x in ("A", "B") else x for x in argv]
    code = main(["predict", *argv, "--model", str(files["qwen2"]), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_refused_mm_hashes_exit_3(files, capsys) -> None:
    code = main(
        ["predict", str(files["a.png"]), "--model", str(files["qwen2"]), "--mm-hashes", "ff",
         "--sglang-version", "0.5.9"]
    )  # fmt: skip
    assert code == 3 and "0.5.13" in capsys.readouterr().err


def test_missing_model_dir_is_exit_2(files, tmp_path: Path, capsys) -> None:
    code = main(["predict", str(files["a.png"]), "--model", str(tmp_path / "none")])
    assert code == 2 and "model directory does not exist" in capsys.readouterr().err


def test_text_output_names_the_method_and_reasons(files, fake_runner, capsys) -> None:
    code = main(
        [
            "predict",
            str(files["b.jpg"]),
            "--model",
            str(files["qwen2"]),
            "--sglang-version",
            "0.5.23",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Method: sglang-processor" in out and "Exact: NO" in out
    assert "Stack: " in out and "Pad values: [" in out


def test_old_image_path_note_names_mmhash_predict() -> None:
    from pytest_mmhash.loaders import IMAGE_NOTE

    assert "SGLang never assigns this value" in IMAGE_NOTE and "mmhash predict" in IMAGE_NOTE


def test_a_failing_processor_is_one_line(files, monkeypatch, capsys) -> None:
    def broken(requests, *, model, deployment):
        raise RuntimeError("operator torchvision::nms does not exist\n  deep traceback")

    monkeypatch.setattr(predictor, "_real_runner", lambda er: broken)
    code = main(["predict", str(files["a.png"]), "--model", str(files["qwen2"]), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "sglang's processor failed (RuntimeError: operator torchvision::nms" in err


def _wav(tmp_path: Path, name: str = "clip.wav") -> Path:
    """A file with a WAV header (the fake runner never decodes it)."""
    f = tmp_path / name
    f.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))
    return f


def test_audio_is_predicted_and_exact_only_for_the_servers_decoder(
    files, fake_runner, tmp_path: Path, capsys
) -> None:
    """Audio files run through the processor method; exact only when the server's sglang decodes
    with what sglang here decoded with (soundfile in the fake, as in this project's venvs)."""
    wav = str(_wav(tmp_path))
    common = [wav, "--model", str(files["qwen2"]), "--sglang-version", "0.5.23", "--json"]
    code, records, _ = run_json(capsys, *common)
    assert code == 0 and fake_runner[-1] == [(wav,)]
    (r,) = records
    assert (r["modality"], r["method"], r["exact"]) == ("audio", "sglang-processor", False)
    assert "torchcodec" in r["reasons"][0] and "--audio-decoder soundfile" in r["reasons"][1]
    code, records, _ = run_json(capsys, *common, "--audio-decoder", "soundfile")
    assert code == 0 and records[0]["exact"] and "soundfile" in records[0]["reasons"][0]
    assert records[0]["hash"] == r["hash"]  # the setting describes the server, not the bytes
    assert main(["predict", *common, "--strict"]) == 4


def test_audio_and_images_together_in_one_request(files, fake_runner, tmp_path: Path, capsys):
    wav, png = str(_wav(tmp_path)), str(files["a.png"])
    args = [png, wav, "--together", "--model", str(files["qwen2"]), "--sglang-version", "0.5.23"]
    code, records, _ = run_json(capsys, *args, "--json", "--preprocess-device", "cpu")
    assert code == 0 and fake_runner[-1] == [(png, wav)]
    assert [(r["modality"], r["path"]) for r in records] == [("image", png), ("audio", wav)]
    assert not any(r["exact"] for r in records)  # the audio's decoder is not the server's
