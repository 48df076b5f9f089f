"""What a golden check compares with the manifest: implementations, the check itself, its failure text.

Implementations (:func:`resolve_impl`):

* ``engine``: this package's :func:`pytest_mmhash.hash_feature`;
* ``sglang``: the installed real SGLang, through :mod:`pytest_mmhash.oracle.driver` in a child
  process (:mod:`pytest_mmhash.oracle.worker`);
* ``exec:COMMAND``: an external program speaking protocol v1 (docs/spec.md section 11,
  :mod:`pytest_mmhash.exec_process`); protocol failures fail the check with their reason;
* ``MODULE:CALLABLE``: a downstream function ``fn(feature, *, sglang_version, device)`` that
  returns an ``int`` hash (pad values then go unchecked), an :class:`~pytest_mmhash.MMHash`, or a
  dict ``{"hash": int, "pad_values": [int, ...]}`` / ``{"error": "TypeError: ..."}``. It raises
  :class:`~pytest_mmhash.UnhashableFeatureError` to mean "SGLang raises here" (matches any
  recorded error); any other exception is a bug in it and fails the check with its traceback.

Values are only ever *recorded* from real SGLang (:func:`recording_impl`).
"""

from __future__ import annotations

import functools
import importlib
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import GoldenError, MmhashError, UnhashableFeatureError, error_text
from .golden.model import Entry, Manifest, Recorded
from .golden.store import Diagnosis, diagnose
from .golden.validation import is_int
from .ints import hex64
from .versions import schemes_line

# --------------------------------------------------------------------------- implementations


@dataclass(frozen=True)
class Observed:
    """What an implementation produced for one feature: a value in manifest form, or an error."""

    value: Mapping[str, Any]  # {"hash","hex","pad_values"}, {"hash","hex"} (int-only), or {"error"}
    schemes: Mapping[str, Any] | None = (
        None  # hash/pad scheme ids when the implementation knows them
    )
    any_error: bool = False  # an UnhashableFeatureError: stands for whatever error SGLang raises

    @property
    def is_error(self) -> bool:
        """Whether the implementation reported an error instead of a value."""
        return "error" in self.value


@dataclass(frozen=True)
class Impl:
    """A named implementation: ``fn(feature, release, device) -> Observed``."""

    name: str
    kind: str  # "engine" | "sglang" | "callable" | "exec"
    fn: Callable[[Any, str, str], Observed]
    release: str | None = None  # the only release it can compute (real SGLang), None: any
    close: Callable[[], None] | None = None  # releases what it holds (a process) at session end

    def __call__(self, feature: Any, release: str, device: str) -> Observed:
        """Run the implementation on one feature."""
        __tracebackhide__ = True
        return self.fn(feature, release, device)


def _from_mmhash(m: Any) -> Observed:
    pads = [int(p) for p in m.pad_values]
    return Observed(
        {"hash": int(m.hash), "hex": hex64(int(m.hash)), "pad_values": pads},
        dict(m.schemes),
    )


def _error(e: BaseException) -> dict[str, str]:
    return {"error": error_text(e)}


def _engine(feature: Any, release: str, device: str) -> Observed:
    __tracebackhide__ = True
    from .api import hash_feature
    from .engines import split_key

    engine, version = split_key(release)
    try:
        return _from_mmhash(
            hash_feature(feature, engine=engine, sglang_version=version, device=device)
        )
    except UnhashableFeatureError as e:
        return Observed(_error(e), any_error=True)


@functools.cache
def _real_sglang_driver() -> Any:
    """Real SGLang, run in a child process (:class:`.oracle.worker.SGLangProcess`, so that its
    harness never patches this one); refuses when sglang is not importable.

    This is the only source of recorded values. Tests replace this function to simulate real
    SGLang; nothing else can.
    """
    import importlib.util
    import sys

    if importlib.util.find_spec("sglang") is None:
        raise GoldenError(
            f"real SGLang is not importable in this environment ({sys.executable}); golden values "
            f"come only from real SGLang: run in a venv with it installed (`mmhash install-sglang VERSION VENV` builds one)"
        )
    from .oracle.worker import SGLangProcess

    return SGLangProcess()


