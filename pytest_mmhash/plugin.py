"""pytest plugin (entry point ``mmhash``): golden regression items, the ``gpu`` marker and fixtures.

Thin glue over :mod:`pytest_mmhash.golden` (the manifest), :mod:`pytest_mmhash.implementations`
(the checks) and :mod:`pytest_mmhash.equality` (``mmhash_equal``). It imports nothing heavy at
module level (no torch, numpy or even :mod:`pytest_mmhash.api`), so a pytest run that does not use
it stays as fast.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .plugin_items import ReadableItem, ReportFailure

_OPTIONS = (  # (option, ini key, kind, help)
    (
        "--mmhash-golden",
        "mmhash_golden",
        "string",
        "golden dir (with manifest.json): collect one item per (entry, cpu/cuda path). From the "
        "ini key alone the items are collected only when a path in the golden dir is named on the "
        "command line (or mmhash_golden_always is set); the fixtures use it either way",
    ),
    (
        "--mmhash-sglang-version",
        "mmhash_sglang_version",
        "string",
        "sglang release to check and the fixtures' default (default: the manifest pin; without a "
        "golden dir the installed sglang's, else the newest)",
    ),
    (
        "--mmhash-engine",
        "mmhash_engine",
        "string",
        "engine of the release checked or recorded: sglang (default), sglang-kt or sglang-omni; "
        "--mmhash-sglang-version is then its release",
    ),
    (
        "--mmhash-impl",
        "mmhash_impl",
        "string",
        "what golden items check: engine (default), sglang (the installed real SGLang), "
        "exec:COMMAND (an external program, protocol v1) or MODULE:CALLABLE",
    ),
    (
        "--mmhash-exec-timeout",
        "mmhash_exec_timeout",
        "string",
        "seconds an exec:COMMAND implementation has for each reply (default 60)",
    ),
    (
        "--mmhash-update",
        "mmhash_update",
        "bool",
        "(re)record golden values from the installed real SGLang (never in CI)",
    ),
    (
        "--mmhash-repin",
        "mmhash_repin",
        "bool",
        "with --mmhash-update: record the installed sglang although it differs from the pin, and make it the pin",
    ),
    (
        "--mmhash-require-gpu",
        "mmhash_require_gpu",
        "bool",
        "a missing CUDA device is an error, not a skip; cuda-path golden items run on the GPU",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register each option and its ini key (pytest-mpl style: the command line wins)."""
    group = parser.getgroup("mmhash", "multimodal item hashes of SGLang releases (pytest-mmhash)")
    for opt, ini, kind, help_ in _OPTIONS:
        if kind == "bool":
            group.addoption(opt, action="store_true", default=None, help=help_)
            parser.addini(ini, help_, type="bool", default=False)
        else:
            group.addoption(
                opt, action="store", default=None, metavar=opt.split("-")[-1].upper(), help=help_
            )
            parser.addini(ini, help_, type="string", default=None)
    parser.addini(
        "mmhash_golden_always",
        "collect the golden items of the mmhash_golden ini key on every run",
        type="bool",
        default=False,
    )


@dataclass
class _Settings:
    golden: Path | None
    golden_arg: str | None
    version: str | None
    impl: str
    exec_timeout: str | None
    update: bool
    repin: bool
    require_gpu: bool
    engine: str | None = None
    collect: bool = False  # whether this run collects the golden items


@dataclass
class _Run:
    """Per-session state of a golden run (kept in ``config.stash``)."""

    settings: _Settings
    manifest: Any  # golden.model.Manifest
    manifest_bytes: bytes
    release: str
    impl: Any  # implementations.Impl
    recorded: list = field(
        default_factory=list
    )  # golden.model.Recorded, this process or collected from workers
    crashed_workers: int = 0
    report: list[str] = field(default_factory=list)


_SETTINGS = pytest.StashKey[_Settings]()
_RUN = pytest.StashKey[_Run]()
_CUDA = pytest.StashKey[bool]()
_GPU_SKIPPED = pytest.StashKey[bool]()


def _setting(config: pytest.Config, opt: str, ini: str) -> Any:
    """The command-line value, else the ini value (paths relative to the ini file's dir)."""
    value = config.getoption(opt.lstrip("-").replace("-", "_"))
    if value is not None:
        return value
    value = config.getini(ini)
    if ini == "mmhash_golden" and value:
        base = config.inipath.parent if config.inipath else config.rootpath
        return str(base / value)
    return value or None


