"""pytest glue for request-level golden entries (``requests.json`` beside ``manifest.json``).

Registered by :mod:`pytest_mmhash.plugin` when the ``--mmhash-golden`` dir has a ``requests.json``:
one item per entry, ``request[<id>]``. Checking needs the real SGLang's processor path installed
(it makes the features); without it the items are skipped with that reason. ``--mmhash-update``
records real SGLang's own values and writes the file once, atomically, at the end of the session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .plugin_items import ReadableItem, ReportFailure


@dataclass
class RequestRun:
    """Per-session state: the file, the release checked (or recorded), what was recorded."""

    golden: Any  # golden.request_entries.RequestGolden
    release: str
    update: bool
    impl: str
    golden_arg: str
    pool: Any = None  # request_checks.ProcessorPool, made on first use
    recorded: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    crashed_workers: int = 0
    report: list[str] = field(default_factory=list)

    def processors(self) -> Any:
        """The session's processor pool (SGLang's processors are built once per model+deployment)."""
        if self.pool is None:
            from .request_checks import ProcessorPool

            self.pool = ProcessorPool()
        return self.pool


_RUN = pytest.StashKey[RequestRun]()


def start(
    config: pytest.Config,
    golden_dir: Path,
    golden_arg: str,
    version: str | None,
    update: bool,
    impl: str,
) -> None:
    """Load ``requests.json`` and register this module's hooks for the session."""
    from .golden.request_entries import load, requests_path

    g = load(requests_path(golden_dir))
    release = version or g.pin
    if update:
        release = _installed_sglang() or release
    config.stash[_RUN] = RequestRun(g, release, update, impl, golden_arg)
    config.pluginmanager.register(_Hooks(), "mmhash-requests")


def _installed_sglang() -> str | None:
    """The version of the importable sglang (read from its metadata), if any."""
    from importlib import metadata

    try:
        return metadata.version("sglang")
    except metadata.PackageNotFoundError:
        return None


def named_in_args(config: pytest.Config, path: Path) -> bool:
    """Whether ``path`` (or a node id inside it) is among the command-line arguments."""
    base = config.invocation_params.dir
    return any((base / a.split("::")[0]).resolve() == path for a in config.args)


class RequestFile(pytest.File):
    """``requests.json``: one item per entry."""

    def collect(self) -> list[pytest.Item]:
        """Items for every entry, in file order."""
        run = self.config.stash[_RUN]
        return [
            RequestItem.from_parent(self, name=f"request[{e.id}]", entry_id=e.id)
            for e in run.golden.entries
        ]


class RequestItem(ReadableItem):
    """One golden request: check it against the recorded items (or record real SGLang's)."""

    def __init__(self, *, entry_id: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.entry_id = entry_id

    def runtest(self) -> None:
        """Record (``--mmhash-update``) or check this entry."""
        __tracebackhide__ = True
        run = self.config.stash[_RUN]
        if importlib.util.find_spec("sglang") is None:
            pytest.skip(
                "needs the real sglang's processor path installed (tools/install-sglang.sh)"
            )
        from . import request_checks as rc

        entry = run.golden[self.entry_id]
        if run.update:
            _record(
                self.config, run, entry.id, rc.sglang_items(run.processors(), run.golden, entry)
            )
            return
        installed = _installed_sglang()
        if installed != run.release:
            pytest.skip(
                f"the installed sglang is {installed}; checking {run.release} needs its processor"
            )
        expected = entry.values.get(run.release)
        if expected is None and run.release != run.golden.pin:
            pytest.skip(f"no values recorded for sglang {run.release} (only the pin needs them)")
        if expected is None:
            raise ReportFailure(
                f"{self.name}: no values recorded for sglang {run.release}; record them with\n  "
                + _update_command(self, run)
            )
        if run.impl == "sglang":
            got = rc.sglang_items(run.processors(), run.golden, entry)
        else:
            got = rc.engine_items(run.processors(), run.golden, entry, run.release)
        problems = rc.compare(expected, got)
        if problems:
            raise ReportFailure(
                f"{self.name} ({entry.model}, {', '.join(entry.media)}, {entry.deployment}):\n  "
                + "\n  ".join(problems)
                + "\nif real SGLang changed on purpose, re-record with\n  "
                + _update_command(self, run)
            )


def _update_command(item: pytest.Item, run: RequestRun) -> str:
    """The command that re-records this entry from real SGLang."""
    where = os.path.relpath(run.golden.path, item.config.invocation_params.dir)
    parts = [
        "pytest",
        "--mmhash-golden",
        run.golden_arg,
        "--mmhash-update",
        f"{where}::{item.name}",
    ]
    return f"{shlex.join(parts)}   # in a venv with real sglang=={run.release} (its processor path)"


def _record(
    config: pytest.Config, run: RequestRun, entry_id: str, items: list[dict[str, Any]]
) -> None:
    """Queue one entry's values; an xdist worker also hands them to the controller."""
    run.recorded[entry_id] = items
    if hasattr(config, "workeroutput"):
        config.workeroutput["mmhash_requests_recorded"] = json.dumps(run.recorded)


class _Hooks:
    """The session hooks, registered only when a golden dir has ``requests.json``."""

    def pytest_collect_file(
        self, file_path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        """Claim ``requests.json`` when collection reaches it."""
        run = parent.config.stash[_RUN]
        if file_path == run.golden.path:
            return RequestFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list
    ) -> None:
        """Add the request items when ``requests.json`` was not among the arguments."""
        run = config.stash[_RUN]
        if any(isinstance(i, RequestItem) for i in items):
            return
        if named_in_args(config, run.golden.path.with_name("manifest.json")):
            return  # only the feature manifest was asked for
        items.extend(RequestFile.from_parent(session, path=run.golden.path).collect())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: collect a worker's recorded entries (a crashed worker blocks the write)."""
        run = node.config.stash[_RUN]
        if not run.update:
            return
        if error is not None:
            run.crashed_workers += 1
            return
        payload = getattr(node, "workeroutput", {}).get("mmhash_requests_recorded")
        run.recorded.update(json.loads(payload or "{}"))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Controller: write the recorded entries once, atomically; close the processors."""
        run = session.config.stash[_RUN]
        if run.pool is not None:
            run.pool.close()
        if not run.update or hasattr(session.config, "workerinput"):
            return
        from .golden.request_entries import load, with_values
        from .golden.store import write_requests

        path = run.golden.path
        if exitstatus == pytest.ExitCode.INTERRUPTED or run.crashed_workers:
            run.report.append(f"mmhash: NOT written: the run was partial; {path} is unchanged")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        if not run.recorded:
            return
        if load(path).to_json() != run.golden.to_json():
            run.report.append(f"mmhash: NOT written: {path} changed on disk during the run")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        write_requests(with_values(run.golden, run.recorded, run.release, _provenance(run.release)))
        run.report.append(
            f"mmhash: recorded {len(run.recorded)} request(s) from real sglang {run.release} into {path}"
        )

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        """Say what --mmhash-update wrote (or why not)."""
        for line in config.stash[_RUN].report:
            terminalreporter.write_line(line, red=line.startswith("mmhash: NOT"), bold=True)


def _provenance(release: str) -> dict[str, str]:
    """The versions that shape a processor's output, beside the hashing ones."""
    from importlib import metadata

    from .golden.store import current_provenance

    prov = current_provenance(release)
    for dist in ("transformers", "tokenizers", "torchvision", "pillow", "soundfile", "torchaudio"):
        try:
            prov[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            prov[dist] = "not installed"
    return prov
