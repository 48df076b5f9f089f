"""The errors of request-level prediction, under the package's :class:`MmhashError` (exit 2)."""

from __future__ import annotations

from ..errors import EXIT_NOT_EXACT, MmhashError, UnhashableFeatureError


class MediaError(MmhashError):
    """A media item cannot be read: missing file, bad data URL, remote URL (never fetched)."""


class ModelDirError(MmhashError):
    """The model directory is missing a file SGLang needs, or holds malformed JSON."""


class RequestError(MmhashError):
    """A request file is not an OpenAI chat request or a ``/generate`` body we can read."""


class UnsupportedModelError(MmhashError):
    """SGLang has no multimodal processor for this model, or the method cannot serve it."""


class ProcessorFailedError(MmhashError):
    """SGLang's own processor raised something other than our errors (import, decode, ...)."""


class NotExactError(MmhashError):
    """``--strict``: a prediction is not exact on this machine."""

    exit_code = EXIT_NOT_EXACT


class RefusedHashesError(UnhashableFeatureError):
    """SGLang refuses the client's ``mm_hashes`` (a release without the field, Kimi models)."""


class BadDeploymentError(MmhashError):
    """A deployment setting SGLang does not have, or a malformed value."""
