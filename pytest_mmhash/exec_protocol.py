"""Protocol v1 between the harness and an external hasher (docs/spec.md section 11).

Pure data: request objects built from features (their raw bytes written once to a
:class:`PartStore`), and the validation of one reply line. No processes here
(:mod:`pytest_mmhash.exec_process`), no pytest. torch and numpy are touched only through the
feature objects themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ExecProtocolError
from .features import is_ndarray, is_tensor

PROTOCOL_VERSION = 1
#: The fields a reply may carry: ``{"id", "hash", "pad_values"}`` or ``{"id", "error"}``.
REPLY_FIELDS = frozenset({"id", "hash", "pad_values", "error"})


class PartStore:
    """A folder of ``<sha256>.bin`` files, each the concatenated raw parts of one feature.

    Content-addressed, so a feature asked for on several paths or releases is written once.
    ``relative_to`` set: request paths are relative to it (an export); else absolute.
    """

    def __init__(self, root: str | os.PathLike, relative_to: str | os.PathLike | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.relative_to = Path(relative_to).resolve() if relative_to is not None else None

    def put(self, chunks: Iterable[memoryview]) -> tuple[str, list[int]]:
        """Write the chunks back to back (once per content); the path and each chunk's offset."""
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        digest, offsets, pos = hashlib.sha256(), [], 0
        try:
            with os.fdopen(fd, "wb") as f:
                for c in chunks:
                    offsets.append(pos)
                    digest.update(c)
                    f.write(c)
                    pos += c.nbytes
            final = self.root / f"{digest.hexdigest()}.bin"
            if final.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        path = final if self.relative_to is None else final.relative_to(self.relative_to)
        return path.as_posix(), offsets


def _tensor_part(t: Any) -> tuple[dict[str, Any], memoryview]:
    """A torch tensor's dtype, shape and raw C-order bytes (its own dtype, as SGLang stores it)."""
    import torch

    flat = t.detach().cpu().contiguous().reshape(-1)
    meta = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}
    return meta, flat.view(torch.uint8).numpy().data


def _ndarray_part(a: Any) -> tuple[dict[str, Any], memoryview]:
    """A numpy array's dtype (``dtype.str``: byte order kept) and its C-order bytes as stored."""
    import numpy as np

    c = np.ascontiguousarray(a).reshape(-1)
    return {"dtype": a.dtype.str, "shape": list(a.shape)}, c.view(np.uint8).data


def _layout(x: list | tuple, leaves: list[Any]) -> list[Any]:
    """The nesting of a list of tensors as JSON arrays of part indices; fills ``leaves`` in order."""
    out: list[Any] = []
    for v in x:
        if isinstance(v, list):
            out.append(_layout(v, leaves))
        elif is_tensor(v):
            out.append(len(leaves))
            leaves.append(v)
        else:
            raise ExecProtocolError(
                f"protocol v{PROTOCOL_VERSION} cannot express a list holding "
                f"{type(v).__name__}: only (nested) lists of torch tensors"
            )
    return out


def describe_feature(feature: Any) -> tuple[str, list[tuple[dict[str, Any], memoryview]], Any]:
    """``(kind, [(part meta, raw bytes)], layout)`` of a feature, parts in the order SGLang hashes.

    ``layout`` is None except for lists and tuples. Raises :class:`ExecProtocolError` for a
    feature that protocol v1 has no form for.
    """
    if is_tensor(feature):
        return "tensor", [_tensor_part(feature)], None
    if is_ndarray(feature):
        return "ndarray", [_ndarray_part(feature)], None
    if isinstance(feature, bytes | bytearray):
        raw = memoryview(bytes(feature))
        return "bytes", [({"dtype": "uint8", "shape": [raw.nbytes]}, raw)], None
    if isinstance(feature, list | tuple):
        leaves: list[Any] = []
        layout = _layout(feature, leaves)
        kind = "list" if isinstance(feature, list) else "tuple"
        return kind, [_tensor_part(t) for t in leaves], layout
    raise ExecProtocolError(
        f"protocol v{PROTOCOL_VERSION} cannot express a {type(feature).__name__} feature "
        f"(tensor, ndarray, bytes, or a list/tuple of tensors)"
    )


def feature_request(
    store: PartStore, request_id: str, sglang_version: str, device: str, feature: Any
) -> dict[str, Any]:
    """The request object for one feature; its parts are written to ``store`` (once per content)."""
    kind, parts, layout = describe_feature(feature)
    path, offsets = store.put(raw for _, raw in parts)
    req = _request(
        request_id,
        sglang_version,
        device=device,
        kind=kind,
        parts=[
            {**meta, "path": path, "offset": off, "nbytes": raw.nbytes}
            for (meta, raw), off in zip(parts, offsets, strict=True)
        ],
    )
    if layout is not None:
        req["layout"] = layout
    return req


def _request(request_id: str, sglang_version: str, **fields: Any) -> dict[str, Any]:
    """A request object: the fields every form carries, then the form's own."""
    return {"v": PROTOCOL_VERSION, "id": request_id, "sglang_version": sglang_version, **fields}


def mm_hash_request(request_id: str, sglang_version: str, mm_hash: str) -> dict[str, Any]:
    """A pad-only request: the item a caller's ``mm_hashes`` entry ``mm_hash`` makes."""
    return _request(request_id, sglang_version, mm_hash=mm_hash)


def preset_hash_request(request_id: str, sglang_version: str, h: int) -> dict[str, Any]:
    """A pad-only request: the item whose hash is ``h`` before ``set_pad_value`` (every release but
    0.4.6.post5, whose ``set_pad_value`` hashes the feature again)."""
    return _request(request_id, sglang_version, preset_hash=h)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_reply(line: str, request_id: str) -> dict[str, Any]:
    """One reply line -> ``{"hash", "pad_values"}`` or ``{"error"}``; :class:`ExecProtocolError` if malformed."""
    text = line.strip()
    try:
        r = json.loads(text)
    except ValueError as e:
        raise ExecProtocolError(f"malformed reply (not JSON: {e}): {text[:200]!r}") from None
    if not isinstance(r, dict):
        raise ExecProtocolError(f"malformed reply (not a JSON object): {text[:200]!r}")
    if r.get("id") != request_id:
        raise ExecProtocolError(
            f"reply is for id {r.get('id')!r}, not for request {request_id!r}: {text[:200]!r}"
        )
    extra = set(r) - REPLY_FIELDS
    if extra:
        raise ExecProtocolError(f"malformed reply (unknown fields {sorted(extra)}): {text[:200]!r}")
    if "error" in r:
        if not isinstance(r["error"], str) or set(r) != {"id", "error"}:
            raise ExecProtocolError(
                f"malformed reply (an error reply is {{'id', 'error': str}} alone): {text[:200]!r}"
            )
        return {"error": r["error"]}
    pads = r.get("pad_values")
    if not _is_int(r.get("hash")) or not (
        isinstance(pads, list) and pads and all(_is_int(p) for p in pads)
    ):
        raise ExecProtocolError(
            f"malformed reply (needs an integer 'hash' and a non-empty list of integer "
            f"'pad_values', or an 'error' string): {text[:200]!r}"
        )
    return {"hash": r["hash"], "pad_values": list(pads)}
