"""The SGLang family: sglang-kt and sglang-omni as engines, checked against values their own code
computed (sglang-family-notes §4: each fork's functions taken from its wheel and run), plus the
release tables, installed-engine detection and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_mmhash import (
    UnhashableFeatureError,
    UnknownVersionError,
    UnsupportedDeviceError,
    from_hash,
    from_mm_hash,
    hash_feature,
    omni_contextualize,
    omni_key_pad,
    omni_media_cache_key,
    omni_media_part,
)
from pytest_mmhash import engines as E
from pytest_mmhash.cli import main

# ---------------------------------------------------------------- sglang-kt (notes §4, all 20 releases)

KT_INPUTS = {
    "arange10": lambda: torch.arange(10, dtype=torch.float32),
    "A": lambda: torch.arange(1000, dtype=torch.float32).reshape(10, 100),
    "B7": lambda: torch.arange(7, dtype=torch.bfloat16),
    "B8": lambda: torch.arange(8, dtype=torch.bfloat16),
    "u8": lambda: torch.arange(5, dtype=torch.uint8),
    "M": lambda: [torch.ones(3), torch.arange(4)],
    "L": lambda: [torch.arange(3, dtype=torch.float32), torch.arange(3, 6, dtype=torch.float32)],
    "I": lambda: torch.arange(20000, dtype=torch.int32),
}
# input: (cpu hash, cpu pad, cuda hash, cuda pad), run with each kt wheel's own code
KT_VECTORS = {
    "arange10": (1458572134434550373, 542143653, 3464781265614418057, 829387465),
    "A": (6195373761911486496, 697416288, 14660478606431258911, 899402591),
    "B7": (12325294725044462236, 240428252, 7695844872513631682, 549386242),
    "B8": (392323221453916089, 737479161, 5579749799232338311, 786185159),
    "u8": (629200328329969924, 783942468, 6014808082616849464, 345364088),
    "M": (12329395046253440683, 997519595, 17787887286460750404, 641555588),
    "L": (16339243157016623437, 281312141, 3035275523868035318, 598133558),
    "I": (13589998309442005720, 612527384, 4588543558511414631, 696913831),
}


@pytest.mark.parametrize("name", KT_VECTORS)
@pytest.mark.parametrize("release", ["0.5.2", "0.6.2", "0.7.2"])
def test_kt_vectors(name, release):
    cpu_h, cpu_p, cuda_h, cuda_p = KT_VECTORS[name]
    for device, h, p in (("cpu", cpu_h, cpu_p), ("cuda", cuda_h, cuda_p)):
        r = hash_feature(
            KT_INPUTS[name](), engine="sglang-kt", sglang_version=release, device=device
        )
        assert (r.hash, r.pad_values) == (h, (p,)), (name, device)
        assert (r.engine, r.sglang_version, r.upstream_version) == ("sglang-kt", release, "0.5.9")


def test_kt_preset_hash_is_not_masked():
    r = from_hash(-1, engine="sglang-kt", sglang_version="0.7.2")
    assert (r.hash, r.pad_values, r.modifiers) == (-1, (1074741823,), ())


def test_every_kt_release_runs_upstream_0_5_9():
    assert len(E.KT_RELEASES) == 20
    for v in E.KT_RELEASES:
        er = E.resolve("sglang-kt", v)
        assert (er.version, er.upstream.version) == (v, "0.5.9")
    with pytest.raises(UnhashableFeatureError, match="mm_hashes"):
        from_mm_hash("ff", engine="sglang-kt", sglang_version="0.7.2")


def test_kt_newer_release_needs_opt_in_and_keeps_kt_schemes():
    with pytest.raises(UnknownVersionError, match=r"sglang-kt 0.7.3 is newer .* \(0.7.2\)"):
        E.resolve("sglang-kt", "0.7.3")
    with pytest.warns(UserWarning, match="sglang-kt 0.8.0 is newer than 0.7.2"):
        r = hash_feature(
            KT_INPUTS["A"](), engine="sglang-kt", sglang_version="0.8.0", allow_newer=True
        )
    # upstream 0.5.23 would give sha256-raw and pad-wide4; the newest kt runs 0.5.9's schemes
    assert (r.hash, r.pad_values, r.hash_scheme, r.pad_scheme) == (
        6195373761911486496,
        (697416288,),
        "sha256-f32",
        "pad-shift-1e6",
    )


@pytest.mark.parametrize(
    "version,problem",
    [
        ("0.5.1", "predates 0.5.2"),
        ("0.6.0", "nearest releases: 0.5.3, 0.6.1"),
        ("x", "not a version"),
    ],
)
def test_kt_bad_versions(version, problem):
    with pytest.raises(UnknownVersionError, match=problem):
        E.resolve("sglang-kt", version)


def test_unknown_engine():
    from pytest_mmhash import BadArgumentError

    with pytest.raises(BadArgumentError, match="engine 'vllm' is not one of sglang, sglang-kt"):
        hash_feature(b"x", engine="vllm")


# ---------------------------------------------------------------- sglang-omni waveforms (notes §4)

WAVE = np.arange(10, dtype=np.float32)


@pytest.mark.parametrize(
    "release,h,pad,scheme,upstream",
    [
        ("0.1.1", 5370553336874187747, 867958307, "omni-blake2b-128-f32", "0.5.16"),
        ("0.1.2", 1965757166427933564, 330091964, "omni-xxh3-128-f32", "0.5.16"),
        ("0.1.5", 1965757166427933564, 330091964, "omni-xxh3-128-f32", "0.5.19"),
        ("0.1.9", 1965757166427933564, 330091964, "omni-xxh3-128-f32", "0.5.22"),
    ],
)
def test_omni_waveform_vectors(release, h, pad, scheme, upstream):
    for wave in (WAVE, WAVE.astype(np.float64), WAVE.astype(">f4"), torch.from_numpy(WAVE)):
        r = hash_feature(wave, engine="sglang-omni", sglang_version=release)
        assert (r.hash, r.pad_values, r.hash_scheme) == (h, (pad,), scheme)
        assert (r.upstream_version, r.device, r.pad_scheme) == (upstream, "cpu", "pad-shift-1e6")


def test_omni_waveform_refusals():
    with pytest.raises(UnsupportedDeviceError, match="no CUDA path"):
        hash_feature(WAVE, engine="sglang-omni", sglang_version="0.1.9", device="cuda")
    with pytest.raises(UnhashableFeatureError, match="cannot cast this waveform to float32"):
        hash_feature(torch.ones(3, dtype=torch.bfloat16), engine="sglang-omni")
    with pytest.raises(UnhashableFeatureError, match="ValueError: could not convert"):
        hash_feature(b"\0\0\0\0", engine="sglang-omni")
    r = hash_feature([[0.0, 1.0], [2.0, 3.0]], engine="sglang-omni")  # numpy casts nested lists
    assert r.hash == hash_feature(np.arange(4.0).reshape(2, 2), engine="sglang-omni").hash
    with pytest.raises(UnhashableFeatureError, match="sglang-omni 0.1.9 has no mm_hashes path"):
        from_mm_hash("ff", engine="sglang-omni", sglang_version="0.1.9")


# ---------------------------------------------------------------- sglang-omni cache keys (notes §4)

V = 152064
RED = Image.new("RGB", (2, 2), (255, 0, 0))


@pytest.mark.parametrize(
    "item,part",
    [
        (RED, "pil:RGB|(2, 2):c831e4eca1018e1e"),
        (np.arange(6, dtype=np.uint8).reshape(2, 3), "np:uint8|(2, 3):a6584d1d9a6ae704"),
        (torch.arange(10, dtype=torch.float32), "pt:torch.float32|(10,):9d5661e6a667ad1b"),
        (torch.arange(12.0).reshape(3, 4).t(), "pt:torch.float32|(4, 3):7bdbf0024ec86be8"),
        (b"hello", "bytes:9555e8555c62dcfd"),
        ("data:image/png;base64,AAAA", "url:c4a60ab824c912a1"),
    ],
)
def test_omni_media_parts(item, part):
    for release in ("0.1.1", "0.1.7", "0.1.9"):
        assert omni_media_part(item, sglang_version=release) == part


def test_omni_http_urls_are_keyed_until_0_1_8():
    url = "https://example.com/a.png"
    assert omni_media_part(url, sglang_version="0.1.7") == "url:432b06447698eaf0"
    assert omni_media_part(url, sglang_version="0.1.8") is None
    assert omni_media_cache_key([RED, url], prefix="image", sglang_version="0.1.9") is None


def test_omni_cache_keys_and_pads():
    assert omni_media_cache_key(RED, prefix="image") == "image:452ada62ea9d5dfe"
    assert omni_media_cache_key([RED, RED], prefix="image") == "image:5b70632445f1c6eb"
    assert omni_media_cache_key([], prefix="image") is None
    # Qwen3-Omni: media key "image:" + E_img; the video key of the same request
    assert omni_key_pad("image:image:452ada62ea9d5dfe", vocab_size=V) == 2012987291333753468
    assert omni_key_pad("video:image:452ada62ea9d5dfe", vocab_size=V) == 4568059834832722267
    aud = omni_media_cache_key(WAVE, prefix="audio")
    e_aud = omni_contextualize(aud, target_sr=16000, fps=None)
    assert (aud, e_aud) == ("audio:a324edb09e155190", "audio:a324edb09e155190|target_sr=16000")
    assert omni_key_pad("audio:" + e_aud, vocab_size=V) == 649248789692391533
    # MiniCPM-o: a key, and the modality name when the request has none
    assert omni_key_pad("image:abc", vocab_size=V, sglang_version="0.1.7") == 226475079148095132
    assert omni_key_pad("image", vocab_size=V) == 1120465564975275619


def test_omni_local_file_part_samples_head_and_tail(tmp_path):
    import xxhash

    big = tmp_path / "a.bin"
    data = bytes(range(256)) * 100  # 25600 bytes: head 8 KiB + tail 8 KiB + size
    big.write_bytes(data)
    want = xxhash.xxh3_64_hexdigest(data[:8192] + data[-8192:] + b"|size:25600")
    assert omni_media_part(str(big)) == f"file:{want}"
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    assert omni_media_part(small) == f"file:{xxhash.xxh3_64_hexdigest(b'abc|size:3')}"
    assert omni_media_part(str(tmp_path / "missing.png")).startswith("url:")


def test_omni_key_pad_bad_input():
    from pytest_mmhash import BadArgumentError

    with pytest.raises(BadArgumentError, match="vocab_size must be a positive integer"):
        omni_key_pad("image:abc", vocab_size=0)
    with pytest.raises(BadArgumentError, match="a cache key is a string"):
        omni_key_pad(b"image:abc", vocab_size=V)  # type: ignore[arg-type]
    with pytest.raises(UnknownVersionError, match="sglang-omni 0.2.0 is newer"):
        omni_key_pad("k", vocab_size=V, sglang_version="0.2.0")
    with pytest.raises(UnhashableFeatureError, match="TypeError"):
        omni_media_part(torch.ones(2, dtype=torch.bfloat16))


# ---------------------------------------------------------------- detection from metadata


def _fake_dist(site: Path, dist: str, version: str, top: str) -> None:
    """A dist-info as pip writes it: METADATA, and a RECORD naming the package's files."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{top}/__init__.py,,\n{info.name}/METADATA,,\n")
    (site / top).mkdir(exist_ok=True)
    (site / top / "__init__.py").write_text('__version__ = "0.0.0.dev0"\n')


