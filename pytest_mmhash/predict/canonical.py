"""SGLang's canonical JSON for cache identities (``multimodal/cache/identity.py``, 0.5.20-0.5.23).

Every value is wrapped as ``{"type": ..., ...}`` so distinct Python values never collide, then
dumped with sorted keys and compact separators. Only the JSON-like types a fingerprint or request
option can hold are supported; anything else raises ``ValueError`` as SGLang does.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

PREFIX = "sha256:"


def canonicalize(value: Any) -> Any:
    """The typed tree SGLang's ``_canonicalize`` builds for ``value``."""
    if value is None:
        return {"type": "none"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float64", "bits": struct.pack("!d", value).hex()}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": "bytes", "value": bytes(value).hex()}
    if isinstance(value, Mapping):
        items = [[canonicalize(k), canonicalize(v)] for k, v in value.items()]
        items.sort(key=lambda pair: _sort_key(pair[0]))
        return {"type": "mapping", "items": items}
    if isinstance(value, list):
        return {"type": "list", "items": [canonicalize(v) for v in value]}
    if isinstance(value, tuple):
        return {"type": "tuple", "items": [canonicalize(v) for v in value]}
    raise ValueError(f"unsupported value in a multimodal cache identity: {type(value).__name__}")


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical_json(value: Any) -> bytes:
    """SGLang's ``_canonical_json``: the canonical tree, sorted keys, compact."""
    return json.dumps(canonicalize(value), sort_keys=True, separators=(",", ":")).encode()


def digest(payload: bytes) -> str:
    """``sha256:`` + the hex SHA-256 of ``payload`` (SGLang's ``_digest_bytes``)."""
    return PREFIX + hashlib.sha256(payload).hexdigest()