def real_sglang() -> tuple[Impl, str]:
    """The installed real SGLang as an :class:`Impl`, and the release it is."""
    from .versions import resolve

    driver = _real_sglang_driver()
    installed = resolve(driver.sglang_version(), allow_newer=False).version

    def fn(feature: Any, release: str, device: str) -> Observed:
        if release != installed:
            raise GoldenError(f"the installed sglang is {installed}, not {release}")
        return _real_observed(driver.real_item(feature, device))

    return Impl(f"sglang {installed} (installed)", "sglang", fn, installed), installed


def _real_observed(v: Mapping[str, Any]) -> Observed:
    """A real engine's ``{"hash", "pad_values"}`` or ``{"error"}`` in manifest form."""
    if "error" in v:
        return Observed({"error": v["error"]})
    return Observed(
        {
            "hash": v["hash"],
            "hex": hex64(v["hash"]),
            "pad_values": list(v["pad_values"]),
        }
    )


def real_fork(engine: str) -> tuple[Impl, str]:
    """An installed fork's own hashing code (``MMHASH_FORK_SITES``, :mod:`.oracle.forks`) as an
    :class:`Impl`, and its release key (e.g. ``sglang-kt==0.7.2``, from the fork's metadata)."""
    from .engines import SGLANG_KT, release_key, resolve
    from .oracle import forks

    found = [i for i in forks.sites() if i.name == engine]
    if len(found) != 1:
        raise GoldenError(
            f"recording {engine} needs exactly one {engine} install named by MMHASH_FORK_SITES "
            f"(mmhash install-sglang {engine}==VERSION DIR), found {len(found)}"
        )
    fork = found[0]
    key = release_key(engine, resolve(engine, fork.version).version)
    if engine == SGLANG_KT:
        item = forks.KtOracle.load(fork).item
    else:
        pin = forks.pinned_sglang(fork)
        ups = [i for i in forks.sites() if i.name == "sglang" and i.version == pin]
        if not ups:
            raise GoldenError(f"{engine} {fork.version} pins sglang=={pin}; install it beside it")
        omni = forks.OmniOracle.load(fork, ups[0])

        def item(feature: Any, device: str, preset_hash: int | None = None) -> dict[str, Any]:
            return omni.waveform_item(feature)  # a waveform has no device: omni hashes on the CPU

    def fn(feature: Any, release: str, device: str) -> Observed:
        if release != key:
            raise GoldenError(f"the installed fork is {key}, not {release}")
        return _real_observed(item(feature, device))

    return Impl(f"{engine} {fork.version} (its own code)", "sglang", fn, key), key


def _callable_result(name: str, r: Any) -> Observed:
    if is_int(r):
        return Observed({"hash": r, "hex": hex64(r)})
    if hasattr(r, "pad_values") and hasattr(r, "hash") and hasattr(r, "schemes"):
        return _from_mmhash(r)
    if isinstance(r, Mapping):
        d = dict(r)
        if "error" in d and isinstance(d["error"], str) and set(d) == {"error"}:
            return Observed(d)
        if is_int(d.get("hash")) and set(d) <= {"hash", "hex", "pad_values"}:
            out = {"hash": d["hash"], "hex": hex64(d["hash"])}
            if "pad_values" in d:
                out["pad_values"] = [int(p) for p in d["pad_values"]]
            return Observed(out)
    raise GoldenError(
        f"{name} returned {r!r}; the contract is an int hash, an MMHash, or a dict "
        f"{{'hash': int, 'pad_values': [int, ...]}} / {{'error': 'Type: message'}}"
    )


