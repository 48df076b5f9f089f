"""Record pad vectors from REAL SGLang into ``golden/pad-vectors.json`` (the installed release only).

``python -m pytest_mmhash.oracle.pad_vectors golden/pad-vectors.json`` in a venv made by
``tools/install-sglang.sh`` (``tools/record-golden.sh`` runs it for every golden release).
Refused without an importable sglang and when ``CI`` is set. Two kinds of vector:

* ``preset_hash``: ``MultimodalDataItem(hash=h)`` then SGLang's own ``set_pad_value`` (every
  release), over edge hashes: 0, 1, 2^63, 2^64-1, 2^64+7 and negative int64 hashes of the xor era;
  a release whose ``set_pad_value`` overwrites every preset with the feature's own hash
  (0.4.6.post5) gets none, and ``"preset_hash_ignored": true`` says so;
* ``mm_hash``: a caller's ``mm_hashes`` entry (0.5.13+), parsed by the tokenizer manager's own
  code: its ``try: item.set_hash(int(hex_hash, 16)) except (TypeError, ValueError)`` block is
  read from the installed ``tokenizer_manager.py`` and executed as is. A rejected entry is
  recorded as ``{"error": ...}`` (SGLang logs it and hashes the feature instead).

The engine never writes this file; ``mmhash vectors export`` reads it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from ..golden.model import empty_pad_vectors

#: Item hashes set before ``set_pad_value``: edges of every pad scheme and of mask64, and
#: negative int64 hashes as the gpu-xor-int64 era (0.4.7-0.5.0) produced them.
PRESET_HASHES = (
    0,
    1,
    2**30 - 1,
    2**30,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64 + 7,
    -1,
    -(2**63),
    -4112607171272427439,  # golden bf16-nan-payloads, sglang 0.4.10 cuda path
    -1899298369056619034,  # spec vector A, gpu-xor-int64
)
#: ``mm_hashes`` entries: leading zeros, 16 and 32 hex digits, upper case, what ``int(s, 16)``
#: also takes (prefix, sign, underscores, spaces), and what it rejects.
MM_HASHES = (
    "0",
    "1",
    "0000000000000001",
    "00000000000000ff",
    "8000000000000000",
    "ffffffffffffffff",
    "FFFFFFFFFFFFFFFF",
    "9f86d081884c7d65",
    "9F86D081884C7D65",
    "9f86d081884c7d659a2feaa0c55ad015",
    "00000000000000000000000000000001",
    "ffffffffffffffffffffffffffffffff",
    "10000000000000000",
    "0x9f86d081884c7d65",
    "-1",
    "+ff",
    " 9f86d081884c7d65\n",
    "9f86_d081_884c_7d65",
    "",
    "xyz",
    "9f86d081884c7d6g",
    "0x",
    "9f86 d081",
    "_ff",
    "f__f",
    "sha256:9f86d081884c7d65",
)
_BLOCK_START = re.compile(r"^(\s*)try:\s*$")
_PARSE_LINE = re.compile(r"int\(hex_hash, 16\)")


class _Warnings:
    """Stands in for the tokenizer manager's logger inside its own block: notes rejections."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def warning(self, *args: Any) -> None:
        """The block calls this when it ignores a malformed entry."""
        self.calls.append(args)


def tokenizer_block(source: str) -> str | None:
    """The ``try: ... int(hex_hash, 16) ... except ...:`` block of the tokenizer manager, dedented."""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if not _PARSE_LINE.search(line):
            continue
        start = next(j for j in range(i, -1, -1) if _BLOCK_START.match(lines[j]))
        indent = len(_BLOCK_START.match(lines[start]).group(1))  # type: ignore[union-attr]
        end = i + 1
        while end < len(lines) and (
            not lines[end].strip()
            or len(lines[end]) - len(lines[end].lstrip()) > indent
            or lines[end].lstrip().startswith("except")
        ):
            end += 1
        return textwrap.dedent("\n".join(lines[start:end])) + "\n"
    return None


def _refuse_without_sglang() -> None:
    if "CI" in os.environ:
        sys.exit("pad_vectors: refusing to record with CI set: values are recorded on purpose")
    if importlib.util.find_spec("sglang") is None:
        sys.exit(
            f"pad_vectors: real SGLang is not importable here ({sys.executable}); pad vectors come "
            f"only from real SGLang: run in a venv made by tools/install-sglang.sh"
        )


def _error(e: BaseException) -> dict[str, str]:
    lines = str(e).splitlines()
    return {"error": f"{type(e).__name__}: {lines[0] if lines else ''}"}


def record() -> dict[str, Any]:
    """Every vector from the installed sglang: ``{"provenance", "preset_hash", "mm_hash"}``."""
    import torch

    from . import driver

    version = driver.start()  # shims, TRITON_INTERPRET, import sglang: this process is for it
    mods = driver._sglang()
    feature = torch.arange(4, dtype=torch.float32)  # hashed only if SGLang ignored the preset
    presets = [
        {"input": h, **driver.real_item(feature, "cpu", preset_hash=h)} for h in PRESET_HASHES
    ]
    own = driver.real_item(feature, "cpu")["hash"]
    # 0.4.6.post5's set_pad_value rehashes the feature unconditionally: no preset reaches a pad
    ignored = all(v.get("hash") == own for v in presets)
    out: dict[str, Any] = {"preset_hash": [] if ignored else presets}
    if ignored:
        out["preset_hash_ignored"] = True
    tm_file = Path(mods["sglang"].__file__).parent / "srt/managers/tokenizer_manager.py"
    block = tokenizer_block(tm_file.read_text()) if tm_file.is_file() else None
    if block is not None:
        code = compile(block, "sglang/srt/managers/tokenizer_manager.py (mm_hashes block)", "exec")
        out["mm_hash"] = [_mm_hash_vector(code, text, feature) for text in MM_HASHES]
    out["provenance"] = {
        "sglang": version,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "tokenizer_manager_block": block,
    }
    return out


def _mm_hash_vector(code: Any, text: str, feature: Any) -> dict[str, Any]:
    """Run the tokenizer manager's own block on one entry, then ``set_pad_value``."""
    from . import driver

    item = driver._make_item(feature)
    log = _Warnings()
    try:
        exec(code, {"item": item, "hex_hash": text, "logger": log})  # SGLang's own statements
        if log.calls:  # rejected and logged: the exception the block swallowed
            int(text, 16)
            raise AssertionError(f"the block rejected {text!r} but int(text, 16) accepts it")
        item.set_pad_value()
    except (ValueError, TypeError, OverflowError) as e:
        return {"input": text, **_error(e)}
    return {"input": text, **driver._item_result(item)}


def merge(path: Path, release: str, vectors: dict[str, Any]) -> None:
    """Put one release's vectors into the file (atomically; other releases kept)."""
    data = empty_pad_vectors()
    if path.is_file():
        data = json.loads(path.read_text())
    data["releases"][release] = vectors
    data["releases"] = dict(sorted(data["releases"].items()))
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    """``python -m pytest_mmhash.oracle.pad_vectors FILE``."""
    if len(argv) != 1:
        print(
            "usage: python -m pytest_mmhash.oracle.pad_vectors golden/pad-vectors.json",
            file=sys.stderr,
        )
        return 2
    _refuse_without_sglang()
    from . import driver

    vectors = record()
    merge(Path(argv[0]), driver.sglang_version(), vectors)
    print(
        f"pad_vectors: recorded {len(vectors['preset_hash'])} preset_hash and "
        f"{len(vectors.get('mm_hash', []))} mm_hash vectors from real sglang "
        f"{driver.sglang_version()} into {argv[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
