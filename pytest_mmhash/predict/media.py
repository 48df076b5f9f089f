"""Reading a request's media: local paths, ``file://`` URLs and ``data:`` URLs; remote URLs never.

Every failure is a :class:`MediaError` whose one-line message names the media and the problem.
"""

from __future__ import annotations

import base64
import binascii
import os
from urllib.parse import unquote, urlparse

from ..errors import first_line
from .errors import MediaError
from .types import Media, Modality

REMOTE_SCHEMES = ("http", "https", "ftp", "s3", "gs")
#: File names that say audio, and the data URL type prefix that does.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac")
AUDIO_MIME = "data:audio/"


def read_media(source: str | os.PathLike[str], modality: Modality | None = None) -> Media:
    """The :class:`Media` a user names: a path, a ``file://`` URL or a base64 ``data:`` URL.

    ``modality`` ``None`` means: audio when the bytes, the name or the data URL's type say so
    (:func:`sniff_modality`), else image.
    """
    text = os.fspath(source)
    if text.startswith("data:"):
        data = _decode_data_url(text)
    else:
        scheme = urlparse(text).scheme.lower()
        if scheme in REMOTE_SCHEMES:
            raise MediaError(
                f"{_short(text)}: remote URLs are never fetched; download it and pass the local file"
            )
        path = _file_url_path(text) if scheme == "file" else text
        data = _read_file(path, text)
    return Media(text, data, modality or sniff_modality(text, data))


def sniff_modality(source: str, data: bytes) -> Modality:
    """``audio`` for WAV, FLAC, Ogg and MP3 bytes, an audio file name or an ``audio/`` data URL;
    ``image`` otherwise (the name counts so that a broken ``.wav`` gets an audio error)."""
    head = data[:12]
    if (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:4] in (b"fLaC", b"OggS"):
        return "audio"
    if head[:3] == b"ID3":
        return "audio"
    if source.lower().startswith(AUDIO_MIME):
        return "audio"
    if not source.startswith("data:") and source.lower().endswith(AUDIO_SUFFIXES):
        return "audio"
    return "image"


def _file_url_path(url: str) -> str:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise MediaError(f"{url}: file:// URL names another host ({parsed.netloc})")
    return unquote(parsed.path)


def _read_file(path: str, label: str) -> bytes:
    if os.path.isdir(path):
        raise MediaError(f"{label}: is a directory, not a media file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise MediaError(f"{label}: cannot read it ({e.strerror or first_line(e)})") from None
    if not data:
        raise MediaError(f"{label}: the file is empty")
    return data


def _decode_data_url(url: str) -> bytes:
    head, sep, payload = url.partition(",")
    if not sep:
        raise MediaError(f"{_short(url)}: data URL has no ',' before its payload")
    if not head.endswith(";base64"):
        raise MediaError(f"{_short(url)}: only base64 data URLs are supported (';base64,')")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MediaError(f"{_short(url)}: data URL payload is not valid base64 ({e})") from None
    if not data:
        raise MediaError(f"{_short(url)}: data URL payload is empty")
    return data


def _short(text: str, limit: int = 60) -> str:
    """A long URL cut for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."
