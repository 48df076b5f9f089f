"""Real SGLang in a child process, so that its harness never touches the process that asks.

The ``sglang`` golden implementation (``--mmhash-impl sglang``, ``--mmhash-update``) runs inside
the user's pytest process, but preparing a process for real SGLang changes it for good (import
hooks, patched torch attributes, ``TRITON_INTERPRET``, which also only works before triton is
imported). So :class:`SGLangProcess` starts ``python -m pytest_mmhash.oracle.worker``, which calls
:func:`.driver.start` there and answers one request at a time. Frames on the pipes are an 8-byte
big-endian length and a pickle (both ends are this package; nothing else is unpickled) in which
each tensor travels as a ``torch.save`` payload: plain pickle cannot rebuild float8 storages, and
``torch.save`` of a whole object would turn big-endian numpy arrays native.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from ..errors import GoldenError, error_text

_LEN = struct.Struct(">Q")


def _load_tensor(data: bytes) -> Any:
    """A tensor from its ``torch.save`` payload (dtype, strides and storage offset kept)."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


class _Pickler(pickle.Pickler):
    """Pickles tensors through ``torch.save`` and memory maps as plain arrays; the rest as usual.

    A pickled ``np.memmap`` comes back native-endian, so a loaded big-endian ``.npy`` goes as the
    ``ndarray`` view of its data (same dtype, strides and bytes).
    """

    def reducer_override(self, obj: Any) -> Any:
        np, torch = sys.modules.get("numpy"), sys.modules.get("torch")
        if np is not None and isinstance(obj, np.memmap):
            return np.asarray, (obj.view(np.ndarray),)
        if torch is None or not isinstance(obj, torch.Tensor):
            return NotImplemented
        buf = io.BytesIO()
        torch.save(obj, buf)
        return _load_tensor, (buf.getvalue(),)


def _send(stream: IO[bytes], obj: Any) -> None:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    data = buf.getvalue()
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def _recv(stream: IO[bytes]) -> Any:
    """The next frame, or ``EOFError`` when the other end has closed its pipe."""
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    data = stream.read(_LEN.unpack(head)[0])
    return pickle.loads(data)


class SGLangProcess:
    """The driver's ``sglang_version()`` and ``real_item()``, served by a child process.

    The child starts here and imports sglang before this returns; it exits when this process
    closes its stdin (:meth:`close`, or this process ending).
    """

    def __init__(self, python: str = sys.executable) -> None:
        # This copy of pytest_mmhash, after the caller's PYTHONPATH (which may put a release's
        # sglang source ahead of the venv's own, as tools/install-sglang.sh's env.sh does).
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), root]))
        env = {**os.environ, "PYTHONPATH": path}
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [python, "-m", "pytest_mmhash.oracle.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        self._version = str(self._ask(None))

    def sglang_version(self) -> str:
        """The version of the sglang the child imported."""
        return self._version

    def real_item(self, feature: Any, device: str) -> dict[str, Any]:
        """SGLang's ``set_pad_value`` on ``feature`` in the child: hash and pads, or the error."""
        return dict(self._ask((feature, device)))

    def close(self) -> None:
        """End the child (it exits on end of input)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)

    def _ask(self, request: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            if request is not None:
                _send(self._proc.stdin, request)
            status, value = _recv(self._proc.stdout)
        except (EOFError, BrokenPipeError):
            raise GoldenError(f"the real-SGLang worker process died: {self._died()}") from None
        if status != "ok":
            raise GoldenError(f"the real-SGLang worker process failed: {value}")
        return value

    def _died(self) -> str:
        try:
            code = self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        return f"exit status {code}" + (f"; stderr: {' | '.join(tail)}" if tail else "")


def main() -> int:
    """The child: start real SGLang, then answer ``(feature, device)`` requests until end of input."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever SGLang prints must not corrupt the replies
    inp = sys.stdin.buffer
    from . import driver

    try:
        _send(out, ("ok", driver.start()))
    except Exception as e:  # the harness cannot run here: say why, then stop
        _send(out, ("error", f"starting real SGLang: {error_text(e)}"))
        return 1
    while True:
        try:
            feature, device = _recv(inp)
        except EOFError:
            return 0
        try:
            _send(out, ("ok", driver.real_item(feature, device)))
        except Exception as e:  # a harness error (SGLang's own errors are real_item's values)
            _send(out, ("error", error_text(e)))


if __name__ == "__main__":
    sys.exit(main())
