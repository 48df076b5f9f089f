"""Bad input, catalogued: every case fails with one line naming the path and the problem, never a traceback.

Each case runs through the ``mmhash`` script (a subprocess), ``main()`` in-process and the API
(``load_feature``/``iter_features``/``iter_paths``/``hash_feature``), which raises the typed error.
"""

from __future__ import annotations

import io
import os
import random
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pytest_mmhash import (
    FeatureLoadError,
    FeatureTooLargeError,
    MmhashError,
    UnhashableFeatureError,
    UnknownVersionError,
    UnsupportedDeviceError,
    hash_feature,
    load_feature,
)
from pytest_mmhash.cli import main
from pytest_mmhash.loaders import iter_features, iter_paths

MARKER = "MARKER-code-ran"
WRITE_ONLY_SYSFS = "/sys/bus/pci/rescan"  # reading it fails with EACCES, even for root


class MakesMarker:
    """Pickles as a call to ``open(MARKER, "w")``: loading it unsafely would create the marker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _npy_bytes(header: str, data: bytes = b"\0" * 64) -> bytes:
    """A version 1.0 ``.npy`` file with a hand-written header dict."""
    text = header.encode("latin1")
    text += b" " * ((-(10 + len(text) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def _valid_files(d: Path) -> dict[str, Path]:
    """One valid file of every supported format, keyed by extension (``.pt`` zip, ``.pt-legacy``)."""
    d.mkdir(parents=True, exist_ok=True)
    t = torch.arange(256, dtype=torch.float32)
    files = {
        ext: d / f"valid{ext}" for ext in (".pt", ".npy", ".npz", ".safetensors", ".png", ".jpg")
    }
    files[".pt-legacy"] = d / "valid-legacy.pt"
    torch.save(t, files[".pt"])
    torch.save(t, files[".pt-legacy"], _use_new_zipfile_serialization=False)
    np.save(files[".npy"], t.numpy())
    np.savez_compressed(files[".npz"], x=t.numpy(), y=np.ones(3))
    save_file({"x": t, "y": torch.ones(3)}, str(files[".safetensors"]))
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(files[".png"])
    Image.fromarray(pixels).save(files[".jpg"])
    return files


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the words that name the problem, the exit code and the API error."""

    id: str
    make: Callable[[Path], Path]  # builds the input under a fresh folder, returns the path to pass
    needle: str
    exc: type[MmhashError] = FeatureLoadError
    code: int = 2
    args: tuple[str, ...] = ()  # CLI flags besides the path (cases with flags run on their own)
    api: Callable[[Path], Any] = load_feature
    skip: str | None = None


def _write(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(data() if callable(data) else data)
        return d / name

    return make


def _truncated(ext: str, name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        src = _valid_files(d / "src")[ext]
        data = src.read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])
        return d / name

    return make


def _saved(name: str, obj: Callable[[Path], Any], **kw: Any) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        torch.save(obj(d), d / name, **kw)
        return d / name

    return make


def _object_npy(d: Path) -> Path:
    np.save(
        d / "obj.npy",
        np.array([MakesMarker(d.parent / MARKER), 1], dtype=object),
        allow_pickle=True,
    )
    return d / "obj.npy"


def _object_npz(d: Path) -> Path:
    np.savez(d / "obj.npz", x=np.array([MakesMarker(d.parent / MARKER), 1], dtype=object))
    return d / "obj.npz"


def _empty_dir(d: Path) -> Path:
    (d / "empty").mkdir()
    return d / "empty"


def _unsupported_only_dir(d: Path) -> Path:
    (d / "docs").mkdir()
    (d / "docs" / "notes.txt").write_text("not a feature")
    return d / "docs"


def _dir_loop(d: Path) -> Path:
    (d / "top").mkdir()
    np.save(d / "top" / "a.npy", np.arange(3))
    (d / "top" / "loop").symlink_to(d / "top", target_is_directory=True)
    return d / "top"


def _file_loop(d: Path) -> Path:
    os.symlink(d / "b.pt", d / "a.pt")
    os.symlink(d / "a.pt", d / "b.pt")
    return d / "a.pt"


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "pipe.npy")
    return d / "pipe.npy"