def _mmhash(site: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "pytest_mmhash.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_detects_installed_sglang_kt_from_metadata(tmp_path):
    site = tmp_path / "site"
    _fake_dist(site, "sglang-kt", "0.7.2", "sglang")
    np.save(tmp_path / "w.npy", WAVE)
    p = _mmhash(site, "--json", str(tmp_path / "w.npy"))
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)
    assert (row["engine"], row["sglang_version"], row["hash"], row["pad_value"]) == (
        "sglang-kt",
        "0.7.2",
        1458572134434550373,
        542143653,
    )
    assert "installed sglang-kt 0.7.2" in row["version_source"]
    human = _mmhash(site, str(tmp_path / "w.npy")).stdout
    assert "Engine: sglang-kt 0.7.2 (installed sglang-kt 0.7.2" in human


def test_detection_reports_omni_and_defaults_to_upstream(tmp_path):
    site = tmp_path / "site"
    _fake_dist(site, "sglang", "0.5.22", "sglang")
    _fake_dist(site, "sglang-omni", "0.1.9", "sglang_omni")
    np.save(tmp_path / "w.npy", WAVE)
    row = json.loads(_mmhash(site, "--json", str(tmp_path / "w.npy")).stdout)
    assert (row["engine"], row["sglang_version"]) == ("sglang", "0.5.22")
    assert "sglang-omni 0.1.9 is installed too" in row["version_source"]
    row = json.loads(
        _mmhash(site, "--json", "--engine", "sglang-omni", str(tmp_path / "w.npy")).stdout
    )
    assert (row["sglang_version"], row["hash"], row["version_source"]) == (
        "0.1.9",
        1965757166427933564,
        "installed sglang-omni 0.1.9",
    )


