"""The request-level golden file (``requests.json`` in a golden dir): format, validation, writing.

Each entry is one request as a user would send it to SGLang: media files (real photographs, copied
from the packages that ship them), a local model directory (``tools/make_model_dirs.py``) and the
deployment settings, with the items real SGLang's processor and scheduler gave it, per release:
modality, hash, pad values and the feature's dtype, shape and SHA-256. Values are only ever
recorded from real SGLang (``pytest --mmhash-golden DIR --mmhash-update`` in a venv with its
processor path); this module only reads, validates and writes them. It is separate from the
feature manifest (``manifest.json``) and has its own format.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GoldenError

REQUESTS_NAME = "requests.json"
FORMAT = "pytest-mmhash-requests"
FORMAT_VERSION = 1
MAX_BYTES = 16 * 1024 * 1024
DEPLOYMENT_KEYS = {
    "image_processor_backend": str,
    "disable_fast_image_processor": bool,
    "mm_process_config": dict,
    "env": dict,
    "audio_decoder": str,
}
ITEM_KEYS = {"modality": str, "hash": int, "hex": str, "pad_values": list, "feature": dict}
FEATURE_KEYS = {"dtype": str, "shape": list, "sha256": str}
_ID = re.compile(r"^[a-z0-9][a-z0-9._/-]*$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class RequestEntry:
    """One golden request: media + model directory + deployment -> items per recorded release."""

    id: str
    description: str
    model: str
    media: list[str]
    deployment: dict[str, Any]
    values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The entry as stored."""
        return {
            "id": self.id,
            "description": self.description,
            "model": self.model,
            "media": self.media,
            "deployment": self.deployment,
            "values": self.values,
        }


