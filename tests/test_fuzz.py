"""Fuzzing: malformed feature files and golden manifests raise only documented errors.

Loaders (and hashing what they load) may raise only :class:`MmhashError` subclasses, each with one
line that starts with the file's path; the golden manifest parser may raise only :class:`GoldenError`.

The normal run tries 50 derandomized examples per target. ``MMHASH_FUZZ_EXAMPLES=N`` runs a fresh
random search of about N examples in total, split evenly over the targets; add
``--hypothesis-show-statistics`` to see each target's count and time.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pytest_mmhash import GoldenError, MmhashError, hash_feature
from pytest_mmhash.golden import model as GM
from pytest_mmhash.golden import store as GS
from pytest_mmhash.golden import validation as GV
from pytest_mmhash.loaders import iter_features

FORMATS = ("pt", "pt-legacy", "npy", "npz", "npz-stored", "safetensors", "png", "jpg")
TARGETS = (
    len(FORMATS) + 4
)  # + random .npy headers, random .safetensors headers, golden JSON, golden text
_TOTAL = int(os.environ.get("MMHASH_FUZZ_EXAMPLES", "0"))
_COMMON = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("mmhash-fuzz-ci", max_examples=50, derandomize=True, **_COMMON)
settings.register_profile(
    "mmhash-fuzz-full", max_examples=max(1, math.ceil(_TOTAL / TARGETS)), **_COMMON
)
FUZZ = settings.get_profile("mmhash-fuzz-full" if _TOTAL else "mmhash-fuzz-ci")

#: The hash paths every loaded feature goes through: CPU raw/f32 bytes, both CUDA kernels.
HASHES = (("0.5.23", "cpu"), ("0.5.23", "cuda"), ("0.4.10", "cuda"), ("0.5.9", "cpu"))
_names = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder for the fuzzed files (one new name per example: old ones may still be mapped)."""
    return tmp_path_factory.mktemp("fuzz")


def _valid_bytes() -> dict[str, bytes]:
    """A small valid file of every format, as bytes."""
    t = torch.arange(64, dtype=torch.float32).reshape(8, 8)
    out = {}
    for fmt, save in {
        "pt": lambda f: torch.save({"x": t, "y": [t[:2].to(torch.bfloat16), t[0]]}, f),
        "pt-legacy": lambda f: torch.save(t.t(), f, _use_new_zipfile_serialization=False),
        "npy": lambda f: np.save(f, np.asfortranarray(t.numpy().astype(">f8"))),
        "npz": lambda f: np.savez_compressed(f, x=t.numpy(), y=np.arange(5, dtype=np.int16)),
        "npz-stored": lambda f: np.savez(f, x=t.numpy(), y=np.arange(5, dtype=np.int16)),
        "safetensors": lambda f: f.write(_safetensors_bytes({"x": t, "y": t[0].to(torch.float16)})),
        "png": lambda f: Image.fromarray(t.numpy().astype(np.uint8)).save(f, format="PNG"),
        "jpg": lambda f: Image.fromarray(np.stack([t.numpy().astype(np.uint8)] * 3, -1)).save(
            f, format="JPEG"
        ),
    }.items():
        buf = io.BytesIO()
        save(buf)
        out[fmt] = buf.getvalue()
    return out