def _unreadable(d: Path) -> Path:
    np.save(d / "secret.npy", np.arange(3))
    os.chmod(d / "secret.npy", 0)
    return d / "secret.npy"


def _sysfs(d: Path) -> Path:
    return Path(WRITE_ONLY_SYSFS)


def _walk(p: Path) -> Any:
    return [list(iter_features(f)) for f in iter_paths([p])]


def _hashing(version: str, device: str) -> Callable[[Path], Any]:
    return lambda p: hash_feature(load_feature(p), sglang_version=version, device=device)


_RAND = random.Random(0).randbytes(4096)
_RANDOM_NEEDLE = {
    ".pt": "not a readable torch file",
    ".pth": "not a readable torch file",
    ".npy": "not a .npy file (no \\x93NUMPY magic",
    ".npz": "not a .npz file (not a zip archive)",
    ".safetensors": "not a readable .safetensors file",
}
_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

CASES = [
    Case("missing", lambda d: d / "missing.pt", "no such file or directory"),
    Case("empty-file", _write("empty.npy", b""), "empty file"),
    Case("truncated-npy", _truncated(".npy", "t.npy"), "could only read"),
    Case(
        "truncated-pt-zip",
        _truncated(".pt", "t.pt"),
        "not a readable torch file (PytorchStreamReader failed",
    ),
    Case(
        "truncated-pt-legacy",
        _truncated(".pt-legacy", "t.pt"),
        "not a readable torch file (unexpected EOF",
    ),
    Case(
        "truncated-safetensors", _truncated(".safetensors", "t.safetensors"), "incomplete metadata"
    ),
    Case("truncated-npz", _truncated(".npz", "t.npz"), "not a .npz file (not a zip archive)"),
    Case(
        "truncated-png",
        _truncated(".png", "t.png"),
        "not a readable image (image file is truncated",
    ),
    Case("truncated-jpg", _truncated(".jpg", "t.jpg"), "not a readable image"),
    *[
        Case(
            f"random-bytes{ext}",
            _write(f"r{ext}", _RAND),
            _RANDOM_NEEDLE.get(ext, "not a readable image"),
        )
        for ext in (".pt", ".pth", ".npy", ".npz", ".safetensors", *_IMAGES)
    ],
    Case("npy-object-array", _object_npy, "refused: an object array"),
    Case("npz-object-array", _object_npz, "entry 'x' refused: an object array"),
    Case(
        "pt-pickled-code-zip",
        _saved("code.pt", lambda d: {"x": MakesMarker(d.parent / MARKER)}),
        "refused: it holds pickled Python objects",
    ),
    Case(
        "pt-pickled-code-legacy",
        _saved(
            "code.pt",
            lambda d: MakesMarker(d.parent / MARKER),
            _use_new_zipfile_serialization=False,
        ),
        "refused: it holds pickled Python objects",
    ),
    Case(
        "pt-dict-without-tensor",
        _saved("d.pt", lambda d: {"a": 1, "b": "text"}),
        "dict with no tensor",
    ),
    Case("pt-str", _saved("s.pt", lambda d: "a string"), "holds a str, not a tensor"),
    Case("pt-int", _saved("i.pt", lambda d: 7), "holds a int, not a tensor"),
    Case(
        "pt-sparse-tensor",
        _saved("sp.pt", lambda d: torch.eye(3).to_sparse()),
        "holds a torch.sparse_coo tensor",
    ),
    Case(
        "pt-meta-tensor",
        _saved("m.pt", lambda d: torch.empty(3, device="meta")),
        "holds a meta-device tensor",
    ),
    Case(
        "npy-header-tokenize-error",
        _write("h.npy", _npy_bytes("{'descr': '<f8', 'shape': (1,),")),
        "TokenError",
    ),
    Case(
        "npy-header-int-overflow",
        _write(
            "h.npy",
            _npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }"
            ),
        ),
        "OverflowError",
    ),
    Case(
        "npy-header-petabytes",
        _write(
            "h.npy",
            _npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }"),
        ),
        "needs more memory than is available",
        FeatureTooLargeError,
    ),
    Case("empty-folder", _empty_dir, "folder holds no feature files", api=_walk),
    Case(
        "folder-of-unsupported-files",
        _unsupported_only_dir,
        "folder holds no feature files",
        api=_walk,
    ),
    Case("symlink-loop-folder", _dir_loop, "symlink loop", api=_walk),
    Case("symlink-loop-file", _file_loop, "too many levels of symbolic links"),
    Case("unsupported-extension", _write("notes.txt", b"hello"), "unsupported file type '.txt'"),
    Case("no-extension", _write("README", b"hello"), "unsupported file type '(no extension)'"),
    Case("fifo", _fifo, "not a regular file"),
    Case(
        "unreadable-chmod-000",
        _unreadable,
        "permission denied",
        skip="running as root: chmod 000 does not stop root reading" if os.geteuid() == 0 else None,
    ),
    Case(
        "unreadable-write-only-sysfs",
        _sysfs,
        "Permission denied",
        args=("--tensor",),
        api=lambda p: load_feature(p, as_tensor=True),
        skip=None if os.path.exists(WRITE_ONLY_SYSFS) else f"no {WRITE_ONLY_SYSFS} on this machine",
    ),
    Case(
        "float8-cpu-0.5.9",
        _saved("f8.pt", lambda d: torch.zeros(4, dtype=torch.float8_e4m3fn)),
        "Got unsupported ScalarType",
        UnhashableFeatureError,
        3,
        ("--sglang-version", "0.5.9", "--device", "cpu"),
        _hashing("0.5.9", "cpu"),
    ),
    Case(
        "odd-bytes-bf16-cuda-0.4.10",
        _saved("bf.pt", lambda d: torch.zeros(7, dtype=torch.bfloat16)),
        "not a multiple of 4",
        UnhashableFeatureError,
        3,
        ("--sglang-version", "0.4.10", "--device", "cuda"),
        _hashing("0.4.10", "cuda"),
    ),
]
ACTIVE = [c for c in CASES if c.skip is None]
BATCH = [c for c in ACTIVE if not c.args]  # run together in one script call, one error line each