# ---------------------------------------------------------------- the command


def run_json(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("device,col", [("cpu", 0), ("cuda", 2)])
def test_cli_kt_vectors(tmp_path, capsys, device, col):
    for name in ("A", "B7", "I"):
        torch.save(KT_INPUTS[name](), tmp_path / f"{name}.pt")
    code, rows, _ = run_json(
        capsys,
        "--json",
        "--engine",
        "sglang-kt",
        "--sglang-version",
        "0.7.2",
        "--device",
        device,
        str(tmp_path),
    )
    assert code == 0
    got = {Path(r["path"]).stem: (r["hash"], r["pad_value"]) for r in rows}
    assert got == {n: KT_VECTORS[n][col : col + 2] for n in ("A", "B7", "I")}
    assert {r["upstream_version"] for r in rows} == {"0.5.9"}


def test_cli_omni_waveform_and_key_pad(tmp_path, capsys):
    np.save(tmp_path / "wave.npy", WAVE)
    for release, h in (("0.1.9", 1965757166427933564), ("0.1.1", 5370553336874187747)):
        code, rows, _ = run_json(
            capsys,
            "--json",
            "--engine",
            "sglang-omni",
            "--sglang-version",
            release,
            str(tmp_path / "wave.npy"),
        )
        assert code == 0 and rows[0]["hash"] == h
    code, rows, _ = run_json(
        capsys, "omni-key-pad", "image:abc", "image", "--vocab-size", str(V), "--json"
    )
    assert code == 0
    assert [r["pad_value"] for r in rows] == [226475079148095132, 1120465564975275619]
    assert main(["omni-key-pad", "k", "--vocab-size", "-3"]) == 2
    assert "vocab_size must be a positive integer" in capsys.readouterr().err


def test_cli_list_versions_per_engine(capsys):
    code, rows, _ = run_json(capsys, "--list-versions", "--engine", "sglang-kt", "--json")
    assert code == 0 and len(rows) == 1 and len(rows[0]["releases"]) == 20
    assert (rows[0]["upstream"], rows[0]["cpu"], rows[0]["cuda"], rows[0]["pad"]) == (
        "0.5.9",
        "sha256-f32",
        "gpu-tile-fmix32",
        "pad-shift-1e6",
    )
    code, rows, _ = run_json(capsys, "--list-versions", "--engine", "sglang-omni", "--json")
    assert [r["upstream"] for r in rows] == [
        "0.5.16",
        "0.5.16",
        "0.5.18",
        "0.5.19",
        "0.5.20",
        "0.5.21",
        "0.5.22",
    ]
    assert sum(len(r["releases"]) for r in rows) == 9
    assert main(["--list-versions", "--engine", "sglang-omni"]) == 0
    assert "omni-blake2b-128-f32" in capsys.readouterr().out


def test_cli_kt_newer_without_opt_in_is_bad_input(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["--engine", "sglang-kt", "--sglang-version", "0.7.3", "--hash", "1"]) == 2
    assert "sglang-kt 0.7.3 is newer" in capsys.readouterr().err


def test_release_keys():
    assert E.release_key("sglang", "0.5.23") == "0.5.23"
    assert E.release_key("sglang-kt", "0.7.2") == "sglang-kt==0.7.2"
    assert E.split_key("sglang-omni==0.1.9") == ("sglang-omni", "0.1.9")
    assert E.split_key("0.5.9") == ("sglang", "0.5.9")
    assert [
        E.known_key(k) for k in ("0.5.9", "sglang-kt==0.7.2", "sglang-kt==0.5.9", "vllm==1", 3)
    ] == [
        True,
        True,
        False,
        False,
        False,
    ]
    keys = ["sglang-omni==0.1.1", "0.5.23", "sglang-kt==0.5.2", "0.4.10"]
    assert sorted(keys, key=E.key_order) == [
        "0.4.10",
        "0.5.23",
        "sglang-kt==0.5.2",
        "sglang-omni==0.1.1",
    ]


def test_predict_follows_the_installed_sglang_kt(tmp_path):
    """predict's default engine is the installed one: with sglang-kt 0.7.2 installed, asking for
    another kt release is refused in one line naming what is installed."""
    site = tmp_path / "site"
    _fake_dist(site, "sglang-kt", "0.7.2", "sglang")
    model = tmp_path / "model"
    model.mkdir()
    config = {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl"}
    (model / "config.json").write_text(json.dumps(config))
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\npayload")
    argv = ["predict", str(tmp_path / "a.png"), "--model", str(model), "--sglang-version", "0.6.1"]
    p = _mmhash(site, *argv)
    assert p.returncode == 2
    assert p.stderr == (
        "mmhash predict: error: --sglang-version 0.6.1 differs from the installed sglang-kt "
        "0.7.2: the sglang-processor method runs the installed release's processor\n"
    )
