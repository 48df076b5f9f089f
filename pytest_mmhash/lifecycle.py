"""A golden store's lifecycle as commands: ``mmhash golden init|add|refresh|remove|list``.

Library functions over :mod:`pytest_mmhash.golden` (every manifest write atomic: temp file,
fsync, rename) plus their command line. None of them records a value: values come only from real
SGLang, through ``pytest --mmhash-update``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import GoldenError, MmhashError
from .golden import model, store, validation

#: Where ``add`` copies feature files that are not already inside the golden dir.
FEATURES_DIR = "features"


def init(root: str | os.PathLike, pin: str | None = None) -> model.Manifest:
    """Create an empty golden store at ``root``; the pin defaults to the installed sglang's
    release, else the newest known one."""
    from .versions import resolve

    path = store.manifest_path(root)
    if path.exists():
        raise GoldenError(f"{path}: a golden manifest is already there")
    release = resolve(pin).version
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = store.new_manifest(path.parent, release, [])
    store.write_manifest(manifest)
    return manifest


@dataclass(frozen=True)
class Added:
    """One entry ``add`` created, and whether its file was copied into the store."""

    entry: model.Entry
    copied_from: str | None


def add(
    root: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    *,
    entry_id: str | None = None,
    key: str | None = None,
    kind: str = "",
    description: str = "",
) -> list[Added]:
    """Add one entry per file (all or none): the file must load as one feature; files outside the
    store are copied under ``features/``; the sha256 is recorded; no values yet."""
    manifest = store.load_manifest(root)
    if entry_id is not None and len(files) != 1:
        raise GoldenError(f"--id {entry_id} names one entry, but {len(files)} files were given")
    planned: list[tuple[Path, str, str]] = []  # (source, file relative to the store, id)
    ids = set(manifest.ids)
    taken = {(e.file, e.key) for e in manifest.entries}
    for f in files:
        src = Path(f)
        _check_loads(src, key)
        rel = _store_path(manifest.root, src)
        eid = entry_id or _default_id(rel, key)
        problem = validation.check_id(eid)
        if problem:
            raise GoldenError(f"{f}: entry id {eid!r} {problem}; pass --id")
        if eid in ids:
            raise GoldenError(f"{f}: an entry with id {eid!r} already exists (pass another --id)")
        if (rel, key) in taken:
            raise GoldenError(
                f"{f}: already in the store as {rel}" + (f" key {key}" if key else "")
            )
        ids.add(eid)
        taken.add((rel, key))
        planned.append((src, rel, eid))
    copied: list[Path] = []
    try:
        for src, rel, _ in planned:
            dest = manifest.root / rel
            if not dest.exists():
                _atomic_copy(src, dest)
                copied.append(dest)
        new = [
            store.make_entry(manifest.root, eid, rel, key, kind, description)
            for _, rel, eid in planned
        ]
        store.write_manifest(store.replace_entries(manifest, (*manifest.entries, *new))[0])
    except BaseException:
        for p in copied:  # all or none: a copied file without its entry would fail as unlisted
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    return [
        Added(e, str(src) if (manifest.root / rel) in copied else None)
        for (src, rel, _), e in zip(planned, new, strict=True)
    ]


def _check_loads(src: Path, key: str | None) -> None:
    """The file must be one readable feature (with ``key``, that entry of a container)."""
    from .loaders import load_feature

    if not src.is_file():
        raise GoldenError(f"{src}: no such file")
    try:
        load_feature(src, key)
    except MmhashError as e:
        raise GoldenError(str(e)) from None


def _store_path(root: Path, src: Path) -> str:
    """``src`` relative to the store when it is inside it, else where ``add`` copies it."""
    resolved = src.resolve()
    if resolved.is_relative_to(root.resolve()):
        return resolved.relative_to(root.resolve()).as_posix()
    dest = f"{FEATURES_DIR}/{src.name}"
    existing = root / dest
    if existing.exists() and store.content_sha256(existing) != store.content_sha256(src):
        raise GoldenError(
            f"{src}: {existing} already exists with other bytes (rename the file, or add it from "
            f"inside {root})"
        )
    return dest


def _default_id(rel: str, key: str | None) -> str:
    """The file's name without suffix (and the key), with characters outside the id rule as '-'."""
    stem = Path(rel).stem + (f".{key}" if key else "")
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem).lstrip("._-") or "feature"