@dataclass
class RequestGolden:
    """A parsed ``requests.json``: its dir, pin, media sources, entries and provenance."""

    path: Path
    pin: str
    media: dict[str, dict[str, str]]
    entries: list[RequestEntry]
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The golden dir: media files and model directories are relative to it."""
        return self.path.parent

    def __getitem__(self, entry_id: str) -> RequestEntry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(entry_id)

    def to_json(self) -> dict[str, Any]:
        """The file as stored (keys sorted on write)."""
        return {  # its own format, not the feature manifest's (golden/model.py)
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "pin": self.pin,
            "media": self.media,
            "entries": [e.to_json() for e in self.entries],
            "provenance": self.provenance,
        }


def requests_path(golden_dir: Path) -> Path:
    """Where a golden dir keeps its request entries."""
    return golden_dir / REQUESTS_NAME


def load(path: Path) -> RequestGolden:
    """Read and validate ``requests.json``; every problem is reported, one per line."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GoldenError(f"{path}: cannot read the request golden file ({e.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise GoldenError(f"{path}: {len(raw)} bytes is too large for a request golden file")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise GoldenError(f"{path}: not valid JSON ({type(e).__name__}: {e})") from None
    return validate(data, path)


def _typed(problems: list[str], where: str, obj: Any, keys: Mapping[str, type]) -> bool:
    """Check that ``obj`` is a mapping with exactly ``keys`` of the given types."""
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected an object")
        return False
    if set(obj) != set(keys):
        problems.append(f"{where}: keys must be {sorted(keys)}, not {sorted(obj)}")
        return False
    bad = [
        k
        for k, t in keys.items()
        if not isinstance(obj[k], t) or isinstance(obj[k], bool) != (t is bool)
    ]
    for k in bad:
        problems.append(f"{where}.{k}: expected {keys[k].__name__}")
    return not bad


def _check_items(problems: list[str], where: str, items: Any) -> None:
    if not isinstance(items, list) or not items:
        problems.append(f"{where}: expected a non-empty list of items")
        return
    for i, it in enumerate(items):
        w = f"{where}[{i}]"
        if not _typed(problems, w, it, ITEM_KEYS):
            continue
        if not 0 <= it["hash"] < 2**64 or it["hex"] != f"{it['hash']:016x}":
            problems.append(f"{w}: hash must be a 64-bit unsigned int and hex its 16-digit form")
        if not it["pad_values"] or not all(type(p) is int for p in it["pad_values"]):
            problems.append(f"{w}.pad_values: expected a non-empty list of ints")
        f = it["feature"]
        if _typed(problems, f"{w}.feature", f, FEATURE_KEYS) and not _SHA.match(f["sha256"]):
            problems.append(f"{w}.feature.sha256: expected 64 lowercase hex digits")


def _check_entry(problems: list[str], g: RequestGolden, e: dict[str, Any], i: int) -> None:
    keys = {"id": str, "description": str, "model": str, "media": list, "deployment": dict}
    where = f"entries[{i}]"
    if not _typed(problems, where, {k: e.get(k) for k in keys}, keys):
        return
    where = f"entries[{i}] ({e['id']})"
    if not _ID.match(e["id"]):
        problems.append(f"{where}: id must be lowercase letters, digits and . _ / -")
    model = g.root / e["model"]
    for name in ("config.json", "preprocessor_config.json", "tokenizer_config.json"):
        if not (model / name).is_file():
            problems.append(f"{where}: model dir {e['model']} has no {name}")
    if not e["media"] or any(m not in g.media for m in e["media"]):
        problems.append(f"{where}: media must be a non-empty list of files listed under 'media'")
    unknown = set(e["deployment"]) - set(DEPLOYMENT_KEYS)
    if unknown:
        problems.append(f"{where}: unknown deployment settings {sorted(unknown)}")
    for k, t in DEPLOYMENT_KEYS.items():
        if k in e["deployment"] and not isinstance(e["deployment"][k], t):
            problems.append(f"{where}.deployment.{k}: expected {t.__name__}")
    values = e.get("values", {})
    if not isinstance(values, dict):
        problems.append(f"{where}.values: expected an object keyed by sglang release")
        return
    for release, items in values.items():
        _check_items(problems, f"{where}.values[{release}]", items)


def validate(data: Any, path: Path) -> RequestGolden:
    """A :class:`RequestGolden` from parsed JSON, or a :class:`GoldenError` listing every problem."""
    problems: list[str] = []
    top = {"format": str, "format_version": int, "pin": str, "media": dict, "entries": list}
    if not isinstance(data, dict) or not _typed(
        problems, "top level", {k: data.get(k) for k in top}, top
    ):
        raise GoldenError(f"{path}: " + "; ".join(problems or ["expected a JSON object"]))
    if data["format"] != FORMAT or data["format_version"] != FORMAT_VERSION:
        raise GoldenError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} file")
    g = RequestGolden(path, data["pin"], data["media"], [], data.get("provenance", {}))
    for name, src in g.media.items():
        if not isinstance(src, dict) or not _SHA.match(str(src.get("sha256"))):
            problems.append(f"media[{name}]: expected an object with a sha256 and its source")
        elif not (g.root / name).is_file():
            problems.append(f"media[{name}]: file missing from the golden dir")
        elif file_sha256(g.root / name) != src["sha256"]:
            problems.append(f"media[{name}]: file content differs from its recorded sha256")
    seen: set[str] = set()
    for i, e in enumerate(data["entries"]):
        if not isinstance(e, dict):
            problems.append(f"entries[{i}]: expected an object")
            continue
        _check_entry(problems, g, e, i)
        if e.get("id") in seen:
            problems.append(f"entries[{i}]: duplicate id {e.get('id')!r}")
        seen.add(str(e.get("id")))
        g.entries.append(
            RequestEntry(
                str(e.get("id")),
                str(e.get("description", "")),
                str(e.get("model")),
                list(e.get("media") or []),
                dict(e.get("deployment") or {}),
                dict(e.get("values") or {}),
            )
        )
    if problems:
        raise GoldenError(f"{path}: {len(problems)} problem(s): " + "; ".join(problems))
    return g


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dumps(g: RequestGolden) -> str:
    """Canonical text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(g.to_json(), indent=2, sort_keys=True) + "\n"


def request_files(golden_dir: Path) -> set[str]:
    """``requests.json`` and the media and model-directory files it names, relative to the golden
    dir (empty when there is none; only the names it lists when it does not validate)."""
    path = requests_path(golden_dir)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, RecursionError):
        return {REQUESTS_NAME}
    files = {REQUESTS_NAME}
    if isinstance(data, dict):
        files |= {str(m) for m in data.get("media") or {}}
        for e in data.get("entries") or []:
            model = golden_dir / str(e.get("model", "")) if isinstance(e, dict) else None
            if model is not None and model != golden_dir and model.is_dir():
                files |= {
                    p.relative_to(golden_dir).as_posix() for p in model.rglob("*") if p.is_file()
                }
    return files


def with_values(
    g: RequestGolden,
    recorded: dict[str, list[dict[str, Any]]],
    release: str,
    provenance: dict[str, str],
) -> RequestGolden:
    """A copy of ``g`` with ``recorded`` (entry id -> items) stored under ``release``."""
    entries = [
        RequestEntry(
            e.id,
            e.description,
            e.model,
            e.media,
            e.deployment,
            {**e.values, **({release: recorded[e.id]} if e.id in recorded else {})},
        )
        for e in g.entries
    ]
    prov = {**g.provenance, release: provenance} if recorded else g.provenance
    return RequestGolden(g.path, g.pin, g.media, entries, prov)