def _safetensors_bytes(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save(tensors)


VALID = _valid_bytes()
EXT = {
    "pt": ".pt",
    "pt-legacy": ".pt",
    "npy": ".npy",
    "npz": ".npz",
    "npz-stored": ".npz",
    "safetensors": ".safetensors",
    "png": ".png",
    "jpg": ".jpg",
}


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` after 1-4 byte flips, overwrites, truncations, insertions, deletions or header scrambles."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "header"]))
        n = len(b)
        near_start = st.integers(0, max(0, min(n, 256) - 1))
        pos = draw(near_start | st.integers(0, max(0, n - 1)))
        if op == "flip" and n:
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            b[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del b[draw(near_start | st.integers(0, n)) :]
        elif op == "insert":
            b[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del b[pos : pos + draw(st.integers(1, 32))]
        elif op == "header":
            chunk = draw(st.binary(min_size=1, max_size=64))
            b[pos : pos + len(chunk)] = chunk
    return bytes(b)


def _write(workdir: Path, ext: str, data: bytes) -> Path:
    path = workdir / f"f{next(_names)}{ext}"
    path.write_bytes(data)
    return path


def check_file(path: Path) -> None:
    """Load every feature of ``path`` and hash it on every path: only one-line MmhashErrors may escape."""
    try:
        for loaded in iter_features(path):
            for version, device in HASHES:
                try:
                    hash_feature(loaded.feature, sglang_version=version, device=device)
                except MmhashError as e:
                    assert "\n" not in str(e), e
    except MmhashError as e:
        msg = str(e)
        assert msg.startswith(str(path)) and "\n" not in msg, msg
    finally:
        path.unlink()


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_mutated_files(fmt, workdir, data):
    """Byte flips, truncations and scrambled headers of valid files of every format."""
    check_file(_write(workdir, EXT[fmt], data.draw(mutated(VALID[fmt]), label="file")))


DESCRS = [
    "<f4",
    ">f8",
    "<f2",
    "|b1",
    "|u1",
    "<i8",
    ">u2",
    "<c8",
    ">c16",
    "<f16",
    "|V3",
    "|V0",
    "<U2",
    "|S0",
    "|S5",
    "<M8[s]",
    "<m8[D]",
    "|O",
    "O",
    "<f3",
    "zz",
    "",
    "<f4 ",
    "bfloat16",
    [("a", "<i4"), ("b", ">f8")],
    [("a", "O")],
    [("a", "<f4", (2,))],
    [("", "<i4")],
    [("a", "<i4"), ("a", "<i4")],
    [],
    3,
    None,
]
#: Descriptors of 0-byte items: astronomic shapes of these hang hashing (see test_huge.py), so they get small ones.
ZERO_ITEMSIZE = ("|V0", "|S0", [])
_odd = st.sampled_from([None, "yes", 1, 0, 2.5, (), [], {}])


@st.composite
def npy_files(draw) -> bytes:
    """A ``.npy`` file with a random header: odd dtypes, shapes, fortran flags, keys and versions."""
    descr = draw(st.sampled_from(DESCRS))
    huge = [2**31, 2**40, 2**63, 10**30] if descr not in ZERO_ITEMSIZE else [9]
    dims = st.integers(-2, 9) | st.sampled_from(huge)
    header = {
        "descr": descr,
        "fortran_order": draw(st.booleans() | _odd),
        "shape": draw(st.lists(dims, max_size=4).map(tuple) | _odd),
    }
    for k in draw(st.lists(st.sampled_from(sorted(header)), max_size=1)):
        del header[k]
    if draw(st.booleans()):
        header[draw(st.sampled_from(["extra", "descr2"]))] = 0
    text = repr(header).encode("latin1")
    if draw(st.integers(0, 4)) == 0:
        text = draw(mutated(text))
    text += b" " * draw(st.integers(0, 70)) + draw(st.sampled_from([b"\n", b"", b"\r\n"]))
    major = draw(st.sampled_from([1, 2, 3, 0, 255]))
    size = len(text) if draw(st.integers(0, 5)) else draw(st.integers(0, 2**16 - 1))
    prefix = (
        b"\x93NUMPY"
        + bytes([major, 0])
        + (struct.pack("<H", size % 2**16) if major in (1, 0, 255) else struct.pack("<I", size))
    )
    body = draw(st.binary(max_size=300) | st.integers(0, 600).map(lambda n: b"\x01" * n))
    return prefix + text + body


@FUZZ
@given(data=npy_files())
def test_random_npy_headers(workdir, data):
    """``.npy`` files with random headers."""
    check_file(_write(workdir, ".npy", data))


ST_DTYPES = [
    "F32",
    "F16",
    "BF16",
    "F64",
    "I8",
    "U8",
    "I16",
    "U16",
    "I32",
    "U32",
    "I64",
    "U64",
    "BOOL",
    "F8_E4M3",
    "F8_E5M2",
    "C64",
    "ZZ",
    "f32",
    "",
]


@st.composite
def safetensors_files(draw) -> bytes:
    """A ``.safetensors`` file with a random JSON header (dtypes, shapes, offsets, length field)."""
    entries: dict = {}
    for name in draw(st.lists(st.text(max_size=4), max_size=3, unique=True)):
        start = draw(st.integers(-1, 64))
        entries[name] = {
            "dtype": draw(st.sampled_from(ST_DTYPES)),
            "shape": draw(st.lists(st.integers(-1, 8) | st.just(2**62), max_size=3)),
            "data_offsets": draw(st.just([start, start + draw(st.integers(-1, 64))]) | _odd),
        }
        if draw(st.integers(0, 5)) == 0:
            del entries[name][draw(st.sampled_from(sorted(entries[name])))]
    if draw(st.booleans()):
        entries["__metadata__"] = draw(
            st.dictionaries(st.text(max_size=3), st.text(max_size=3) | _odd, max_size=2)
        )
    text = json.dumps(entries).encode()
    if draw(st.integers(0, 4)) == 0:
        text = draw(mutated(text))
    size = len(text) if draw(st.integers(0, 5)) else draw(st.integers(0, 2**64 - 1))
    return struct.pack("<Q", size) + text + draw(st.binary(max_size=128))


@FUZZ
@given(data=safetensors_files())
def test_random_safetensors_headers(workdir, data):
    """``.safetensors`` files with random headers."""
    check_file(_write(workdir, ".safetensors", data))


def _good_manifest() -> dict:
    m = hash_feature(np.arange(3), sglang_version="0.5.23")
    prov = {
        "sglang": "0.5.23",
        "torch": "2.9.0",
        "triton": "3.5.0",
        "numpy": "2.3.0",
        "python": "3.12.3",
        "cuda_path": "triton-interpreter",
        "date": "2026-01-01",
    }
    value = {"hash": m.hash, "hex": m.hex, "pad_values": list(m.pad_values)}
    entries = [
        {
            "id": f"e{i}",
            "file": f"f{i}.npy",
            "key": None if i else "x",
            "sha256": "0" * 64,
            "kind": "ndarray",
            "description": "arange",
            "values": {"0.5.23": {"cpu": value, "cuda": {"error": "TypeError: no"}}},
        }
        for i in range(2)
    ]
    return {
        "format": GM.FORMAT,
        "format_version": GM.FORMAT_VERSION,
        "pin": "0.5.23",
        "provenance": {"0.5.23": prov},
        "entries": entries,
    }


GOOD = _good_manifest()
PLACEHOLDER = "\x00raw\x00"
#: JSON text that Python's json module reads specially, or refuses with errors other than JSONDecodeError.
RAW = [
    "9" * 5000,
    "-" + "9" * 5000,
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "[" * 3000 + "]" * 3000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    '"\\ud800"',
    '"\\u0000"',
    "1.0",
    "-0",
    "true",
    "null",
    '{"a": 1, "a": 2}',
    '""',
    "[]",
    "{}",
    "0.5.23",
    "18446744073709551616",
    "-9223372036854775809",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


def _paths(x: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def manifest_texts(draw) -> str:
    """The good manifest after 1-3 deletions, wrong-typed values, raw JSON tokens or unknown keys."""
    doc = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(["delete", "replace", "raw", "add"]))
        if not path:
            if op in ("replace", "raw"):
                doc = draw(json_values) if op == "replace" else PLACEHOLDER
            continue
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key, target = path[-1], parent[path[-1]]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "raw":
            parent[key] = PLACEHOLDER
        elif isinstance(target, dict):
            target[draw(st.text(max_size=8))] = draw(json_values)
    text = json.dumps(doc)
    for _ in range(text.count(json.dumps(PLACEHOLDER))):
        text = text.replace(json.dumps(PLACEHOLDER), draw(st.sampled_from(RAW)), 1)
    return text


@FUZZ
@given(text=manifest_texts())
def test_golden_json_mutations(workdir, text):
    """Manifests with missing fields, wrong types and odd JSON tokens: only GoldenError escapes."""
    try:
        GV.parse(text, workdir)
    except GoldenError as e:  # one line, or a head line and one indented line per problem
        head, *problems = str(e).strip().splitlines()
        assert head.startswith("manifest.json: ") and all(p.startswith("  ") for p in problems), e


@FUZZ
@given(data=mutated(json.dumps(GOOD, indent=2).encode()))
def test_golden_text_mutations(workdir, data):
    """Manifest files with flipped, cut or inserted bytes (invalid UTF-8 included): only GoldenError escapes."""
    folder = workdir / f"golden{next(_names)}"
    folder.mkdir()
    (folder / GM.MANIFEST_NAME).write_bytes(data)
    try:
        GS.load_manifest(folder)
    except GoldenError:
        pass
    finally:
        (folder / GM.MANIFEST_NAME).unlink()
        folder.rmdir()


def test_valid_inputs_pass_the_checks(workdir, tmp_path):
    """The unmutated files load and hash: the fuzz targets start from valid inputs."""
    for fmt in FORMATS:
        path = _write(workdir, EXT[fmt], VALID[fmt])
        assert list(iter_features(path)), fmt
        check_file(path)
    (tmp_path / GM.MANIFEST_NAME).write_text(json.dumps(GOOD))
    GS.load_manifest(tmp_path)