def _atomic_copy(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temp file in the same dir and a rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Refreshed:
    """An entry whose bytes changed: its new sha256 and the recorded values dropped with the old."""

    entry_id: str
    file: str
    old_sha256: str
    new_sha256: str
    dropped: tuple[tuple[str, str], ...]  # (release, path)


def refresh(root: str | os.PathLike, ids: Sequence[str] = ()) -> list[Refreshed]:
    """For each entry (``ids``, or all) whose file's bytes changed: record the new sha256 and drop
    its values, which belong to the old bytes. Nothing else changes."""
    manifest = store.load_manifest(root)
    wanted = _known(manifest, ids)
    out: list[Refreshed] = []
    entries = []
    for e in manifest.entries:
        if e.id in wanted:
            path = manifest.feature_path(e)
            if not path.is_file():
                raise GoldenError(
                    f"{e.id}: its file {path} is missing: restore it, or remove the entry "
                    f"(mmhash golden remove {shlex.quote(str(root))} {e.id})"
                )
            sha = store.content_sha256(path)
            if sha != e.sha256:
                dropped = tuple((r, d) for r, by in sorted(e.values.items()) for d in sorted(by))
                out.append(Refreshed(e.id, e.file, e.sha256, sha, dropped))
                e = replace(e, sha256=sha, values={})
        entries.append(e)
    if out:
        store.write_manifest(store.replace_entries(manifest, entries)[0])
    return out


def remove(root: str | os.PathLike, ids: Sequence[str], *, keep_files: bool = False) -> list[str]:
    """Remove entries; their files too (unless ``keep_files`` or another entry uses them), so no
    unlisted file is left behind. The files deleted, relative to the store."""
    manifest = store.load_manifest(root)
    gone = _known(manifest, ids)
    kept = [e for e in manifest.entries if e.id not in gone]
    store.write_manifest(store.replace_entries(manifest, kept)[0])
    if keep_files:
        return []
    still_used = {e.file for e in kept}
    deleted = []
    for e in manifest.entries:
        if e.id in gone and e.file not in still_used and (manifest.root / e.file).is_file():
            manifest.feature_path(e).unlink()
            still_used.add(e.file)
            deleted.append(e.file)
    return deleted


def listing(root: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per entry: id, file, key, whether the bytes still match, the recorded releases."""
    manifest = store.load_manifest(root)
    rows = []
    for e in manifest.entries:
        path = manifest.root / e.file
        state = (
            "missing"
            if not path.is_file()
            else "ok"
            if store.content_sha256(path) == e.sha256
            else "changed"
        )
        rows.append(
            {
                "id": e.id,
                "file": e.file,
                "key": e.key,
                "bytes": state,
                "recorded": {r: sorted(by) for r, by in sorted(e.values.items())},
            }
        )
    return rows


def _known(manifest: model.Manifest, ids: Sequence[str]) -> set[str]:
    """``ids`` (all entries when empty), each one checked to exist."""
    unknown = [i for i in ids if i not in manifest.ids]
    if unknown:
        raise GoldenError(
            f"{manifest.path}: no entry {', '.join(map(repr, unknown))} "
            f"(entries: {', '.join(manifest.ids) or 'none'})"
        )
    return set(ids) if ids else set(manifest.ids)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash golden",
        description="Create and maintain a golden store (a dir with manifest.json and feature "
        "files). Values are recorded only from real SGLang: pytest --mmhash-golden DIR "
        "--mmhash-update in a venv from mmhash install-sglang.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("init", help="create an empty store")
    s.add_argument("dir", metavar="DIR")
    s.add_argument(
        "--pin", metavar="V", help="release to check (default: installed sglang, else newest)"
    )
    s = sub.add_parser("add", help="add feature files as entries (copied under DIR/features/)")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--id", dest="entry_id", metavar="ID", help="entry id (one file only)")
    s.add_argument("--key", metavar="K", help="the entry of a container file to hash")
    s.add_argument("--kind", default="", metavar="K", help="free-form kind, e.g. image")
    s.add_argument("--description", default="", metavar="TEXT")
    s = sub.add_parser(
        "refresh", help="entries whose bytes changed: new sha256, stale values dropped"
    )
    s.add_argument("dir", metavar="DIR")
    s.add_argument("ids", nargs="*", metavar="ID", help="default: every entry")
    s = sub.add_parser("remove", help="remove entries (and their files)")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("ids", nargs="+", metavar="ID")
    s.add_argument("--keep-files", action="store_true", help="leave the feature files in place")
    s = sub.add_parser("list", help="entries, files and the releases recorded for each")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--json", action="store_true", help="one JSON object per entry")
    return p


def record_hint(root: str, release: str) -> str:
    """What to run next to record values from real SGLang into ``root``."""
    from .engines import key_text
    from .install_sglang import install_command, record_command

    return (
        f"next, record values from real {key_text(release)}: {install_command(release)} "
        f"(once), then: {record_command(release, root)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``mmhash golden COMMAND ...``; 0 done, 2 refused (one line saying why)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except MmhashError as e:
        print(f"mmhash golden {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code


def _run(args: argparse.Namespace) -> int:
    d = args.dir
    if args.command == "init":
        m = init(d, args.pin)
        print(
            f"created {m.path} (pin: sglang {m.pin}); add features with: mmhash golden add {shlex.quote(d)} FILE..."
        )
    elif args.command == "add":
        added = add(
            d,
            args.files,
            entry_id=args.entry_id,
            key=args.key,
            kind=args.kind,
            description=args.description,
        )
        for a in added:
            origin = f" (copied from {a.copied_from})" if a.copied_from else ""
            print(f"added {a.entry.id}: {a.entry.file}{origin}, sha256 {a.entry.sha256[:16]}...")
        print(record_hint(d, store.load_manifest(d).pin))
    elif args.command == "refresh":
        done = refresh(d, args.ids)
        for r in done:
            dropped = ", ".join(f"{rel} {dev}" for rel, dev in r.dropped) or "none"
            print(
                f"refreshed {r.entry_id}: {r.file} sha256 {r.old_sha256[:16]}... -> "
                f"{r.new_sha256[:16]}...; dropped values: {dropped}"
            )
        if done:
            print(record_hint(d, store.load_manifest(d).pin))
        else:
            print("nothing to refresh: every file has its recorded sha256")
    elif args.command == "remove":
        deleted = remove(d, args.ids, keep_files=args.keep_files)
        print(
            f"removed {', '.join(args.ids)}"
            + (f"; deleted {', '.join(deleted)}" if deleted else "")
        )
    else:
        rows = listing(d)
        for row in rows:
            if args.json:
                print(json.dumps(row))
                continue
            rec = "; ".join(f"{rel} {'+'.join(devs)}" for rel, devs in row["recorded"].items())
            key = f" [{row['key']}]" if row["key"] else ""
            print(
                f"{row['id']:<24} {row['file']}{key}  bytes {row['bytes']}  recorded: {rec or 'nothing yet'}"
            )
    return 0
