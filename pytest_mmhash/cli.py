"""The ``mmhash`` command: hash feature files, folders and images as a given SGLang release would.

Exit status: 0 success; 2 bad input (unreadable file, bad version, bad device, ...); 3 a feature
that SGLang itself cannot hash at that version (or whose hash it cannot reproduce).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import __version__
from . import engines as E
from . import versions as V
from .errors import EXIT_BAD_INPUT, EXIT_OK, MmhashError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash",
        description="Compute the multimodal item hash and pad value(s) that a given SGLang release "
        "computes for a feature, on its CPU path or its CUDA path, without SGLang or a GPU.",
        epilog="Also: mmhash predict MEDIA --model DIR (what SGLang assigns to a request's "
        "images); mmhash upgrade-report GOLDEN_DIR --to V (which golden entries change "
        "between releases); mmhash install-sglang VERSION VENV (a venv with real SGLang to record "
        "golden values; ENGINE==V DIR: a fork's own code); mmhash golden init|add|refresh|remove|list (a golden store); "
        "mmhash vectors export DIR (conformance vectors for other languages); "
        "mmhash omni-key-pad KEY --vocab-size N (sglang-omni's cache-key pad). "
        "Exit status: 0 ok, 2 bad input, 3 SGLang cannot hash the feature.",
    )
    p.add_argument("--version", action="version", version=f"mmhash (pytest-mmhash) {__version__}")
    p.add_argument(
        "paths",
        nargs="*",
        metavar="FILE|DIR",
        help=".pt .pth .npy .npz .safetensors or an image; folders are walked recursively",
    )
    p.add_argument(
        "--engine",
        choices=E.ENGINES,
        help="sglang, sglang-kt or sglang-omni (FILE is then a waveform); default: the engine "
        "whose distribution provides the installed sglang package, else sglang",
    )
    p.add_argument(
        "--sglang-version",
        metavar="V",
        help="the engine's release to emulate (default: the installed one, else the newest known)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="hash path; default: where the tensors are (files load to CPU)",
    )
    p.add_argument(
        "--cuda",
        action="store_const",
        const="cuda",
        dest="device",
        help="alias of --device cuda (old helper flag)",
    )
    p.add_argument(
        "--tensor",
        action="store_true",
        help="read every FILE with torch.load (weights_only) whatever its extension",
    )
    p.add_argument(
        "--key",
        metavar="K",
        help="hash only this entry of a container (.npz, .safetensors, dict .pt)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line per result")
    p.add_argument(
        "--allow-newer",
        action="store_true",
        help="accept a version newer than the newest known release (uses its schemes, warns)",
    )
    p.add_argument(
        "--mm-hash",
        metavar="HEX",
        action="append",
        default=[],
        help="pad values of a caller-supplied mm_hashes entry (0.5.13+)",
    )
    p.add_argument(
        "--identity",
        metavar="HEX64",
        action="append",
        default=[],
        help="pad values of a 32-byte set_identity() identity (0.5.23+)",
    )
    p.add_argument(
        "--hash",
        metavar="INT",
        action="append",
        default=[],
        dest="hashes",
        help="pad values of an item hash set with set_hash()",
    )
    p.add_argument(
        "--namespace",
        metavar="sha256:HEX64",
        help="apply ns-mix-v1 (0.5.18+) to every hash before deriving pads",
    )
    p.add_argument(
        "--list-versions", action="store_true", help="print release ranges and their scheme ids"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        help="files hashed in parallel (default: number of CPUs, at most 4)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: on when stderr is a terminal and >1 file)",
    )
    return p


#: Exit status of a command whose reader went away (``mmhash ... | head -1``): SIGPIPE's, as the
#: shell reports for other Unix tools killed by it.
EXIT_CLOSED_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status. Each distinct warning prints once, as one line;
    a closed stdout ends it quietly."""
    shown: set[str] = set()

    def warning_line(message: Warning | str, *_: Any, **__: Any) -> None:
        line = f"mmhash: warning: {str(message).strip().splitlines()[0]}"
        if line not in shown:
            shown.add(line)
            print(line, file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = warning_line
            return _main(argv)
    except BrokenPipeError:
        # Python would report the failed flush of stdout again at exit: point stdout at devnull.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_CLOSED_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["upgrade-report"]:
        from .upgrade import main as upgrade_main

        return upgrade_main(args_list[1:])
    if args_list[:1] == ["predict"]:
        from .predict.cli import main as predict_main

        return predict_main(args_list[1:])
    if args_list[:1] == ["golden"]:
        from .lifecycle import main as golden_main

        return golden_main(args_list[1:])
    if args_list[:1] == ["install-sglang"]:
        from .install_sglang import main as install_main

        return install_main(args_list[1:])
    if args_list[:1] == ["vectors"]:
        from .vectors import main as vectors_main

        return vectors_main(args_list[1:])
    if args_list[:1] == ["omni-key-pad"]:
        from .cli_family import omni_key_pad_main as omni_main

        return omni_main(args_list[1:])
    args = _parser().parse_args(args_list)
    if args.list_versions:
        _list_versions(args.json, args.engine)
        return EXIT_OK
    if not (args.paths or args.mm_hash or args.identity or args.hashes):
        print(
            "mmhash: error: give a FILE or DIR, --mm-hash, --identity, --hash or --list-versions (see mmhash --help)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        release_note = _version_note(args)  # also fills in args.engine when not given
        E.resolve(args.engine, args.sglang_version, allow_newer=args.allow_newer)  # fail fast
    except MmhashError as e:
        return _fail(e, None)
    out = _Output(args.json, release_note)
    status = EXIT_OK
    for label, make in _given_hashes(args):
        status = _worst(status, out.emit_one(label, make))
    if args.paths:
        status = _worst(status, _hash_paths(args, out))
    return status


def _worst(a: int, b: int) -> int:
    """Bad input (2) outranks unhashable (3), which outranks success (0)."""
    return EXIT_BAD_INPUT if EXIT_BAD_INPUT in (a, b) else max(a, b)


def _fail(e: BaseException, label: str | None) -> int:
    msg = str(e)
    prefix = f"{label}: " if label and not msg.startswith(label) else ""
    print(f"mmhash: error: {prefix}{msg}", file=sys.stderr)
    return getattr(e, "exit_code", EXIT_BAD_INPUT)


def _version_note(args: argparse.Namespace) -> str:
    """Where the engine and release come from; detects the installed engine when none is given."""
    if args.engine is None:
        found = E.detect()
        args.engine = found.engine
        if args.sglang_version is None:
            return found.note
        return f"given; engine {found.engine} detected: {found.note}"
    if args.sglang_version is not None:
        return "given"
    installed = E.installed_version(args.engine)
    return (
        f"installed {args.engine} {installed}"
        if installed
        else f"newest known release; {args.engine} is not installed"
    )


#: What each value-relevant era field means when it changes, for ``--list-versions``.
_ERA_CHANGES: dict[str, Any] = {
    "cpu": lambda a, b: f"cpu scheme {a} -> {b}",
    "cuda": lambda a, b: f"cuda scheme {a} -> {b}",
    "pad": lambda a, b: f"pad scheme {a} -> {b}",
    "mask64": lambda a, b: "hashes stored as unsigned 64-bit (mask64)" if b else "mask64 dropped",
    "empty_list_error": lambda a, b: f"hash_feature([]) raises {b} (was {a})",
    "mm_hashes": lambda a, b: "the request field mm_hashes sets the item hash",
    "namespaces": lambda a, b: "ns-mix-v1 namespaces",
    "identity": lambda a, b: "set_identity() with a 32-byte identity",
}


def era_changes(before: V.Era | None, era: V.Era) -> list[str]:
    """What differs from the previous release range (why the row exists)."""
    if before is None:
        return ["oldest known release"]
    return [
        say(getattr(before, k), getattr(era, k))
        for k, say in _ERA_CHANGES.items()
        if getattr(before, k) != getattr(era, k)
    ]


def _list_versions(as_json: bool, engine: str | None) -> None:
    if engine not in (None, E.SGLANG):
        from .cli_family import list_fork_versions

        list_fork_versions(engine, as_json)
        return
    rows = []
    before = None
    for era in V.eras():
        members = V.RELEASES[V.RELEASES.index(era.first) : V.RELEASES.index(era.last) + 1]
        mods = ["mask64"] if era.mask64 else []
        rows.append(
            {
                "first": era.first,
                "last": era.last,
                "cpu": era.cpu,
                "cuda": era.cuda,
                "pad": era.pad,
                "modifiers": mods,
                "changes": era_changes(before, era),
                "releases": list(members),
            }
        )
        before = era
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{'releases':<28} {'cpu':<18} {'cuda':<18} {'pad':<14} {'mods':<7} what changed")
    for r in rows:
        span = r["first"] if r["first"] == r["last"] else f"{r['first']} - {r['last']}"
        print(
            f"{span:<28} {r['cpu']:<18} {r['cuda']:<18} {r['pad']:<14} "
            f"{' '.join(r['modifiers']) or '-':<7} {'; '.join(r['changes'])}"
        )
    print(
        f"{len(V.RELEASES)} releases known, newest {V.NEWEST}. "
        "py-hash-v0 and processor-py-hash are Python hash() values: not reproducible. "
        "Forks: --list-versions --engine sglang-kt|sglang-omni."
    )


def _given_hashes(args: argparse.Namespace) -> Iterator[tuple[tuple[str, str], Any]]:
    from . import api

    kw = {
        "sglang_version": args.sglang_version,
        "allow_newer": args.allow_newer,
        "engine": args.engine,
    }

    def mixed(item: Any) -> Any:
        return api.namespaced(item.hash, args.namespace, **kw) if args.namespace else item

    for text in args.mm_hash:
        yield ("mm_hash", text), lambda t=text: mixed(api.from_mm_hash(t, **kw))
    for text in args.identity:
        yield ("identity", text), lambda t=text: api.from_identity(t, **kw)
    for text in args.hashes:
        yield ("hash", text), lambda t=text: mixed(api.from_hash(_parse_int(t), **kw))


def _parse_int(text: str) -> int:
    from .errors import BadArgumentError

    try:
        return int(text, 0)
    except ValueError:
        raise BadArgumentError(f"--hash {text!r} is not an integer") from None


def _hash_paths(args: argparse.Namespace, out: _Output) -> int:
    from .loaders import iter_paths

    status = EXIT_OK
    files: list[str] = []
    for given in args.paths:  # one bad folder must not hide the others
        try:
            files.extend(iter_paths([given]))
        except MmhashError as e:
            status = _worst(status, _fail(e, None))
    jobs = max(1, args.jobs or min(4, os.cpu_count() or 1))
    if jobs > 1 and (args.tensor or any(_needs_torch(f) for f in files)):
        import torch  # noqa: F401  imported once here, not by several workers at the same time
    progress = _Progress(len(files), args.progress)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for results in pool.map(lambda f: _hash_file(f, args), files):
            progress.step()
            for label, result in results:
                if isinstance(result, BaseException):
                    progress.clear()
                    status = _worst(status, _fail(result, label))
                else:
                    out.emit(*result)
    finally:  # a closed stdout stops the run: files not started yet are dropped
        pool.shutdown(wait=True, cancel_futures=True)
    progress.clear()
    return status


def _needs_torch(path: str) -> bool:
    """Whether loading ``path`` imports torch (every supported file except numpy's)."""
    from .loaders import NUMPY_SUFFIXES

    return os.path.splitext(path)[1].lower() not in (*NUMPY_SUFFIXES, ".npz")


def _hash_file(path: str, args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Every result of one file as ``(label, (LoadedFeature, MMHash) | exception)``."""
    from . import api
    from .loaders import iter_features

    results: list[tuple[str, Any]] = []
    try:
        for loaded in iter_features(path, args.key, as_tensor=args.tensor):
            label = path if loaded.key is None else f"{path}[{loaded.key}]"
            try:
                item = api.hash_feature(
                    loaded.feature,
                    sglang_version=args.sglang_version,
                    device=args.device,
                    allow_newer=args.allow_newer,
                    engine=args.engine,
                )
                if args.namespace:
                    item = api.namespaced(
                        item.hash,
                        args.namespace,
                        sglang_version=args.sglang_version,
                        allow_newer=args.allow_newer,
                        engine=args.engine,
                    )
                results.append((label, (loaded, item)))
            except MmhashError as e:
                results.append((label, e))
    except MmhashError as e:
        results.append((path, e))
    return results


class _Output:
    """Prints results as the old helper's lines plus details, or as JSON lines."""

    def __init__(self, as_json: bool, version_note: str) -> None:
        self.as_json = as_json
        self.version_note = version_note
        self.count = 0

    def emit_one(self, given: tuple[str, str], make: Any) -> int:
        """Print the item of a given hash, mm_hash or identity (``given`` = (kind, text))."""
        try:
            item = make()
        except MmhashError as e:
            return _fail(e, f"--{given[0].replace('_', '-')} {given[1]}")
        self._print(None, None, None, item, {given[0]: given[1]})
        return EXIT_OK

    def emit(self, loaded: Any, item: Any) -> None:
        from .features import dtype_shape

        self._print(loaded.path, loaded.key, loaded.note, item, loaded=dtype_shape(loaded.feature))

    def _print(
        self,
        path: str | None,
        key: str | None,
        note: str | None,
        item: Any,
        given: dict[str, str] | None = None,
        loaded: tuple[Any, Any] | None = None,
    ) -> None:
        record = {"path": path, "key": key, **item.to_dict(), "version_source": self.version_note}
        if loaded is not None:
            record["dtype"], record["shape"] = loaded
        if given:
            record["input"] = given
        if note:
            record["note"] = note
        if self.as_json:
            print(json.dumps(record), flush=True)
            return
        if self.count:
            print()
        self.count += 1
        name = path if key is None else f"{path} [{key}]"
        if given:
            name = " ".join(f"{k} {v}" for k, v in given.items())
        print(f"{name}")
        if loaded is not None:
            print(f"  Loaded: {_dtype_shape_text(*loaded)}")
        if item.engine == E.SGLANG:
            print(f"  SGLang version: {item.sglang_version} ({self.version_note})")
        else:
            print(
                f"  Engine: {item.engine} {item.sglang_version} ({self.version_note}); "
                f"schemes of sglang {item.upstream_version}"
            )
        print(
            f"  Path: {item.device or '-'}    Schemes: {item.hash_scheme}, {item.pad_scheme}"
            + "".join(f", {m}" for m in item.modifiers)
        )
        print(f"Hash value: {item.hash}")
        print(f"Hash hex: {item.hex}")
        print(f"Pad value: {item.pad_value}")
        if len(item.pad_values) > 1:
            print(f"Pad values: {list(item.pad_values)}")
        if note:
            print(f"  Note: {note}")


def _dtype_shape_text(dtype: Any, shape: Any) -> str:
    """``float32 [10, 100]``; a list as ``list of 2: float32 [3], int64 [4]``."""
    if isinstance(dtype, list):
        parts = ", ".join(_dtype_shape_text(d, s) for d, s in zip(dtype, shape, strict=True))
        return f"list of {len(dtype)}: {parts}" if dtype else "empty list"
    return dtype if shape is None else f"{dtype} {list(shape)}"


class _Progress:
    """A one-line progress counter on stderr for long runs on a terminal."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        self.total = total
        self.done = 0
        self.on = enabled if enabled is not None else (total > 1 and sys.stderr.isatty())

    def step(self) -> None:
        self.done += 1
        if self.on:
            width = 30
            filled = width * self.done // max(1, self.total)
            sys.stderr.write(
                f"\rmmhash [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files"
            )
            sys.stderr.flush()

    def clear(self) -> None:
        if self.on:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
