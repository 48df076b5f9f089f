"""From requests' media, a model directory and a deployment to every item's hash and pad values.

Chooses the method per request as SGLang does (client ``mm_hashes``, Qwen3-VL artifact identity,
otherwise the real processor), hashes processor features with this project's engine, and says
for each item whether this machine reproduces the server's value exactly, and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, Literal

from .. import api
from .. import engines as E
from .. import versions as V
from ..errors import BadArgumentError, MmhashError, first_line
from . import deployment as D
from . import identity as I
from . import support
from .errors import ProcessorFailedError, RefusedHashesError, UnsupportedModelError
from .media import read_media
from .model import ModelDir, read_model_dir
from .types import Deployment, ItemPrediction, Media, Modality, ProcessedItem

#: ``runner(requests, *, model, deployment)``: each request's items, in order (a list or lazily).
Runner = Callable[..., Iterable[list[ProcessedItem]]]
#: How many processed requests may wait for hashing while SGLang processes the next one.
HASH_QUEUE = 2
MediaLike = Media | str | os.PathLike[str]
STACK = ("sglang", "sglang-kt", "transformers", "torch", "torchvision", "Pillow")
#: What else made an audio item's feature: SGLang's decoders (``load_audio``).
AUDIO_STACK = ("soundfile", "torchaudio", "torchcodec")


@dataclass(frozen=True)
class Request:
    """One request: its media in order, and the client's ``mm_hashes`` if it sends them."""

    media: tuple[Media, ...]
    mm_hashes: tuple[str, ...] | None = None


def predict(
    media: Sequence[MediaLike],
    *,
    model: str | os.PathLike[str],
    sglang_version: str | None = None,
    deployment: Deployment | None = None,
    mm_hashes: Sequence[str] | None = None,
    transformers_version: str | None = None,
    revision: str | None = None,
    runner: Runner | None = None,
    engine: str | None = None,
    shims: bool = False,
) -> list[ItemPrediction]:
    """The hash and pad values SGLang assigns to every item of one request with ``media``.

    ``model`` is a local model directory (``config.json``, processor configs, tokenizer; no
    weights). ``mm_hashes`` are the request's client-supplied hex hashes. ``transformers_version``
    and ``revision`` are the server's (default: the installed transformers, no revision); they
    enter Qwen3-VL identities. ``runner`` replaces the real SGLang processor runner. ``engine``
    is ``sglang`` or ``sglang-kt`` (default: the installed one); ``sglang_version`` is its release.
    ``shims`` applies, before SGLang's processor is imported, the shims for what this machine
    lacks (``sgl_kernel`` or ``decord`` not installed, torchvision's C ops not loading on this
    torch; spec §10); ``mmhash predict`` does, and each prediction's ``stack`` names them.
    """
    request = Request(tuple(_as_media(m) for m in media), _hashes(mm_hashes))
    return predict_requests(
        [request],
        model=model,
        sglang_version=sglang_version,
        engine=engine,
        deployment=deployment,
        transformers_version=transformers_version,
        revision=revision,
        runner=runner,
        shims=shims,
    )[0]


def predict_requests(
    requests: Sequence[Request],
    *,
    model: str | os.PathLike[str],
    sglang_version: str | None = None,
    deployment: Deployment | None = None,
    transformers_version: str | None = None,
    revision: str | None = None,
    runner: Runner | None = None,
    engine: str | None = None,
    shims: bool = False,
) -> list[list[ItemPrediction]]:
    """:func:`predict` for many requests; SGLang's processor is built once for all of them."""
    er = _engine_release(engine, sglang_version)
    try:
        predicted = _predict_upstream(
            requests, model, er, deployment, transformers_version, revision, runner, shims
        )
    except RefusedHashesError as e:
        if er.engine == E.SGLANG:
            raise
        raise RefusedHashesError(
            f"{er.engine} {er.version} handles requests as sglang {er.upstream.version}: {e}"
        ) from None
    if er.engine == E.SGLANG:
        return predicted
    return [[_as_fork(p, er) for p in items] for items in predicted]


