"""The golden manifest schema: JSON text or data -> a validated :class:`~.model.Manifest`, or one
:class:`~pytest_mmhash.GoldenError` that lists every problem with its location.

Loading is safe by default: duplicate keys, ``NaN``/``Infinity``, unknown fields, unknown releases
and paths that leave the golden dir are all refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import GoldenError, MmhashError
from ..ints import M64, hex64
from ..versions import DEVICES
from .model import (
    CUDA_PATHS,
    ENTRY_KEYS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PROVENANCE_KEYS,
    TOP_KEYS,
    Entry,
    Manifest,
)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
#: The entry id rule in words, stated once (validation, ``mmhash golden add`` and the docs say it).
ID_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit"
_SHA = re.compile(r"[0-9a-f]{64}\Z")
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_ERROR = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(: .*)?\Z", re.S)


class _Problems:
    """Collects schema problems, each located as ``entries[3] (id 'x'): field 'sha256'``."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, msg: str) -> None:
        self.items.append(f"{where}: {msg}" if where else msg)

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise GoldenError(
                f"{self.source}: invalid golden manifest (1 problem): {self.items[0]}"
            )
        if self.items:
            head = f"{self.source}: invalid golden manifest ({len(self.items)} problems):"
            raise GoldenError("\n  ".join([head, *self.items]))


def check_id(x: Any) -> str | None:
    """Why ``x`` is not a valid entry id (:data:`ID_RULE`), or None."""
    return None if isinstance(x, str) and _ID.match(x) else f"must be {ID_RULE}, got {x!r}"


def _canonical_release(text: Any) -> str | None:
    """``text`` when it is a known release key spelled canonically (``0.5.23``, a fork's
    ``sglang-kt==0.7.2``), else None."""
    from ..engines import known_key

    return text if known_key(text) else None


def is_int(x: Any) -> bool:
    """Whether ``x`` is a JSON integer (an ``int`` that is not a ``bool``)."""
    return isinstance(x, int) and not isinstance(x, bool)


def check_value(v: Any) -> str | None:
    """Why ``v`` is not a valid recorded value (``{"hash","hex","pad_values"}`` or ``{"error"}``), or None."""
    if not isinstance(v, dict):
        return f"must be an object, got {type(v).__name__}"
    if "error" in v:
        if set(v) != {"error"}:
            return f"an error value has only the key 'error', got {sorted(v)}"
        if not isinstance(v["error"], str) or not _ERROR.match(v["error"]):
            return f"'error' must read 'ExceptionType: message', got {v['error']!r}"
        return None
    if set(v) != {"hash", "hex", "pad_values"}:
        return f"keys must be hash, hex, pad_values (or only error), got {sorted(v)}"
    h, hx, pads = v["hash"], v["hex"], v["pad_values"]
    if not is_int(h) or not -(1 << 63) <= h <= M64:
        return f"'hash' must be an integer in [-2^63, 2^64), got {h!r}"
    if not isinstance(hx, str) or not _HEX16.match(hx):
        return f"'hex' must be 16 lowercase hex digits, got {hx!r}"
    if hx != hex64(h):
        return f"'hex' {hx} does not match 'hash' {h} (expected {hex64(h)})"
    if not isinstance(pads, list) or not pads or not all(is_int(p) and p >= 0 for p in pads):
        return f"'pad_values' must be a non-empty list of non-negative integers, got {pads!r}"
    return None