def _settings(config: pytest.Config) -> _Settings:
    """Every mmhash option, command line over ini, with the golden dir made absolute."""
    get = {ini: _setting(config, opt, ini) for opt, ini, _, _ in _OPTIONS}
    golden = get["mmhash_golden"]
    path = Path(golden) if golden else None
    if path is not None:
        path = (config.invocation_params.dir / path).resolve()
    s = _Settings(
        path,
        golden,
        get["mmhash_sglang_version"],
        get["mmhash_impl"] or "engine",
        get["mmhash_exec_timeout"],
        bool(get["mmhash_update"]),
        bool(get["mmhash_repin"]),
        bool(get["mmhash_require_gpu"]),
        get["mmhash_engine"],
    )
    s.collect = path is not None and (
        config.getoption("mmhash_golden") is not None
        or s.update
        or bool(config.getini("mmhash_golden_always"))
        or _names_golden(config, path)
    )
    return s


def _names_golden(config: pytest.Config, golden: Path) -> bool:
    """Whether a path (or node id) to collect is the golden dir or lies inside it."""
    base = config.invocation_params.dir
    for arg in config.args:
        text = str(arg).split("::")[0]
        if not text:
            continue
        p = (base / text).resolve()
        if p == golden or p.is_relative_to(golden):
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``gpu`` marker; with a golden dir, load the manifest and refuse bad setups early."""
    config.addinivalue_line(
        "markers",
        "gpu: needs a CUDA device; skipped without one, an error under --mmhash-require-gpu",
    )
    s = config.stash[_SETTINGS] = _settings(config)
    if s.golden is None:
        for flag, on in (("--mmhash-update", s.update), ("--mmhash-repin", s.repin)):
            if on:
                raise pytest.UsageError(
                    f"{flag} needs --mmhash-golden DIR (or the mmhash_golden ini key)"
                )
    if not s.collect or s.golden is None:
        return
    from .errors import MmhashError

    try:
        config.stash[_RUN] = _start(s, s.golden)
        _start_requests(config, s, s.golden)
    except MmhashError as e:
        raise pytest.UsageError(str(e)) from None


def _start_requests(config: pytest.Config, s: _Settings, golden_dir: Path) -> None:
    """Request-level golden entries too, when the golden dir has a ``requests.json``."""
    from .golden.request_entries import requests_path

    if requests_path(golden_dir).is_file():
        from .plugin_requests import start

        start(config, golden_dir, s.golden_arg or str(golden_dir), s.version, s.update, s.impl)


def _start(s: _Settings, golden_dir: Path) -> _Run:
    """Load the manifest, pick the release to check (or record) and the implementation; refuse bad setups."""
    from .errors import GoldenError
    from .golden import store, validation
    from .implementations import resolve_impl

    path = store.manifest_path(golden_dir)
    data = store.read_bytes(path)
    manifest = validation.parse(data, path.parent, str(path))
    if s.update:
        impl, release = _recorder(s, manifest)
    else:
        if s.repin:
            raise GoldenError("--mmhash-repin only makes sense with --mmhash-update")
        release = _checked_release(s, manifest)
        impl = resolve_impl(s.impl, _exec_timeout(s.exec_timeout))
        if impl.release not in (None, release):
            raise GoldenError(
                f"--mmhash-impl sglang runs the installed sglang {impl.release}, but sglang {release} is "
                f"being checked: pass --mmhash-sglang-version {impl.release}, or use a venv with sglang=={release}"
            )
    return _Run(s, manifest, data, release, impl)


def _exec_timeout(text: str | None) -> float | None:
    """``--mmhash-exec-timeout`` as seconds (None: the default); the hasher checks the range."""
    from .errors import GoldenError

    try:
        return None if text is None else float(text)
    except ValueError:
        raise GoldenError(f"--mmhash-exec-timeout {text!r}: expected seconds, e.g. 60") from None


def _recorder(s: _Settings, manifest: Any) -> tuple[Any, str]:
    """The real SGLang that --mmhash-update records from: refuses CI, other impls, missing or mismatched sglang."""
    from .errors import GoldenError
    from .implementations import recording_impl

    if "CI" in os.environ:
        raise GoldenError(
            "--mmhash-update is refused when the CI environment variable is set: golden values are "
            "recorded on purpose, by a person, from real SGLang; never by a CI job"
        )
    if s.impl != "engine":
        raise GoldenError(
            f"--mmhash-update records from the installed real SGLang only; drop --mmhash-impl {s.impl}"
        )
    target = _release(s.engine, s.version) if s.version else None
    return recording_impl(target, manifest.pin, s.repin, s.engine)


def _release(engine: str | None, version: str) -> str:
    """The release key a user-given engine and version name (``v0.5.23`` -> ``0.5.23``;
    ``sglang-kt``, ``0.7.2`` -> ``sglang-kt==0.7.2``, as a manifest names fork releases)."""
    from .engines import SGLANG, release_key, resolve_key

    return resolve_key(release_key(engine or SGLANG, version))


def _checked_release(s: _Settings, manifest: Any) -> str:
    """The recorded release to check: --mmhash-sglang-version (of --mmhash-engine), else the pin,
    else (an engine other than the pin's) that engine's newest recorded release; it must have values."""
    from .engines import key_text, release_key, releases, split_key
    from .errors import GoldenError

    recorded = manifest.releases()
    release = _release(s.engine, s.version) if s.version else manifest.pin
    if not s.version and s.engine and split_key(manifest.pin)[0] != s.engine:
        own = [r for r in recorded if split_key(r)[0] == s.engine]
        release = own[-1] if own else release_key(s.engine, releases(s.engine)[-1])
    if recorded and release not in recorded:  # a new store's items each say how to record
        raise GoldenError(
            f"{manifest.path}: no values are recorded for {key_text(release)} (recorded releases: "
            f"{', '.join(recorded) or 'none yet'}); record them with --mmhash-update from "
            f"{key_text(release)}, or pick a recorded release with --mmhash-sglang-version"
        )
    return release


# --------------------------------------------------------------------------- collection


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Claim the golden manifest when collection reaches it (a path or node id on the command line)."""
    run = parent.config.stash.get(_RUN, None)
    if run is not None and file_path == run.manifest.path:
        return GoldenFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list
) -> None:
    """Add the golden items when the manifest was not collected from the arguments (before -k/-m)."""
    run = config.stash.get(_RUN, None)
    if run is None or any(isinstance(i, _GoldenNode) for i in items):
        return
    from .golden.request_entries import requests_path
    from .plugin_requests import named_in_args

    if named_in_args(config, requests_path(run.manifest.root)):
        return  # only the request entries were asked for
    items.extend(GoldenFile.from_parent(session, path=run.manifest.path).collect())


