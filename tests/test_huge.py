"""Huge features: hashed streaming (memory-mapped) with bounded memory, or refused with FeatureTooLargeError.

``MMHASH_HUGE=1`` adds a 30 GiB sparse ``.npy`` (larger than most machines' RAM); it takes a minute.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib import format as npy_format

from pytest_mmhash import FeatureTooLargeError, hash_feature, load_feature, loaders
from pytest_mmhash.cli import main

MiB, GiB = 1 << 20, 1 << 30


def sparse_npy(path: Path, nbytes: int) -> Path:
    """A ``.npy`` of ``nbytes`` zero bytes (uint8) that takes no disk space: header, then a hole."""
    header = io.BytesIO()
    npy_format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)}
    )
    with open(path, "wb") as f:
        f.write(header.getvalue())
        f.truncate(len(header.getvalue()) + nbytes)
    return path


def measured(
    argv: list[str], data_limit: int | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``mmhash argv``; also its peak anonymous RSS and peak RSS (KiB, polled) and wall time (s).

    Memory-mapped file pages count in RSS but the kernel drops them under pressure; anonymous
    memory is what a non-streaming loader would need, so that is what must stay small.
    ``data_limit`` caps the child's heap (RLIMIT_DATA): reading the file into memory would fail.
    ``env`` adds environment variables for the child.
    """

    def limit() -> None:
        if data_limit:
            resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))

    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_mmhash.cli", *argv],
        preexec_fn=limit,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = {"RssAnon": 0, "VmHWM": 0}
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    field = line.split(":")[0]
                    if field in peak:
                        peak[field] = max(peak[field], int(line.split()[1]))
        except (OSError, ValueError):  # the process ended between poll() and open()
            pass
        time.sleep(0.01)
    out, err = proc.communicate()
    peak["seconds"] = round(time.perf_counter() - start, 1)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), peak


def test_sparse_npy_hashes_streaming_under_a_heap_limit(tmp_path):
    """A 256 MiB ``.npy`` hashes with a 128 MiB heap limit, to the value of the same bytes in memory."""
    path = sparse_npy(tmp_path / "zeros.npy", 256 * MiB)
    proc, peak = measured(["--json", "--sglang-version", "0.5.23", str(path)], data_limit=128 * MiB)
    assert proc.returncode == 0, proc.stderr
    expected = hash_feature(np.zeros(256 * MiB, dtype=np.uint8), sglang_version="0.5.23")
    assert json.loads(proc.stdout)["hash"] == expected.hash
    assert peak["RssAnon"] < 64 * 1024, peak


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_npy_peak_rss_bounded_with_16_threads(device, tmp_path):
    """A 256 MiB ``.npy`` stays under 200 MB peak RSS (file pages included) with 16 worker threads.

    The compiled CUDA-path backend keeps a fixed number of bytes in flight whatever its thread
    count, and the file's pages are dropped as soon as the reader is past them; on the old
    per-thread window (two 4 MiB blocks per thread) this run peaked near the file size.
    """
    path = sparse_npy(tmp_path / "zeros.npy", 256 * MiB)
    argv = ["--json", "--sglang-version", "0.5.23", "--device", device, str(path)]
    proc, peak = measured(argv, env={"MMHASH_THREADS": "16"})
    assert proc.returncode == 0, proc.stderr
    zeros = np.zeros(256 * MiB, dtype=np.uint8)
    assert (
        json.loads(proc.stdout)["hash"]
        == hash_feature(zeros, sglang_version="0.5.23", device=device).hash
    )
    assert peak["VmHWM"] < 200e6 / 1024, peak


def test_memory_mapped_formats_ignore_available_memory(tmp_path, monkeypatch):
    """``.npy``, zip ``.pt`` and ``.safetensors`` are mapped, so little available memory does not refuse them."""
    t = torch.arange(4096, dtype=torch.float32)
    np.save(tmp_path / "a.npy", t.numpy())
    torch.save(t, tmp_path / "a.pt")
    from safetensors.torch import save_file

    save_file({"x": t}, str(tmp_path / "a.safetensors"))
    monkeypatch.setattr(loaders, "_available_memory", lambda: 1000)
    for name in ("a.npy", "a.pt", "a.safetensors"):
        assert hash_feature(load_feature(tmp_path / name)).hash == hash_feature(t).hash


def test_legacy_pt_larger_than_memory_is_refused(tmp_path, monkeypatch, capsys):
    """A legacy (non-zip) ``.pt`` is read whole, so one larger than available memory is refused."""
    path = tmp_path / "legacy.pt"
    torch.save(torch.zeros(4096), path, _use_new_zipfile_serialization=False)
    monkeypatch.setattr(loaders, "_available_memory", lambda: 1000)
    with pytest.raises(
        FeatureTooLargeError, match="legacy .non-zip. torch format, which cannot be memory-mapped"
    ):
        load_feature(path)
    assert main(["--sglang-version", "0.5.23", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and err.startswith(f"mmhash: error: {path}: ")
        and "only 1000 bytes" in err
    )


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "compressed"])
def test_npz_entry_larger_than_memory_is_refused(save, tmp_path, monkeypatch, capsys):
    """An ``.npz`` entry is decompressed into memory, so one larger than available memory is refused."""
    path = tmp_path / "big.npz"
    save(path, x=np.zeros(8192, dtype=np.uint8))
    monkeypatch.setattr(loaders, "_available_memory", lambda: 1000)
    with pytest.raises(
        FeatureTooLargeError, match=r"entry 'x' needs 8\d{3} bytes in memory .* only 1000"
    ):
        load_feature(path)
    assert main(["--sglang-version", "0.5.23", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mmhash: error: {path}: entry 'x' needs")


@pytest.mark.parametrize("descr", ["|V0", "|S0"])
def test_zero_byte_items_in_astronomic_shapes_hash_at_once(descr, tmp_path):
    """A 128-byte ``.npy`` of 2^62 zero-byte items holds no bytes: it hashes at once, like SGLang's empty bytes."""
    path = tmp_path / "zero.npy"
    header = io.BytesIO()
    npy_format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": (2**62,)}
    )
    path.write_bytes(header.getvalue())
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest_mmhash.cli",
                "--json",
                "--sglang-version",
                "0.5.23",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            "hashing 2^62 zero-byte items ran past 10 s: it walks chunks of elements, not of bytes"
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hash"] == hash_feature(b"", sglang_version="0.5.23").hash


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts)."""
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            _, mount, fstype = line.split()[:3]
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


@pytest.mark.skipif(
    not os.environ.get("MMHASH_HUGE"), reason="opt-in: MMHASH_HUGE=1 hashes a 30 GiB sparse file"
)
def test_npy_larger_than_ram_hashes_streaming(tmp_path):
    """A 30 GiB ``.npy``, larger than RAM, hashes with a small anonymous RSS and is never OOM-killed."""
    if _filesystem(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip(
            f"{tmp_path} is in memory: reading a sparse file there would allocate its pages"
        )
    size = 30 * GiB
    path = sparse_npy(tmp_path / "huge.npy", size)
    proc, peak = measured(["--json", "--sglang-version", "0.5.23", str(path)], data_limit=1 * GiB)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(
        f"\n30 GiB sparse .npy (RAM {ram / GiB:.1f} GiB): exit {proc.returncode}, {peak['seconds']} s, "
        f"peak RssAnon {peak['RssAnon'] / 1024:.0f} MiB, peak VmHWM {peak['VmHWM'] / 1024:.0f} MiB (file pages)"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == str(path)
    assert peak["RssAnon"] < 256 * 1024, peak