def _engine_release(engine: str | None, sglang_version: str | None) -> E.EngineRelease:
    """The engine release to predict for; sglang-omni is refused (its items are not processor
    features: see the message)."""
    er = E.resolve(engine, sglang_version)
    if er.engine == E.SGLANG_OMNI:
        raise BadArgumentError(
            f"sglang-omni {er.version} builds its items itself, not with sglang's multimodal "
            f"processors (ASR: a hash of its decoded waveform; Qwen3-Omni, Ming-Omni, MiniCPM-o: "
            f"a cache-key pad from its own decoded media), so predict does not apply: use mmhash "
            f"--engine sglang-omni WAVEFORM.npy or mmhash omni-key-pad KEY"
        )
    return er


def _as_fork(p: ItemPrediction, er: E.EngineRelease) -> ItemPrediction:
    """A prediction made with the upstream release a fork runs, labelled with the fork's."""
    why = (
        f"{er.engine} {er.version} runs upstream sglang {er.upstream.version}'s multimodal "
        f"processors, processor setup and item hashing (its processor files are "
        f"{er.upstream.version}'s): predicted with sglang {er.upstream.version}'s processor layout "
        f"and defaults"
    )
    return replace(p, engine=er.engine, sglang_version=er.version, reasons=(why, *p.reasons))


def _predict_upstream(
    requests: Sequence[Request],
    model: str | os.PathLike[str],
    er: E.EngineRelease,
    deployment: Deployment | None,
    transformers_version: str | None,
    revision: str | None,
    runner: Runner | None,
    shims: bool,
) -> list[list[ItemPrediction]]:
    """:func:`predict_requests` at the upstream release ``er`` runs."""
    model_dir = read_model_dir(model)
    release = er.upstream
    dep = D.resolve(deployment, release, model_dir)
    D.check_hashable(dep, release)
    out: list[list[ItemPrediction] | None] = []
    pending: list[tuple[int, Request, tuple[str, ...]]] = []
    for index, request in enumerate(requests):
        given, notes = _from_mm_hashes(request, release, model_dir)
        if given is not None:
            out.append(given)
        elif I.applies(release, model_dir, request.media):
            out.append(
                _by_identity(
                    request, release, model_dir, dep, transformers_version, revision, notes
                )
            )
        else:
            _refuse_unpredictable(request)
            out.append(None)
            pending.append((index, request, notes))
    if pending:
        applied = _apply_shims() if shims and runner is None else {}
        processed = _run_processor([r.media for _, r, _ in pending], model_dir, er, dep, runner)
        # read once: metadata lookups cost more than hashing a small image
        stack = {**_stack(), **applied}
        has_audio = any(m.modality == "audio" for _, r, _ in pending for m in r.media)
        audio_stack = {**stack, **_audio_stack()} if has_audio else stack
        # Request k is hashed on a worker thread while SGLang processes request k+1 (hashlib and
        # torch release the GIL); at most HASH_QUEUE requests' features wait, so memory stays
        # bounded however many requests there are.
        waiting: deque[tuple[int, Future[list[ItemPrediction]]]] = deque()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmhash-hash")
        with contextlib.closing(processed), pool:
            for (index, request, notes), items in zip(pending, processed, strict=True):
                args = (request, items, release, model_dir, dep, notes, stack, audio_stack)
                waiting.append((index, pool.submit(_by_processor, *args)))
                while len(waiting) > HASH_QUEUE:
                    done, future = waiting.popleft()
                    out[done] = future.result()
            for done, future in waiting:
                out[done] = future.result()
    return [items for items in out if items is not None]


#: Why the sglang-processor method cannot give a medium's value on this machine.
UNPREDICTABLE = {
    "video": "sglang decodes video with torchcodec on the server's GPU and resizes the frames "
    "there (bilinear on CUDA), which a CPU does not reproduce",
}


def _refuse_unpredictable(request: Request) -> None:
    """A one-line refusal for media the processor method cannot predict, naming what to do."""
    for m in request.media:
        if m.modality in UNPREDICTABLE:
            raise UnsupportedModelError(
                f"{m.source}: {m.modality} is not predicted: {UNPREDICTABLE[m.modality]}; send "
                f"your own hashes (mm_hashes on /generate) and give them with --mm-hashes HEX,... "
                f"to get the pads"
            )


def _as_media(m: MediaLike) -> Media:
    return m if isinstance(m, Media) else read_media(m)


def _hashes(mm_hashes: Sequence[str] | None) -> tuple[str, ...] | None:
    if mm_hashes is None:
        return None
    if isinstance(mm_hashes, str):
        raise TypeError("mm_hashes is a list of hex strings, not one string")
    return tuple(mm_hashes)


