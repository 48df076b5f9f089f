"""Reading a request file: an OpenAI chat request or a native ``/generate`` body.

Media are local paths, ``file://`` URLs or base64 ``data:`` URLs (remote URLs are never fetched).
Per-image options that SGLang keys Qwen3-VL artifacts by (``detail``, ``max_dynamic_patch``, ...)
travel with each :class:`Media`. Every failure is a one-line :class:`RequestError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..errors import MmhashError
from .errors import RequestError
from .media import read_media
from .predictor import Request
from .types import Media, Modality

#: ``ImageData`` fields the chat front end fills from an ``image_url`` part (0.5.23).
CHAT_IMAGE_OPTIONS = ("detail", "max_dynamic_patch", "max_long_side_pixel")
GENERATE_FIELDS: dict[str, Modality] = {
    "image_data": "image",
    "video_data": "video",
    "audio_data": "audio",
}


def read_request_file(path: str | os.PathLike[str]) -> list[Request]:
    """The requests in a JSON file (a batched ``/generate`` body gives several)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            body = json.load(f)
    except OSError as e:
        raise RequestError(f"{name}: cannot read it ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(f"{name}: not JSON ({e})") from None
    try:
        return parse_request(body)
    except MmhashError as e:
        raise type(e)(f"{name}: {e}") from None


def parse_request(body: Any) -> list[Request]:
    """An OpenAI chat request (``messages``) or a ``/generate`` body (``image_data``, ...)."""
    if not isinstance(body, Mapping):
        raise RequestError(f"expected a JSON object, got {type(body).__name__}")
    if "messages" in body:
        if "mm_hashes" in body:
            raise RequestError(
                "mm_hashes is a /generate field; the OpenAI chat API does not take it"
            )
        return [Request(_chat_media(body["messages"]))]
    if not any(k in body for k in GENERATE_FIELDS):
        raise RequestError(
            "neither an OpenAI chat request ('messages') nor a /generate body with "
            "image_data/video_data/audio_data"
        )
    return _generate_requests(body)


def _chat_media(messages: Any) -> tuple[Media, ...]:
    if not isinstance(messages, list):
        raise RequestError("'messages' is not a list")
    media: list[Media] = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind in ("image_url", "input_image"):
                media.append(_chat_image(part, where))
            elif kind == "video_url":
                media.append(read_media(_url(part.get("video_url"), where), "video"))
            elif kind == "audio_url":
                media.append(read_media(_url(part.get("audio_url"), where), "audio"))
    if not media:
        raise RequestError("the chat request holds no image_url, video_url or audio_url part")
    return tuple(media)


def _chat_image(part: Mapping[str, Any], where: str) -> Media:
    obj = part.get("image_url") or {}
    if isinstance(obj, str):
        obj = {"url": obj, "detail": part.get("detail")}
    url = _url(obj, where)
    detail = obj.get("detail") or "auto"
    options = {"detail": "auto" if detail == "default" else detail}
    options.update({k: obj[k] for k in CHAT_IMAGE_OPTIONS[1:] if obj.get(k) is not None})
    m = read_media(url, "image")
    return Media(m.source, m.data, "image", options)


def _url(obj: Any, where: str) -> str:
    url = obj.get("url") if isinstance(obj, Mapping) else obj
    if not isinstance(url, str) or not url:
        raise RequestError(f"{where}: no url")
    return url


def _generate_requests(body: Mapping[str, Any]) -> list[Request]:
    batched = (
        isinstance(body.get("text"), list)
        or isinstance(body.get("input_ids"), list)
        and (body["input_ids"] and isinstance(body["input_ids"][0], list))
    )
    count = len(body["text"] if isinstance(body.get("text"), list) else body.get("input_ids", []))
    if not batched:
        return [_one_generate(body, None)]
    return [_one_generate(body, k) for k in range(count)]


def _one_generate(body: Mapping[str, Any], k: int | None) -> Request:
    media: list[Media] = []
    for name, modality in GENERATE_FIELDS.items():
        value = body.get(name)
        if k is not None and isinstance(value, list):
            value = value[k] if k < len(value) else None
        for j, item in enumerate(_as_list(value)):
            media.append(_generate_item(item, modality, f"{name}[{j}]"))
    hashes = body.get("mm_hashes")
    if k is not None and isinstance(hashes, list) and hashes and isinstance(hashes[0], list):
        hashes = hashes[k] if k < len(hashes) else None
    if hashes is not None and not (
        isinstance(hashes, list) and all(isinstance(h, str) for h in hashes)
    ):
        raise RequestError("mm_hashes is not a list of hex strings")
    if not media:
        raise RequestError("the /generate body holds no media")
    return Request(tuple(media), tuple(hashes) if hashes else None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _generate_item(item: Any, modality: Modality, where: str) -> Media:
    if isinstance(item, str):
        return read_media(item, modality)
    if isinstance(item, Mapping) and isinstance(item.get("url"), str):
        m = read_media(item["url"], modality)
        options = {k: v for k, v in item.items() if k != "url"}
        return Media(m.source, m.data, modality, options)
    raise RequestError(f"{where}: expected a path/URL string or an object with 'url'")
