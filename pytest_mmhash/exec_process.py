"""One external hasher process speaking protocol v1 (:mod:`pytest_mmhash.exec_protocol`).

Started lazily on the first request (so once per pytest process or xdist worker), it gets one
JSON line per request on stdin and must answer one line on stdout within ``timeout`` seconds.
Nothing it does can hang the caller: a late reply stops the program and fails that request and
every later one; a program that exits fails every later request with its exit status and the
tail of its stderr.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from .errors import ExecProtocolError
from .exec_protocol import PartStore, feature_request, mm_hash_request, parse_reply

DEFAULT_TIMEOUT = 60.0
#: How much of the program's stderr a crash report quotes.
STDERR_TAIL_BYTES = 600


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    """Reader thread: the program's stdout, line by line; None at end of file."""
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(None)


class ExecHasher:
    """The program ``command`` (split like a shell would, run without one) as a hasher."""

    def __init__(self, command: str, timeout: float | None = None):
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.argv = shlex.split(command)
        if not self.argv:
            raise ExecProtocolError("exec: needs a command, e.g. exec:./my-hasher --flag")
        if not 0 < timeout < float("inf"):
            raise ExecProtocolError(
                f"--mmhash-exec-timeout must be a positive number of seconds, got {timeout:g}"
            )
        self.command, self.timeout = command, timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._dir: Path | None = None
        self._store: PartStore | None = None
        self._dead: str | None = None  # why every later request fails
        self._count = 0

    # ------------------------------------------------------------------ requests

    def hash_feature(self, feature: Any, sglang_version: str, device: str) -> dict[str, Any]:
        """The program's ``{"hash", "pad_values"}`` or ``{"error"}`` for a feature."""
        self._start()
        assert self._store is not None
        return self.ask(
            feature_request(self._store, self._next_id(), sglang_version, device, feature)
        )

    def pads_of_mm_hash(self, mm_hash: str, sglang_version: str) -> dict[str, Any]:
        """The program's answer for a caller's ``mm_hashes`` entry (a pad-only request)."""
        return self.ask(mm_hash_request(self._next_id(), sglang_version, mm_hash))

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request, wait for its reply line; :class:`ExecProtocolError` says what went wrong."""
        self._start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        rid = request["id"]
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # it exited; the read below reports how
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self._stop()
            self._dead = (
                f"the program was stopped after it gave no reply within {self.timeout:g} s "
                f"to request {rid!r}"
            )
            raise ExecProtocolError(
                f"{self._label()}: no reply within {self.timeout:g} s to request {rid!r} "
                f"(--mmhash-exec-timeout); the program was stopped"
            ) from None
        if line is None:
            self._dead = self._exit_report()
            raise ExecProtocolError(f"{self._label()}: no reply to request {rid!r}: {self._dead}")
        try:
            return parse_reply(line.decode("utf-8", "replace"), rid)
        except ExecProtocolError as e:
            raise ExecProtocolError(f"{self._label()}: request {rid!r}: {e}") from None

    # ------------------------------------------------------------------ the process

    def _label(self) -> str:
        return f"exec:{self.command}"

    def _next_id(self) -> str:
        self._count += 1
        return str(self._count)

    def _start(self) -> None:
        """Start the program once; refuse every request after it died or was stopped."""
        if self._dead is not None:
            raise ExecProtocolError(f"{self._label()}: {self._dead}")
        if self._proc is not None:
            return
        self._dir = Path(tempfile.mkdtemp(prefix="mmhash-exec-"))
        self._store = PartStore(self._dir / "parts")
        self._stderr = open(self._dir / "stderr", "w+b")  # noqa: SIM115 (closed in close())
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=os.name == "posix",  # its children are stopped with it
            )
        except OSError as e:
            self._dead = f"the program could not be started: {e}"
            raise ExecProtocolError(f"{self._label()}: {self._dead}") from None
        assert self._proc.stdout is not None
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()

    def _exit_report(self) -> str:
        """How the program ended: exit status and the tail of its stderr."""
        assert self._proc is not None
        try:
            status = self._proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._stop()
            status = self._proc.wait()
            report = "it closed its stdout but did not exit, and was stopped"
        else:
            report = f"the program exited with status {status}"
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - STDERR_TAIL_BYTES))
        tail = self._stderr.read().decode("utf-8", "replace").strip()
        return f"{report}; stderr tail: {tail!r}" if tail else f"{report}; stderr was empty"

    def _stop(self) -> None:
        """Kill the program (and its process group) and reap it."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()

    def close(self) -> None:
        """End the session: close stdin (the program should exit), stop it if it does not, remove the parts."""
        proc = self._proc
        if proc is not None:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=min(self.timeout, 5.0))
            except subprocess.TimeoutExpired:
                self._stop()
            self._stderr.close()
            self._proc = None
            self._dead = "the session is over"
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