def _from_mm_hashes(
    request: Request, release: V.Release, model: ModelDir
) -> tuple[list[ItemPrediction] | None, tuple[str, ...]]:
    """Items from the client's ``mm_hashes`` (as ``tokenizer_manager`` applies them), or why not.

    Returns ``(items, ())`` when they apply, ``(None, notes)`` when SGLang ignores them (count
    mismatch); a malformed entry is an error (SGLang would silently hash that item itself).
    """
    hashes = request.mm_hashes
    if not hashes:
        return None, ()
    if not release.era.mm_hashes:
        raise RefusedHashesError(
            f"sglang {release.version} does not accept mm_hashes (the /generate field exists "
            f"from 0.5.13)"
        )
    if model.refuses_mm_hashes:
        raise RefusedHashesError(
            f"{model.path}: sglang's Kimi processors reject client mm_hashes ({model.architecture})"
        )
    count = len(request.media)
    if len(hashes) != count:
        return None, (
            f"sglang ignores the request's mm_hashes: {len(hashes)} given for {count} items "
            f"(tokenizer_manager logs a warning and hashes the items itself)",
        )
    for text in hashes:
        if not _is_hex(text):
            raise BadArgumentError(
                f"mm_hashes entry {text!r} is not hex: sglang would ignore it and hash that item "
                f"itself; fix or drop the entry"
            )
    items = []
    for i, (m, text) in enumerate(zip(request.media, hashes, strict=True)):
        value = api.from_mm_hash(text, sglang_version=release.version)
        items.append(
            _prediction(
                i,
                m.modality,
                value,
                "mm_hashes",
                True,
                (
                    "client-supplied mm_hashes entry: sglang sets item.set_hash(int(hex, 16)) "
                    "and the pads follow from that value",
                ),
                source=m.source,
            )
        )
    return items, ()


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except (TypeError, ValueError):
        return False
    return True


def _by_identity(
    request: Request,
    release: V.Release,
    model: ModelDir,
    dep: Deployment,
    transformers_version: str | None,
    revision: str | None,
    notes: tuple[str, ...],
) -> list[ItemPrediction]:
    version = transformers_version or _installed("transformers")
    if version is None:
        raise UnsupportedModelError(
            "the identity method needs the server's transformers version: transformers is not "
            "installed here, so give --transformers-version (transformers_version=)"
        )
    payload = I.fingerprint_payload(model, dep, transformers_version=version, revision=revision)
    fingerprint = I.processor_fingerprint(payload)
    why = (
        f"sglang {release.version} hashes Qwen3-VL image-only requests by artifact identity "
        f"(ns-mix-v1 of the media bytes, processor fingerprint and request options), computed "
        f"here exactly; assumes the server runs transformers {version} and "
        f"revision {revision!r}",
    )
    items = []
    for i, m in enumerate(request.media):
        value = api.from_hash(
            I.item_hash(I.content_digest(m.data), fingerprint, m.options),
            sglang_version=release.version,
        )
        items.append(
            _prediction(
                i,
                m.modality,
                value,
                "identity",
                True,
                (*notes, *why),
                source=m.source,
                stack={"transformers (assumed server)": version},
            )
        )
    return items


def _run_processor(
    requests: list[tuple[Media, ...]],
    model: ModelDir,
    er: E.EngineRelease,
    dep: Deployment,
    runner: Runner | None,
) -> Generator[list[ProcessedItem], None, None]:
    """Each request's items as the runner gives them, one request at a time."""
    if runner is None:
        runner = _real_runner(er)
    # the runner runs on the server's device when this machine has it, else on CPU
    here = replace(dep, preprocess_device=_ran_on(dep))
    try:
        yield from runner(requests, model=model.path, deployment=here)
    except MmhashError:
        raise
    except Exception as e:  # anything from deep inside SGLang/torch becomes one line
        raise ProcessorFailedError(
            f"{model.path}: sglang's processor failed ({type(e).__name__}: {first_line(e)})"
        ) from e


def _ran_on(dep: Deployment) -> Literal["cpu", "cuda"]:
    """Where this machine runs SGLang's processor: the server's device when it has it, else CPU."""
    return "cuda" if dep.preprocess_device == "cuda" and _cuda_here() else "cpu"