class GoldenFile(pytest.File):
    """The manifest: one item per (entry, path), plus one failing item per unlisted feature file."""

    def collect(self) -> list[pytest.Item]:
        """Build the items from the manifest loaded at configure time."""
        from .golden import model, store

        run = self.config.stash[_RUN]
        items: list[pytest.Item] = [
            GoldenItem.from_parent(self, name=f"{e.id}[{d}]", entry_id=e.id, device=d)
            for e, d in model.iter_items(run.manifest)
        ]
        items += [
            UnlistedFileItem.from_parent(self, name=f"unlisted[{f}]", file=f)
            for f in store.unlisted_files(run.manifest)
        ]
        return items


class _GoldenNode(ReadableItem):
    """The feature golden items (entries and unlisted files); their presence among the items means
    the feature golden was collected already."""


class GoldenItem(_GoldenNode):
    """One golden entry on one path: check it (or record it under --mmhash-update)."""

    def __init__(self, *, entry_id: str, device: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.entry_id, self.device = entry_id, device
        run = self.config.stash[_RUN]
        if device == "cuda" and run.settings.require_gpu:
            self.add_marker("gpu")

    def runtest(self) -> None:
        """Check the entry against the recorded value, or record real SGLang's value."""
        __tracebackhide__ = True
        from .engines import has_cuda_path
        from .implementations import check_entry, format_check, record_entry

        run = self.config.stash[_RUN]
        entry = run.manifest[self.entry_id]
        if self.device == "cuda" and not has_cuda_path(run.release):
            pytest.skip(f"{run.release} hashes on the CPU only: it has no CUDA path")
        if run.settings.update:
            _record(
                self.config,
                run,
                record_entry(run.manifest, entry, run.release, self.device, run.impl),
            )
            return
        c = check_entry(
            run.manifest, entry, run.release, self.device, run.impl, gpu=run.settings.require_gpu
        )
        if c.problem is not None:
            raise ReportFailure(
                format_check(c, *_fix_commands(self, run, c.diagnosis.bytes_changed))
            )


class UnlistedFileItem(_GoldenNode):
    """A feature file under the golden dir that no entry names: always fails."""

    def __init__(self, *, file: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.file = file

    def runtest(self) -> None:
        """Fail: an unlisted feature file is either a forgotten entry or a leftover."""
        __tracebackhide__ = True
        run = self.config.stash[_RUN]
        raise ReportFailure(
            f"{run.manifest.root / self.file} is in the golden dir but no manifest entry names it: "
            f"add an entry for it (with values recorded from real SGLang) or delete the file"
        )


def _fix_commands(item: GoldenItem, run: _Run, bytes_changed: bool) -> tuple[str, str]:
    """The exact commands that fix a failed item: re-record it from real SGLang (its node id
    selects it; both paths of the entry after a refresh, which drops both) and refresh the entry."""
    from .install_sglang import record_command, record_source
    from .versions import DEVICES

    golden_dir = run.settings.golden_arg or str(run.settings.golden)
    where = os.path.relpath(run.manifest.path, item.config.invocation_params.dir)
    names = [f"{item.entry_id}[{d}]" for d in DEVICES] if bytes_changed else [item.name]
    record = record_command(run.release, golden_dir, targets=[f"{where}::{n}" for n in names])
    refresh = shlex.join(["mmhash", "golden", "refresh", golden_dir, item.entry_id])
    return f"{record}   # {record_source(run.release)}", refresh


def _record(config: pytest.Config, run: _Run, rec: Any) -> None:
    """Queue one recorded value; an xdist worker also hands it to the controller."""
    run.recorded.append(rec)
    if hasattr(config, "workeroutput"):
        import json

        config.workeroutput["mmhash_recorded"] = json.dumps([r.to_json() for r in run.recorded])


# --------------------------------------------------------------------------- recording at session end


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the values a worker recorded (a crashed worker blocks the write)."""
    run = node.config.stash.get(_RUN, None)
    if run is None or not run.settings.update:
        return
    if error is not None:
        run.crashed_workers += 1
        return
    import json

    from .golden.model import Recorded

    payload = getattr(node, "workeroutput", {}).get("mmhash_recorded")
    run.recorded += [Recorded.from_json(d) for d in json.loads(payload or "[]")]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Controller (or a run without xdist): write every recorded value once, atomically."""
    run = session.config.stash.get(_RUN, None)
    if run is None or not run.settings.update or hasattr(session.config, "workerinput"):
        return
    from .errors import MmhashError

    try:
        run.report.append(_flush(run, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED))
    except MmhashError as e:
        run.report.append(f"mmhash: NOT written: {e}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _flush(run: _Run, interrupted: bool) -> str:
    """Merge the recorded values into the manifest and write it once; a summary line."""
    from .errors import GoldenError
    from .golden import model, store

    path = run.manifest.path
    if interrupted or run.crashed_workers:
        why = (
            "the session was interrupted"
            if interrupted
            else f"{run.crashed_workers} xdist worker(s) crashed"
        )
        raise GoldenError(f"{why}; {path} is unchanged (nothing is written from a partial run)")
    if store.read_bytes(path) != run.manifest_bytes:
        raise GoldenError(f"{path} changed on disk during the run; not overwriting it")
    pin = run.release if run.settings.repin else None
    prov = {run.release: store.current_provenance(run.release)}
    new = store.record_values(run.manifest, run.recorded, prov, pin)
    changed = model.changed_count(run.manifest, new)
    if not changed and pin in (None, run.manifest.pin):
        return f"mmhash: {len(run.recorded)} values recorded from real sglang {run.release}; all already in {path}"
    store.write_manifest(new)
    return (
        f"mmhash: recorded {len(run.recorded)} values from real sglang {run.release} into {path}: "
        f"{changed} new or changed" + (f"; pin is now {run.release}" if pin else "")
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Release what the implementation holds (an exec: program and its temporary parts)."""
    run = config.stash.get(_RUN, None)
    if run is not None and run.impl.close is not None:
        run.impl.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say what --mmhash-update wrote (or why it wrote nothing)."""
    run = config.stash.get(_RUN, None)
    for line in run.report if run else ():
        terminalreporter.write_line(line, red=line.startswith("mmhash: NOT"), bold=True)


# --------------------------------------------------------------------------- gpu marker


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``gpu`` items without CUDA (error under --mmhash-require-gpu); torch is checked lazily."""
    if item.get_closest_marker("gpu") is None:
        return
    if not _cuda_available(item.config):
        if item.config.stash[_SETTINGS].require_gpu:
            pytest.fail(
                "--mmhash-require-gpu: this test needs a CUDA device and torch.cuda.is_available() is False",
                pytrace=False,
            )
        item.stash[_GPU_SKIPPED] = True
        pytest.skip("needs a CUDA device (torch.cuda.is_available() is False)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A ``gpu`` skip is reported at the test, as a ``skipif`` mark's is, not inside this plugin."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and item.stash.get(_GPU_SKIPPED, False) and isinstance(rep.longrepr, tuple):
        path, line = item.reportinfo()[:2]
        rep.longrepr = (str(path), (line or 0) + 1, rep.longrepr[2])


def _cuda_available(config: pytest.Config) -> bool:
    if _CUDA not in config.stash:
        try:
            import torch

            config.stash[_CUDA] = bool(torch.cuda.is_available())
        except ImportError:
            config.stash[_CUDA] = False
    return config.stash[_CUDA]


# --------------------------------------------------------------------------- fixtures


_DEFAULT_RELEASE = pytest.StashKey[tuple[str | None, str | None]]()


def _default_release(config: pytest.Config) -> tuple[str | None, str | None]:
    """The fixtures' ``(engine, release)``: --mmhash-engine's --mmhash-sglang-version (sglang's
    when no engine is named), else the golden dir's pin (unless --mmhash-engine names another
    engine), else --mmhash-engine or None, and None for the release (the library's default: the
    installed engine's release, else the newest)."""
    if _DEFAULT_RELEASE not in config.stash:
        from .engines import SGLANG, split_key

        s = config.stash[_SETTINGS]
        default: tuple[str | None, str | None] = (s.engine, None)
        if s.version:
            default = (s.engine or SGLANG, s.version)
        elif s.golden is not None:
            from .golden.store import load_manifest

            run = config.stash.get(_RUN, None)
            pin = split_key((run.manifest if run else load_manifest(s.golden)).pin)
            if s.engine in (None, pin[0]):
                default = pin
        config.stash[_DEFAULT_RELEASE] = default
    return config.stash[_DEFAULT_RELEASE]


@pytest.fixture
def mmhash(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``mmhash(feature, **kw) -> MMHash``: :func:`pytest_mmhash.hash_feature` with the session's
    engine and release (--mmhash-engine, --mmhash-sglang-version, else the golden dir's pin, else
    the installed engine's release, else the newest); ``engine=``/``sglang_version=`` override each."""
    from .api import hash_feature

    engine, version = _default_release(request.config)

    def _mmhash(feature: Any, **kw: Any) -> Any:
        kw.setdefault("engine", engine)
        kw.setdefault("sglang_version", version)
        return hash_feature(feature, **kw)

    return _mmhash


@pytest.fixture
def mmhash_equal(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``mmhash_equal(actual, expected, *, sglang_version=None, device=None, engine=None)``:
    assert equal hash and pads, at the engine, release and path an expected MMHash or recorded
    value names, else the ``mmhash`` fixture's default engine and release."""
    from .equality import assert_mmhash_equal

    default_engine, version = _default_release(request.config)

    def _equal(
        actual: Any,
        expected: Any,
        *,
        sglang_version: str | None = None,
        device: str | None = None,
        engine: str | None = None,
    ) -> Any:
        __tracebackhide__ = True
        return assert_mmhash_equal(
            actual,
            expected,
            sglang_version=sglang_version,
            device=device,
            engine=engine,
            default_version=version,
            default_engine=default_engine,
        )

    return _equal


@pytest.fixture
def mmhash_golden(request: pytest.FixtureRequest) -> Any:
    """The golden manifest of --mmhash-golden (read only): ``mmhash_golden[id].value(release, device)``."""
    run = request.config.stash.get(_RUN, None)  # set at configure when golden items are collected
    if run is not None:
        return run.manifest
    golden = request.config.stash[_SETTINGS].golden  # an ini golden dir that is not collected
    if golden is None:
        pytest.fail(
            "the mmhash_golden fixture needs --mmhash-golden DIR (or the mmhash_golden ini key)",
            pytrace=False,
        )
    from .golden.store import load_manifest

    return load_manifest(golden)
