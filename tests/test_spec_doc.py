"""The repository stands on its own: docs/spec.md names every scheme id the code knows, and no
tracked file points outside the repository or at one machine's paths."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pytest_mmhash import engines as E
from pytest_mmhash import from_hash, from_identity, from_mm_hash, namespaced
from pytest_mmhash import versions as V
from pytest_mmhash.cli_family import KEY_PAD_SCHEME

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec.md"


def code_scheme_ids() -> set[str]:
    """Every scheme id the code can report: the era table, the registry's constants, and the
    ``hash_scheme``/``modifiers`` of each hash source the API offers."""
    ids = {s for era in V.eras() for s in (era.cpu, era.cuda, era.pad)}
    ids |= {
        v for k, v in vars(V).items() if k.isupper() and isinstance(v, str) and v not in V.RELEASES
    }
    ids |= {s.waveform for s in E.spans(E.SGLANG_OMNI) if s.waveform} | {KEY_PAD_SCHEME}
    newest = {"sglang_version": V.NEWEST}
    for item in (
        from_hash(0, **newest),
        from_mm_hash("ab", **newest),
        from_identity(bytes(32), **newest),
        namespaced(1, "sha256:" + "0" * 64, **newest),
    ):
        ids.add(item.hash_scheme)
        ids.update(item.modifiers)
    return ids


def test_collects_the_known_ids():
    ids = code_scheme_ids()
    assert {"sha256-raw", "gpu-tile-fmix32", "pad-wide4", "mask64", "mm-hash"} <= ids
    assert len(ids) >= 15


@pytest.mark.parametrize("scheme_id", sorted(code_scheme_ids()))
def test_spec_names_every_scheme_id(scheme_id):
    assert f"`{scheme_id}`" in SPEC.read_text(encoding="utf-8"), (
        f"docs/spec.md does not name the scheme id {scheme_id!r}; add it to section 2.3"
    )


# Paths of one machine, or outside the repository. Each is spelled in two pieces so that this
# file does not match itself.
FOREIGN_PATHS = re.compile(
    "|".join(
        re.escape(p)
        for p in (
            ".." + "/shared",
            "/wo" + "rk/",
            "/ven" + "vs/",
            "/ho" + "me/",
            "/Us" + "ers/",
            "/ro" + "ot/",
            "/op" + "t/",
            "/mn" + "t/",
            "/tm" + "p/",
        )
    )
)


def tracked_text_files() -> list[Path]:
    """The files git tracks here (text only), or a skip outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in out.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and b"\0" not in path.read_bytes()[:8192]:
            files.append(path)
    return files


def test_no_tracked_file_names_a_foreign_path():
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            m = FOREIGN_PATHS.search(line)
            if m:
                found.append(f"{path.relative_to(ROOT)}:{n}: {m.group()}")
    assert not found, "paths outside the repository or of one machine:\n" + "\n".join(found)