def _check_top(data: Any, p: _Problems) -> bool:
    if not isinstance(data, dict):
        p.add("", f"the top level must be an object, got {type(data).__name__}")
        return False
    for k in sorted(set(data) - set(TOP_KEYS)):
        p.add(f"field {k!r}", "unknown top-level field")
    for k in TOP_KEYS:
        if k not in data:
            p.add(f"field {k!r}", "missing")
    if "format" in data and data["format"] != FORMAT:
        p.add("field 'format'", f"must be {FORMAT!r}, got {data['format']!r}")
    fv = data.get("format_version", FORMAT_VERSION)
    if fv != FORMAT_VERSION or not is_int(fv):
        newer = is_int(fv) and fv > FORMAT_VERSION
        hint = "; upgrade pytest-mmhash" if newer else ""
        p.add(
            "field 'format_version'",
            f"this pytest-mmhash reads version {FORMAT_VERSION}, got {fv!r}{hint}",
        )
    if "pin" in data and _canonical_release(data["pin"]) is None:
        p.add(
            "field 'pin'",
            f"must be a known sglang release like '0.5.23' (a fork's: 'sglang-kt==0.7.2'), got {data['pin']!r}",
        )
    return True


def _by_release(
    data: Any, where: str, prefix: str, p: _Problems, what: str = "an object"
) -> Iterator[tuple[Any, str, dict]]:
    """The ``(release, location, object)`` items of an object keyed by release; bad keys and values are
    reported (located as ``prefix[release]``) and bad values skipped."""
    if not isinstance(data, dict):
        p.add(where, f"must be an object, got {type(data).__name__}")
        return
    for rel, rec in data.items():
        w = f"{prefix}[{rel!r}]"
        if _canonical_release(rel) is None:
            p.add(w, "key must be a known sglang release, spelled like '0.5.23'")
        if not isinstance(rec, dict):
            p.add(w, f"must be {what}, got {type(rec).__name__}")
            continue
        yield rel, w, rec


def _check_provenance(prov: Any, p: _Problems) -> None:
    for rel, where, rec in _by_release(prov, "field 'provenance'", "provenance", p):
        if set(rec) != set(PROVENANCE_KEYS):
            p.add(where, f"keys must be {', '.join(PROVENANCE_KEYS)}, got {sorted(rec)}")
        for k in PROVENANCE_KEYS:
            if k in rec and not isinstance(rec[k], str):
                p.add(f"{where} field {k!r}", f"must be a string, got {rec[k]!r}")
        if rec.get("cuda_path") not in CUDA_PATHS:
            p.add(
                f"{where} field 'cuda_path'",
                f"must be one of {CUDA_PATHS}, got {rec.get('cuda_path')!r}",
            )
        if not isinstance(rec.get("date"), str) or not _DATE.match(rec["date"]):
            p.add(f"{where} field 'date'", f"must be YYYY-MM-DD, got {rec.get('date')!r}")
        if isinstance(rec.get("sglang"), str) and _same_release(rec["sglang"]) != rel:
            p.add(f"{where} field 'sglang'", f"{rec['sglang']!r} is not release {rel}")


def _same_release(text: str) -> str | None:
    """The release key ``text`` (e.g. ``0.5.23+cu128``, ``sglang-kt==0.7.2``) names, or None."""
    from ..engines import resolve_key

    try:
        return resolve_key(text)
    except MmhashError:
        return None


def _check_file(f: Any) -> str | None:
    if not isinstance(f, str) or not f:
        return f"must be a non-empty string, got {f!r}"
    pp = PurePosixPath(f)
    if "\\" in f or pp.is_absolute() or ".." in pp.parts or str(pp) != f or f.startswith("./"):
        return f"must be a normalised relative path inside the golden dir (forward slashes, no '..'), got {f!r}"
    return None


def _check_entry(e: Any, where: str, p: _Problems) -> None:
    if not isinstance(e, dict):
        p.add(where, f"must be an object, got {type(e).__name__}")
        return
    for k in sorted(set(e) - set(ENTRY_KEYS)):
        p.add(f"{where} field {k!r}", "unknown field")
    for k in ENTRY_KEYS:
        if k not in e:
            p.add(f"{where} field {k!r}", "missing")
    checks: dict[str, Callable[[Any], str | None]] = {
        "id": check_id,
        "file": _check_file,
        "key": lambda x: (
            None
            if x is None or (isinstance(x, str) and x)
            else f"must be null or a non-empty string, got {x!r}"
        ),
        "sha256": lambda x: (
            None
            if isinstance(x, str) and _SHA.match(x)
            else f"must be 64 lowercase hex digits, got {x!r}"
        ),
        "kind": lambda x: None if isinstance(x, str) else f"must be a string, got {x!r}",
        "description": lambda x: None if isinstance(x, str) else f"must be a string, got {x!r}",
    }
    for k, check in checks.items():
        msg = check(e[k]) if k in e else None
        if msg:
            p.add(f"{where} field {k!r}", msg)
    if "values" in e:
        _check_values(e["values"], f"{where} field 'values'", p)