def _param(c: Case) -> Any:
    return pytest.param(c, id=c.id, marks=[pytest.mark.skip(reason=c.skip)] if c.skip else [])


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The folder that holds every case's folder, and the marker pickled code would create."""
    return tmp_path_factory.mktemp("bad")


@pytest.fixture(scope="module")
def built(root) -> dict[str, Path]:
    """Every active case's input, each made in its own folder."""
    out = {}
    for c in ACTIVE:
        (root / c.id).mkdir()
        out[c.id] = c.make(root / c.id)
    return out


@pytest.fixture(scope="module")
def valid_npy(root) -> str:
    """A valid feature file, for the cases whose problem is an argument."""
    return str(_valid_files(root / "valid")[".npy"])


@pytest.fixture
def no_code_ran(root, built):
    """Fails the test if any pickled call ran (it would have created the marker)."""
    yield
    assert not (root / MARKER).exists(), "loading a feature file ran pickled code"


def _check_line(line: str, path: Path, c: Case) -> None:
    assert line.startswith(f"mmhash: error: {path}"), line
    assert c.needle in line, line


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_in_process_cli(c, built, capsys, no_code_ran):
    """``main()`` returns the case's exit code and prints exactly one error line naming the path."""
    path = built[c.id]
    assert main([*(c.args or ("--sglang-version", "0.5.23")), str(path)]) == c.code
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.count("\n") == 1, err
    _check_line(err.rstrip("\n"), path, c)


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_api_raises_typed_error(c, built, no_code_ran):
    """The API raises the case's own :class:`MmhashError` subclass, with the same one-line message."""
    path = built[c.id]
    with pytest.raises(c.exc) as info:
        c.api(path)
    message = str(info.value)
    assert "\n" not in message and c.needle in message
    assert message.startswith(str(path)) or c.code == 3


