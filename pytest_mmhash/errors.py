"""The exceptions pytest-mmhash raises (one hierarchy under :class:`MmhashError`) and its warning.

Every message is one line that names the input (file, version, device) and the problem, so the
CLI can print it as is and a pytest failure stays readable.
"""

from __future__ import annotations

#: Exit statuses of the ``mmhash`` commands: the error classes below carry theirs.
EXIT_OK, EXIT_BAD_INPUT, EXIT_UNHASHABLE, EXIT_NOT_EXACT = 0, 2, 3, 4


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): for one-line errors."""
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0].strip()


def error_text(e: BaseException) -> str:
    """``"Type: first line"``: how a golden value records the exception an implementation raised."""
    lines = str(e).splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


class MmhashError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class UnknownVersionError(MmhashError, ValueError):
    """The SGLang version is malformed, not a release, or newer than the newest known one."""


class NewerReleaseError(UnknownVersionError):
    """The version is newer than the newest release known (``newest``); hashing may assume that
    release's schemes (``allow_newer``), installing cannot."""

    def __init__(self, message: str, newest: str) -> None:
        super().__init__(message)
        self.newest = newest


class BadArgumentError(MmhashError, ValueError):
    """A command-line or API argument is malformed (a hex string that is not hex, ...)."""


class UnsupportedDeviceError(MmhashError, ValueError):
    """The device is neither ``"cpu"`` nor ``"cuda"``."""


class FeatureLoadError(MmhashError):
    """A feature file or folder cannot be read safely (missing, truncated, pickled code, ...)."""


class FeatureTooLargeError(FeatureLoadError):
    """A feature would not fit in memory and cannot be streamed."""


class UnhashableFeatureError(MmhashError, TypeError):
    """Real SGLang raises for this feature at this version; we say so instead of inventing a value."""

    exit_code = EXIT_UNHASHABLE


class UnreproducibleHashError(UnhashableFeatureError):
    """SGLang's hash at this version is not deterministic (Python ``hash()``), so no value exists."""


class GoldenError(MmhashError):
    """A golden manifest is malformed, or a golden operation is refused."""


class ExecProtocolError(MmhashError):
    """An external hasher (``--mmhash-impl exec:``) broke protocol v1: no, late or malformed reply."""


class NumpyFallbackWarning(UserWarning):
    """numba cannot be imported, so the CUDA-path emulation runs on the (much slower) numpy code."""


class InstallError(MmhashError):
    """A step of ``mmhash install-sglang`` failed (its own output is shown above the message)."""

    exit_code = 1