def _check_values(values: Any, where: str, p: _Problems) -> None:
    what = "an object keyed by 'cpu'/'cuda'"
    for _, w, by_dev in _by_release(values, where, where, p, what):
        for dev, v in by_dev.items():
            if dev not in DEVICES:
                p.add(f"{w}[{dev!r}]", "path must be 'cpu' or 'cuda'")
            msg = check_value(v)
            if msg:
                p.add(f"{w}[{dev!r}]", msg)


def _entry_where(i: int, e: Any) -> str:
    eid = e.get("id") if isinstance(e, dict) else None
    return f"entries[{i}] (id {eid!r})" if isinstance(eid, str) else f"entries[{i}]"


def _check_entries(data: dict, p: _Problems) -> None:
    entries = data.get("entries", [])
    if not isinstance(entries, list):
        p.add("field 'entries'", f"must be a list, got {type(entries).__name__}")
        return
    seen_ids: dict[str, int] = {}
    seen_files: dict[tuple, int] = {}
    prov = data["provenance"] if isinstance(data.get("provenance"), dict) else {}
    for i, e in enumerate(entries):
        where = _entry_where(i, e)
        _check_entry(e, where, p)
        if not isinstance(e, dict):
            continue
        eid, src = e.get("id"), (e.get("file"), e.get("key"))
        if isinstance(eid, str):
            if eid in seen_ids:
                p.add(f"{where} field 'id'", f"duplicate of entries[{seen_ids[eid]}]")
            seen_ids.setdefault(eid, i)
        if all(isinstance(x, (str, type(None))) for x in src):
            if src in seen_files:
                p.add(
                    f"{where} fields 'file'/'key'",
                    f"same file and key as entries[{seen_files[src]}]",
                )
            seen_files.setdefault(src, i)
        for rel in e.get("values", {}) if isinstance(e.get("values"), dict) else ():
            if rel not in prov:
                p.add(
                    f"{where} field 'values'[{rel!r}]",
                    f"release {rel!r} has values but no provenance[{rel!r}] record of the real SGLang that made them",
                )


def validate(data: Any, root: Path, source: str = MANIFEST_NAME) -> Manifest:
    """Check manifest JSON ``data`` against the schema; a :class:`Manifest`, or one :class:`GoldenError`
    listing every problem with its location (entry index, id and field)."""
    p = _Problems(source)
    if _check_top(data, p):
        _check_provenance(data.get("provenance", {}), p)
        _check_entries(data, p)
    p.raise_if_any()
    entries = tuple(Entry(**{k: e[k] for k in ENTRY_KEYS}) for e in data["entries"])
    return Manifest(
        Path(root), data["pin"], data["provenance"], tuple(sorted(entries, key=lambda e: e.id))
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise GoldenError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise GoldenError(f"{name} is not valid in a golden manifest")


def parse(text: str | bytes, root: Path, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest text (UTF-8 when bytes)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except UnicodeDecodeError as e:
        raise GoldenError(f"{source}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise GoldenError(
            f"{source}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except GoldenError as e:
        raise GoldenError(f"{source}: {e}") from None
    except (ValueError, RecursionError) as e:  # integers past Python's digit limit, absurd nesting
        raise GoldenError(
            f"{source}: not a usable JSON manifest: {type(e).__name__}: {e}"
        ) from None
    return validate(data, root, source)