def _real_runner(er: E.EngineRelease) -> Runner:
    """The installed SGLang's processor runner, checked to be the engine release asked for
    (sglang-kt's version comes from its distribution metadata: its ``sglang`` says 0.0.0.dev0)."""
    from ..oracle.shims import importable_sglang_version

    kt = er.engine == E.SGLANG_KT
    installed = E.installed_version(E.SGLANG_KT) if kt else importable_sglang_version()
    if installed is None:
        raise UnsupportedModelError(
            f"the sglang-processor method runs the installed {er.engine}'s own processor, and "
            f"{er.engine} is not installed (see requirements/README.md); Qwen3-VL image requests "
            f"(identity) and --mm-hashes need no sglang"
        )
    if E.resolve(er.engine, installed, allow_newer=True).version != er.version:
        raise UnsupportedModelError(
            f"--sglang-version {er.version} differs from the installed {er.engine} {installed}: "
            f"the sglang-processor method runs the installed release's processor"
        )
    try:
        from .sglang_processor import run_processor  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:  # pragma: no cover - the runner ships with the package
        raise UnsupportedModelError(f"sglang processor runner unavailable ({e})") from None
    return run_processor


def _by_processor(
    request: Request,
    items: list[ProcessedItem],
    release: V.Release,
    model: ModelDir,
    dep: Deployment,
    notes: tuple[str, ...],
    stack: Mapping[str, str],
    audio_stack: Mapping[str, str],
) -> list[ItemPrediction]:
    decoded = next((it.audio_decoder for it in items if it.modality == "audio"), None)
    exact, reasons = D.processor_exactness(
        release, model, dep, request.media, _ran_on(dep), decoded
    )
    coverage = _coverage(model)
    if coverage is not None:
        exact, reasons = False, (*reasons, coverage)
    numels = [_numel(it.feature) for it in items]
    paths = D.hash_devices(dep, numels)
    sources = _sources(request.media, [it.modality for it in items])
    out = []
    for i, (item, path, source) in enumerate(zip(items, paths, sources, strict=True)):
        feature = (
            _buffer_copy(item.feature) if path == "cuda" and D.uses_buffer(dep) else item.feature
        )
        value = api.hash_feature(feature, sglang_version=release.version, device=path)
        checked = _check_against_sglang(value, item, path, release)
        path_note = (
            f"hashed on sglang's GPU path ({value.hash_scheme}, emulated bit for bit) because "
            f"features reach the scheduler on the GPU"
            if path == "cuda"
            else f"hashed on sglang's CPU path ({value.hash_scheme})"
        )
        out.append(
            _prediction(
                i,
                item.modality,
                value,
                "sglang-processor",
                exact and checked is None,
                (*notes, *reasons, path_note, *(() if checked is None else (checked,))),
                source=source,
                feature=item.feature,
                stack=audio_stack if item.modality == "audio" else stack,
            )
        )
    return out


def _coverage(model: ModelDir) -> str | None:
    """Why the processor class serving this model keeps the prediction from being exact, if so."""
    cls = support.processor_of(model.architecture)
    if cls is None:
        return (
            f"{model.architecture} is not in the processor registry of sglang "
            f"{support.registry()['sglang_version']} as recorded here; not checked by this project"
        )
    state, _ = support.status(cls)
    if state == support.NOT_YET:
        return (
            f"sglang's processor class {cls} is not yet checked by this project (whether its "
            f"item.feature is what the scheduler hashes is unverified)"
        )
    return None


def _check_against_sglang(
    value: api.MMHash, item: ProcessedItem, path: str, release: V.Release
) -> str | None:
    """Why our CPU-path hash of ``item.feature`` is not the hash SGLang set on it here, if not.

    SGLang's own hash is taken on this machine's CPU path, so the two must agree unless the
    processor sets the hash itself (an identity, a GPU hash before the CPU copy).
    """
    if path != "cpu" or item.sglang_hash is None:
        return None
    stored = api.from_hash(item.sglang_hash, sglang_version=release.version).hash
    if stored == value.hash:
        return None
    return (
        f"sglang set this item's hash to {stored} itself, not the hash of item.feature "
        f"({value.hash}): the processor hashes something else; not checked by this project"
    )