def _import_callable(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise GoldenError(f"--mmhash-impl {spec}: cannot import module {module!r}: {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise GoldenError(
                f"--mmhash-impl {spec}: module {module!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise GoldenError(f"--mmhash-impl {spec}: {attr!r} is not callable")
    return obj


def _callable_impl(spec: str) -> Impl:
    fn = _import_callable(spec)

    def run(feature: Any, release: str, device: str) -> Observed:
        __tracebackhide__ = True
        from .engines import SGLANG, split_key

        engine, version = split_key(release)
        kw = {} if engine == SGLANG else {"engine": engine}  # fork releases name their engine
        try:
            r = fn(feature, sglang_version=version, device=device, **kw)
        except UnhashableFeatureError as e:
            return Observed(_error(e), any_error=True)
        return _callable_result(spec, r)

    return Impl(spec, "callable", run)


def _exec_impl(command: str, timeout: float | None) -> Impl:
    from .exec_process import ExecHasher

    hasher = ExecHasher(command, timeout)

    def run(feature: Any, release: str, device: str) -> Observed:
        v = hasher.hash_feature(feature, release, device)
        if "error" in v:
            return Observed(v)
        return Observed({**v, "hex": hex64(v["hash"])})

    return Impl(f"exec:{command}", "exec", run, close=hasher.close)


def resolve_impl(spec: str, exec_timeout: float | None = None) -> Impl:
    """``engine``, ``sglang`` (the installed real SGLang), ``exec:COMMAND`` or ``MODULE:CALLABLE``."""
    if spec == "engine":
        return Impl("engine", "engine", _engine)
    if spec == "sglang":
        return real_sglang()[0]
    if spec.startswith("exec:"):
        return _exec_impl(spec.removeprefix("exec:"), exec_timeout)
    module, sep, attr = spec.partition(":")
    if sep and module and attr:
        return _callable_impl(spec)
    raise GoldenError(
        f"--mmhash-impl {spec!r}: expected engine, sglang, exec:COMMAND or MODULE:CALLABLE"
    )


def recording_impl(
    target: str | None, pin: str, repin: bool, engine: str | None = None
) -> tuple[Impl, str]:
    """The real SGLang to record values from, and the release to record; refuses mismatches.

    ``target`` is the release asked for (None: the pin). Recording a release other than the
    installed sglang's is refused; recording one other than the pin needs ``target`` to name it
    or ``repin`` (which makes it the new pin).
    """
    impl, installed = real_sglang() if engine in (None, "sglang") else real_fork(engine)
    if target is not None and target != installed:
        raise GoldenError(
            f"--mmhash-update records from the installed sglang {installed}, but release {target} "
            f"was asked for: run in a venv with sglang=={target}"
        )
    if target is None and installed != pin and not repin:
        raise GoldenError(
            f"the installed sglang {installed} differs from the manifest pin {pin}: run in a venv "
            f"with sglang=={pin}, or pass --mmhash-repin to record {installed} and make it the pin, "
            f"or --mmhash-sglang-version {installed} to record {installed} without changing the pin"
        )
    return impl, installed


def on_cuda(feature: Any) -> Any:
    """``feature`` with every torch tensor moved to the real CUDA device (lists kept)."""
    if isinstance(feature, list):
        return [on_cuda(x) for x in feature]
    return feature.cuda() if hasattr(feature, "cuda") and hasattr(feature, "is_cuda") else feature


# --------------------------------------------------------------------------- checking


def error_type(value: Mapping[str, Any]) -> str:
    """The exception type name of an ``{"error": "Type: msg"}`` value."""
    return value["error"].split(":", 1)[0].strip()


def matches(expected: Mapping[str, Any], observed: Observed) -> bool:
    """Whether ``observed`` reproduces the recorded ``expected`` value."""
    if "error" in expected:
        return observed.is_error and (
            observed.any_error or error_type(observed.value) == error_type(expected)
        )
    if observed.is_error or observed.value["hash"] != expected["hash"]:
        return False
    return "pad_values" not in observed.value or list(observed.value["pad_values"]) == list(
        expected["pad_values"]
    )


def observe(
    manifest: Manifest, entry: Entry, release: str, device: str, impl: Impl, gpu: bool = False
) -> Observed:
    """Load the entry's feature and run ``impl`` on it (tensors on the real GPU when ``gpu``)."""
    __tracebackhide__ = True
    feature = manifest.load(entry.id)
    if gpu and device == "cuda":
        feature = on_cuda(feature)
    return impl(feature, release, device)


@dataclass(frozen=True)
class Check:
    """The result of checking one entry on one path against one release's recorded value."""

    manifest: Manifest
    entry: Entry
    release: str
    device: str
    impl_name: str
    expected: Mapping[str, Any] | None
    observed: Observed | None
    diagnosis: Diagnosis
    problem: str | None  # why it failed; None when it passed


def check_entry(
    manifest: Manifest, entry: Entry, release: str, device: str, impl: Impl, gpu: bool = False
) -> Check:
    """Check one entry on one path: the file's sha256, then the implementation's value."""
    __tracebackhide__ = True
    expected = entry.value(release, device)
    diag = diagnose(manifest, entry)
    observed, failure = None, None
    if (manifest.root / entry.file).is_file():
        try:
            observed = observe(manifest, entry, release, device, impl, gpu)
        except MmhashError as e:
            failure = f"{type(e).__name__}: {e}"
    if diag.bytes_changed:
        problem: str | None = diag.summary
    elif failure:
        problem = failure
        diag = Diagnosis(
            False,
            "the implementation gave no value",
            f"the implementation gave no value; {entry.file} still has the recorded sha256 "
            f"{entry.sha256[:16]}..., so the recorded values are not in question",
        )
    elif expected is None:
        problem = f"no value is recorded yet for sglang {release} on the {device} path"
    elif observed is None:
        problem = "the feature file is missing"
    else:
        problem = None if matches(expected, observed) else "the value differs from the recorded one"
    return Check(manifest, entry, release, device, impl.name, expected, observed, diag, problem)


def record_entry(
    manifest: Manifest, entry: Entry, release: str, device: str, impl: Impl
) -> Recorded:
    """Record real SGLang's value for one entry and path; refuses an entry whose bytes changed."""
    __tracebackhide__ = True
    diag = diagnose(manifest, entry)
    if diag.bytes_changed:
        raise GoldenError(
            f"not recording {entry.id!r}: {diag.detail}; the values of other releases would be stale, "
            f"so refresh the entry first: mmhash golden refresh {shlex.quote(os.path.relpath(manifest.root))} {entry.id}"
        )
    return Recorded(
        entry.id, release, device, observe(manifest, entry, release, device, impl).value
    )


# --------------------------------------------------------------------------- messages


def describe(value: Mapping[str, Any] | None) -> str:
    """One line for a value: hash, hex and pad values, or the error."""
    if value is None:
        return "(nothing recorded)"
    if "error" in value:
        return f"error {value['error']}"
    pads = (
        f"pad_values {list(value['pad_values'])}"
        if "pad_values" in value
        else "pad_values (not returned)"
    )
    return f"hash {value['hash']} (hex {value['hex']}), {pads}"


def _differences(expected: Mapping[str, Any] | None, observed: Observed | None) -> list[str]:
    """Which parts of two values differ, e.g. ``["hash", "pad_values at index 0, 2"]``."""
    if not expected or not observed or "error" in expected or observed.is_error:
        return []
    out = ["hash"] if expected["hash"] != observed.value["hash"] else []
    want, got = list(expected["pad_values"]), observed.value.get("pad_values")
    if got is not None and list(got) != want:
        if len(got) != len(want):
            out.append(f"pad_values length {len(want)} vs {len(got)}")
        else:
            out.append(
                "pad_values at index "
                + ", ".join(
                    str(i) for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b
                )
            )
    return out


def format_check(c: Check, update_command: str, refresh_command: str = "") -> str:
    """The readable failure report of a failed :class:`Check`."""
    key = f" (key {c.entry.key!r})" if c.entry.key else ""
    lines = [
        f"golden entry {c.entry.id!r} [{c.device} path] vs sglang {c.release}: {c.problem}",
        f"  file:      {c.manifest.root / c.entry.file}{key}",
        f"  impl:      {c.impl_name}",
        f"  expected:  {describe(c.expected)}",
        f"  actual:    {describe(c.observed.value) if c.observed else '(not computed)'}",
    ]
    diffs = _differences(c.expected, c.observed)
    if diffs:
        lines.append(f"  differs:   {'; '.join(diffs)}")
    lines.append(f"  schemes:   {schemes_line(c.observed.schemes if c.observed else None)}")
    if c.expected is not None or c.diagnosis.bytes_changed:
        lines.append(f"  diagnosis: {c.diagnosis.detail}")
    if c.diagnosis.summary == "the feature file is missing":
        lines.append(
            "  to fix:    restore the file (or remove the entry: mmhash golden remove), then record "
            "from real SGLang:"
        )
    elif c.diagnosis.bytes_changed:
        lines.append(
            "  to update: if the new bytes are intended, refresh the entry (new sha256; its values, "
            "which belong to the old bytes, are dropped):"
        )
        lines.append(f"    {refresh_command}")
        lines.append("  then record from real SGLang:")
    elif c.observed is None:
        lines.append(
            f"  to fix:    make {c.impl_name} answer (its error is the problem above), then rerun; "
            "re-recording would not help"
        )
        return "\n".join(lines)
    elif c.expected is None:
        lines.append("  to record: run real SGLang on it:")
    else:
        lines.append("  to update: if the change is intended, record from real SGLang:")
    lines.append(f"    {update_command}")
    return "\n".join(lines)
