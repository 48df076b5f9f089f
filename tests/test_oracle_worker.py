"""The real-SGLang worker process: the plumbing of ``--mmhash-impl sglang``, on a stand-in sglang.

A tiny ``sglang`` package (written here, answering with this engine's values) stands in for real
SGLang so that the protocol, the start-up, the error paths and the isolation of the asking
process can be tested everywhere; what real SGLang computes is the oracle tests' and the golden
regression job's business.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_mmhash import hash_feature
from pytest_mmhash.errors import GoldenError
from pytest_mmhash.oracle.worker import SGLangProcess

_SCHEDULE_BATCH = textwrap.dedent(
    """
    import os
    from pytest_mmhash import UnhashableFeatureError, hash_feature

    class Modality:
        IMAGE = "image"

    class MultimodalDataItem:
        def __init__(self, modality, feature=None, hash=None):
            self.feature, self.hash = feature, hash

        def set_pad_value(self):
            if os.environ.get("STAND_IN_CRASH"):
                os._exit(3)
            leaves = self.feature if isinstance(self.feature, list) else [self.feature]
            device = "cuda" if leaves and getattr(leaves[0], "is_cuda", False) else "cpu"
            try:
                m = hash_feature(self.feature, sglang_version="0.5.23", device=device)
            except UnhashableFeatureError:
                raise TypeError("object supporting the buffer API required")
            self.hash, self.pad_values = m.hash, list(m.pad_values)
    """
)


def _stand_in(root: Path, *, broken: bool = False) -> Path:
    """A stand-in ``sglang`` 0.5.23 package under ``root`` (its import prints to stdout)."""
    managers = root / "sglang" / "srt" / "managers"
    managers.mkdir(parents=True)
    init = 'print("sglang says hello on stdout")\n__version__ = "0.5.23"\n'
    (root / "sglang" / "__init__.py").write_text(
        init + ("raise ImportError('no libfoo')\n" if broken else "")
    )
    (root / "sglang" / "srt" / "__init__.py").write_text("")
    (managers / "__init__.py").write_text("")
    (managers / "mm_utils.py").write_text("")
    (managers / "schedule_batch.py").write_text(_SCHEDULE_BATCH)
    return root


@pytest.fixture
def stand_in_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(_stand_in(tmp_path)), *sys.path]))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return tmp_path


def test_worker_answers_in_its_own_process(stand_in_path):
    meta_path, environ = list(sys.meta_path), dict(os.environ)
    proc = SGLangProcess()
    try:
        assert proc.sglang_version() == "0.5.23"
        x = torch.arange(1000.0).reshape(10, 100)
        for device in ("cpu", "cuda"):  # cuda: the driver hands over a FakeCuda tensor
            m = hash_feature(x, sglang_version="0.5.23", device=device)
            assert proc.real_item(x, device) == {"hash": m.hash, "pad_values": list(m.pad_values)}
        assert proc.real_item([torch.ones(2), 3], "cpu") == {
            "error": "TypeError: object supporting the buffer API required"
        }
    finally:
        proc.close()
    assert "sglang" not in sys.modules  # nothing of it, nor of its harness, came here
    assert list(sys.meta_path) == meta_path and dict(os.environ) == environ
    assert proc._proc.returncode == 0


def test_a_sglang_that_cannot_start_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(_stand_in(tmp_path, broken=True)), *sys.path])
    )
    with pytest.raises(GoldenError, match="failed: starting real SGLang: ImportError: no libfoo"):
        SGLangProcess()


def test_a_worker_that_dies_says_how(stand_in_path, monkeypatch):
    monkeypatch.setenv("STAND_IN_CRASH", "1")
    proc = SGLangProcess()
    with pytest.raises(GoldenError, match="worker process died: exit status 3"):
        proc.real_item(torch.ones(4), "cpu")


@pytest.mark.parametrize(
    "feature",
    [
        torch.arange(6.0).to(torch.float8_e4m3fn),  # plain pickle cannot rebuild float8 storages
        torch.arange(12.0).reshape(3, 4).t(),  # a view keeps its strides across the pipe
        [torch.ones(2, dtype=torch.bfloat16), torch.arange(3)],
        np.arange(6, dtype=">f4"),  # torch.save would make it native-endian
        np.asfortranarray(np.arange(6, dtype="<i2").reshape(2, 3)),
        "memmap-big-endian",  # a loaded .npy: pickling the memmap itself loses the byte order
    ],
    ids=["float8", "transposed-view", "list", "numpy-big-endian", "numpy-fortran", "memmap"],
)
def test_frames_carry_every_feature_unchanged(feature, tmp_path):
    """What the parent sends is what the worker hashes: dtype, layout and bytes survive."""
    import io

    from pytest_mmhash.oracle.worker import _recv, _send

    if isinstance(feature, str):  # made here: a memmap needs a file
        np.save(tmp_path / "be.npy", np.arange(6, dtype=">f4"))
        feature = np.load(tmp_path / "be.npy", mmap_mode="r")
    buf = io.BytesIO()
    _send(buf, {"feature": feature})
    buf.seek(0)
    back = _recv(buf)["feature"]
    pairs = zip(feature, back, strict=True) if isinstance(feature, list) else [(feature, back)]
    for sent, got in pairs:
        assert got.dtype == sent.dtype
        if isinstance(sent, np.ndarray):
            assert got.strides == sent.strides and got.tobytes("A") == sent.tobytes("A")
        else:
            assert got.stride() == sent.stride()
            assert got.contiguous().view(torch.uint8).equal(sent.contiguous().view(torch.uint8))