def _sources(media: Sequence[Media], modalities: Sequence[Modality]) -> list[str | None]:
    """Which medium each item came from: the n-th item of a modality is its n-th medium, when the
    counts match (one item per medium); otherwise ``None`` (a joint item of several media)."""
    by_modality: dict[str, list[str]] = {}
    for m in media:
        by_modality.setdefault(m.modality, []).append(m.source)
    counts: dict[str, int] = {}
    for mod in modalities:
        counts[mod] = counts.get(mod, 0) + 1
    seen: dict[str, int] = {}
    out: list[str | None] = []
    for mod in modalities:
        k = seen.get(mod, 0)
        seen[mod] = k + 1
        same = counts[mod] == len(by_modality.get(mod, []))
        out.append(by_modality[mod][k] if same else None)
    return out


def _prediction(
    index: int,
    modality: Modality,
    value: api.MMHash,
    method: Any,
    exact: bool,
    reasons: tuple[str, ...],
    *,
    source: str | None,
    feature: Any = None,
    stack: Mapping[str, str] | None = None,
) -> ItemPrediction:
    # sha256-raw hashed exactly the feature's raw bytes: reuse that digest instead of a 2nd pass
    raw = value.content_sha256 if value.hash_scheme == V.SHA256_RAW else None
    shape, dtype, sha = feature_facts(feature, raw)
    return ItemPrediction(
        item=index,
        modality=modality,
        hash=value.hash,
        hex=value.hex,
        pad_values=value.pad_values,
        sglang_version=value.sglang_version,
        method=method,
        exact=exact,
        reasons=reasons,
        feature_shape=shape,
        feature_dtype=dtype,
        feature_sha256=sha,
        source=source,
        hash_path=value.device,
        stack=dict(stack or {}),
    )


def feature_facts(
    feature: Any, raw_sha256: str | None = None
) -> tuple[tuple[int, ...] | None, str | None, str | None]:
    """Shape, dtype and SHA-256 of a tensor/array feature's raw bytes (``None`` for others).

    ``raw_sha256`` is that digest when the caller already has it (not computed again).
    """
    if feature is None:
        return None, None, None
    module = type(feature).__module__.split(".")[0]
    if module == "torch":
        dtype = str(feature.dtype).removeprefix("torch.")
        if raw_sha256 is None:
            t = feature.detach().cpu().contiguous()
            data = t.reshape(-1).view(_torch().uint8).numpy()  # hashed in place, not copied
            raw_sha256 = hashlib.sha256(data).hexdigest()
        return tuple(feature.shape), dtype, raw_sha256
    if module == "numpy":
        import numpy as np

        a = np.ascontiguousarray(feature)
        sha = raw_sha256 or hashlib.sha256(a.tobytes()).hexdigest()
        return tuple(a.shape), str(a.dtype), sha
    return None, None, None


def _numel(feature: Any) -> int:
    if isinstance(feature, list):
        return sum(_numel(f) for f in feature)
    numel = getattr(feature, "numel", None)
    if callable(numel):
        return int(numel())
    size = getattr(feature, "size", None)
    return int(size) if isinstance(size, int) else 0


def _buffer_copy(feature: Any) -> Any:
    """SGLang's GPU hashing buffer holds float32: the feature as that buffer's copy of it."""
    if type(feature).__module__.split(".")[0] == "torch":
        return feature.to(_torch().float32)
    return feature


def _torch() -> Any:
    import torch

    return torch


def _cuda_here() -> bool:
    if _installed("torch") is None:
        return False
    return bool(_torch().cuda.is_available())


def _apply_shims() -> dict[str, str]:
    """Apply the processor shims this machine needs; a ``stack`` entry naming them, if any."""
    from ..oracle.shims import PROCESSOR_SHIMS, apply_missing_processor_shims

    applied = apply_missing_processor_shims()
    return {"shims": "; ".join(PROCESSOR_SHIMS[n] for n in applied)} if applied else {}


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _stack() -> dict[str, str]:
    """The installed versions that made the features (the server must match them)."""
    return {name: v for name in STACK if (v := _installed(name)) is not None}


def _audio_stack() -> dict[str, str]:
    """The installed audio decoders' versions, with the libsndfile that soundfile bundles."""
    stack = {name: v for name in AUDIO_STACK if (v := _installed(name)) is not None}
    if "soundfile" in stack:
        try:
            import soundfile  # type: ignore[import-not-found, unused-ignore]
        except (ImportError, OSError):  # installed without a loadable libsndfile
            return stack
        stack["libsndfile"] = str(soundfile.__libsndfile_version__)
    return stack