def _script(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_mmhash.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_script_one_line_per_bad_path(built, no_code_ran):
    """One script call over every flagless case: exit 2 and exactly one error line per path."""
    proc = _script("--sglang-version", "0.5.23", "-j", "2", *(str(built[c.id]) for c in BATCH))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(BATCH), proc.stderr
    for c in BATCH:
        mine = [ln for ln in lines if ln.startswith(f"mmhash: error: {built[c.id]}")]
        assert len(mine) == 1, (c.id, mine)
        _check_line(mine[0], built[c.id], c)


@pytest.mark.parametrize("c", [_param(c) for c in CASES if c.args])
def test_script_flagged_case(c, built, no_code_ran):
    """Cases that need flags (versions, devices, --tensor) as their own script call."""
    proc = _script(*c.args, str(built[c.id]))
    assert proc.returncode == c.code and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    _check_line(proc.stderr.rstrip("\n"), built[c.id], c)


def test_bad_folder_does_not_hide_the_next_one(built, capsys):
    """Each bad folder gets its own line, and a good path after them is still hashed."""
    good = built["symlink-loop-folder"] / "a.npy"
    argv = [str(built["empty-folder"]), str(built["folder-of-unsupported-files"]), str(good)]
    assert main(["--json", "--sglang-version", "0.5.23", *argv]) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 2 and len(out.splitlines()) == 1


VERSION_CASES = [
    ("banana", "'banana' is not a version number"),
    ("0.5.0", "sglang 0.5.0 is not a released version"),
    ("99.0", "pass --allow-newer"),
]


@pytest.mark.parametrize("version,needle", VERSION_CASES)
def test_bad_version(version, needle, valid_npy, capsys):
    """An unknown or malformed version: exit 2 and one line from every entry point; UnknownVersionError."""
    path = valid_npy
    argv = ["--sglang-version", version, path]
    proc = _script(*argv)
    assert main(argv) == proc.returncode == 2
    for err in (capsys.readouterr().err, proc.stderr):
        assert err.count("\n") == 1 and err.startswith("mmhash: error: ") and needle in err, err
    with pytest.raises(UnknownVersionError, match=re.escape(needle)):
        hash_feature(load_feature(path), sglang_version=version)


def test_bad_device(valid_npy, capsys):
    """``--device tpu``: argparse refuses it (exit 2, usage then one error line); UnsupportedDeviceError."""
    path = valid_npy
    proc = _script("--device", "tpu", path)
    with pytest.raises(SystemExit) as info:
        main(["--device", "tpu", path])
    assert info.value.code == proc.returncode == 2
    for err in (capsys.readouterr().err, proc.stderr):
        assert "Traceback" not in err
        assert err.splitlines()[-1].startswith(
            "mmhash: error: argument --device: invalid choice: 'tpu'"
        )
    with pytest.raises(UnsupportedDeviceError, match="'tpu' is not one of"):
        hash_feature(load_feature(path), device="tpu")


LEAKS = [
    AssertionError("bad zip"),
    struct.error("unpack requires 8 bytes"),
    NotImplementedError("layout"),
    RecursionError("maximum recursion depth exceeded"),
    IndexError("tuple index out of range"),
    io.UnsupportedOperation("fileno"),
]


@pytest.mark.parametrize("leak", LEAKS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(
    "ext,target",
    [
        (".pt", "torch.load"),
        (".npy", "numpy.load"),
        (".npz", "numpy.load"),
        (".safetensors", "safetensors.safe_open"),
        (".png", "PIL.Image.open"),
    ],
)
def test_undocumented_parser_errors_become_feature_load_errors(
    leak, ext, target, tmp_path, monkeypatch, capsys
):
    """Whatever torch/numpy/safetensors/Pillow raise on a file surfaces as FeatureLoadError, exit 2."""
    path = _valid_files(tmp_path)[ext]

    def boom(*a, **k):
        raise leak

    monkeypatch.setattr(target, boom)
    with pytest.raises(
        FeatureLoadError, match=f"^{re.escape(str(path))}: not a readable .*{re.escape(str(leak))}"
    ):
        load_feature(path, key="x" if ext in (".npz", ".safetensors") else None)
    assert main(["--sglang-version", "0.5.23", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mmhash: error: {path}: ") and str(leak) in err


def test_memory_error_is_feature_too_large(tmp_path, monkeypatch):
    """A parser's MemoryError means the feature does not fit: FeatureTooLargeError, not a crash."""
    path = _valid_files(tmp_path)[".npy"]

    def boom(*a, **k):
        raise MemoryError("Unable to allocate 7.11 PiB")

    monkeypatch.setattr("numpy.load", boom)
    with pytest.raises(FeatureTooLargeError, match="needs more memory than is available"):
        load_feature(path)
