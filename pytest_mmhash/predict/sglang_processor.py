"""Run the installed real SGLang's own multimodal processor in this process (``sglang-processor``).

SGLang's tokenizer process builds one multimodal processor per server from the model directory and
the server arguments, runs ``process_mm_data_async`` on every request's media, and the scheduler
turns its output into items (``MultimodalInputs.from_processor_output``, 0.5.23; ``from_dict``,
0.5.9) whose ``hash`` and ``pad_values`` it then uses. :class:`SGLangProcessor` makes the same
calls offline on CPU from a local model directory (no weights), building the processor once for
many requests. It patches nothing: on a CPU-only torch with PyPI's CUDA torchvision and no
``sgl_kernel`` (this project's test venvs), call
:func:`pytest_mmhash.oracle.shims.apply_processor_shims` first. The deployment's processor
variables are set in ``os.environ`` only while SGLang is built and run, then restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import first_line
from .errors import BadDeploymentError, MediaError, ModelDirError, UnsupportedModelError
from .model import ModelDir, read_model_dir
from .types import Deployment, Media, ProcessedItem

#: How SGLang's ``load_audio`` (0.5.2x) starts the message of a file it cannot decode.
AUDIO_DECODE_FAILED = "Could not decode audio"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
#: Deployment variables that act inside the processor or the scheduler's item building. The hash
#: path ones (SGLANG_MM_BUFFER_SIZE_MB, SGLANG_USE_CUDA_IPC_TRANSPORT) are the predictor's: the
#: runner always lets SGLang hash on its CPU path.
PROCESSOR_ENV = (
    "SGLANG_ENABLE_MM_SPLITTING",
    "SGLANG_FORCE_CPU_IMAGE_PREPROCESSING",
    "SGLANG_ENCODER_IMAGE_PROCESSOR_USE_GPU",
)


def check_model_dir(path: Path) -> ModelDir:
    """The model directory, after checking it has what SGLang's processor loads (a tokenizer too)."""
    model = read_model_dir(path)
    # transformers 5 writes the image processor's settings inside processor_config.json instead.
    if model.preprocessor_config is None and "image_processor" not in (
        model.processor_config or {}
    ):
        raise ModelDirError(
            f"{model.path / 'preprocessor_config.json'}: missing, and no processor_config.json "
            "with an 'image_processor' (sglang's processor loads one of them)"
        )
    if not (model.path / "tokenizer_config.json").is_file():
        raise ModelDirError(
            f"{model.path / 'tokenizer_config.json'}: missing (sglang's processor loads it)"
        )
    if not any((model.path / n).is_file() for n in _TOKENIZER_FILES):
        raise ModelDirError(f"{model.path}: no tokenizer file ({', '.join(_TOKENIZER_FILES)})")
    return model


@contextlib.contextmanager
def scoped_env(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for the duration of the block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_image(media: Media) -> None:
    """Refuse media Pillow cannot identify (header only), before SGLang fails deep inside."""
    from PIL import Image, UnidentifiedImageError

    try:
        Image.open(io.BytesIO(media.data)).close()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise MediaError(f"{media.source}: not a readable image ({first_line(e)})") from e


def _failure(e: BaseException) -> str:
    """SGLang's processor error as one line; an audio decoding failure without the raw bytes
    that SGLang's loader puts in its message."""
    text = first_line(e)
    cut = text.find(AUDIO_DECODE_FAILED)
    if cut >= 0:
        return f"not readable audio (sglang's load_audio: {text[cut:].rstrip(')')})"
    return f"sglang's processor failed ({text})"


def _this_machines_device(asked: str | None) -> str:
    """``cuda`` when asked for and this machine has CUDA, else ``cpu`` (exactness is the
    predictor's to judge: it knows where the server preprocesses)."""
    if asked == "cuda":
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


class SGLangProcessor:
    """SGLang's multimodal processor for one model directory and deployment, built once.

    ``process(request)`` returns one :class:`ProcessedItem` per item the scheduler would hold,
    with the item's feature and SGLang's own ``hash`` and ``pad_values`` (CPU hash path).
    """

    def __init__(self, model: Path, deployment: Deployment, *, sglang_hash: bool = True) -> None:
        self.model = check_model_dir(Path(model))
        self.deployment = deployment
        self.sglang_hash = sglang_hash
        if importlib.util.find_spec("sglang") is None:
            raise UnsupportedModelError(
                "the sglang-processor method runs the installed sglang's own processor, and "
                "sglang is not installed here"
            )
        self.device = _this_machines_device(deployment.preprocess_device)
        # 0.5.9-0.5.1x keep global server args; later releases publish a runtime context.
        self._legacy = importlib.util.find_spec("sglang.srt.runtime_context") is None
        self._loop = asyncio.new_event_loop()
        with scoped_env(self._env()):
            self._build()

    def _env(self) -> dict[str, str]:
        """The deployment's processor variables; releases with global server args also need
        SGLang's CPU engine switch to preprocess on CPU (newer ones use CPU without CUDA)."""
        env = {k: v for k, v in self.deployment.env.items() if k in PROCESSOR_ENV}
        if self.device == "cpu" and self._legacy:
            env["SGLANG_USE_CPU_ENGINE"] = "1"
        return env

    def _run_env(self) -> dict[str, str]:
        """While processing: without ``sglang_hash`` SGLang skips its own hashing (its random
        placeholder hash is dropped), so a caller that hashes the features pays for it once."""
        return {**self._env(), "SGLANG_MM_SKIP_COMPUTE_HASH": "0" if self.sglang_hash else "1"}

    def _server_args(self, server_args_cls: Any) -> Any:
        """``ServerArgs`` as the deployment's command line sets them (only flags the release has)."""
        d = self.deployment
        accepted = inspect.signature(server_args_cls).parameters
        kw: dict[str, Any] = {"model_path": str(self.model.path), "device": self.device}
        kw["disable_fast_image_processor"] = d.disable_fast_image_processor
        if "image_processor_backend" in accepted:
            kw["image_processor_backend"] = d.image_processor_backend
        elif d.image_processor_backend == "pil" and not d.disable_fast_image_processor:
            raise BadDeploymentError(
                "--image-processor-backend pil: this sglang has only --disable-fast-image-processor"
            )
        if d.mm_process_config:
            if "mm_process_config" not in accepted:
                raise BadDeploymentError("--mm-process-config: this sglang has no such option")
            kw["mm_process_config"] = dict(d.mm_process_config)
        return server_args_cls(**kw)

    def _build(self) -> None:
        """Import SGLang and build its processor as the tokenizer manager does."""
        try:
            import sglang  # type: ignore[import-not-found, unused-ignore]
        except Exception as e:
            raise UnsupportedModelError(f"import sglang failed: {first_line(e)}") from e
        self.sglang_version = str(sglang.__version__)
        if self._legacy:
            self._build_global_args()
        else:
            self._build_runtime_context()

    def _build_runtime_context(self) -> None:
        """0.5.2x layout: ``runtime_context.publish`` and ``get_processor_wrapper``."""
        from sglang.srt import runtime_context  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.configs.model_config import ModelConfig  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.managers import tokenizer_manager as tm  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.managers.multimodal_processor import get_mm_processor, import_processors  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.managers.schedule_batch import MultimodalInputs  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.multimodal.transport import determine_tensor_transport_mode  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.server_args import ServerArgs  # type: ignore[import-not-found, unused-ignore]

        sa = self._server_args(ServerArgs)
        runtime_context.publish(sa, role="tokenizer")
        mc = ModelConfig.from_server_args(sa)
        import_processors("sglang.srt.multimodal.processors")
        hf_processor = self._hf_processor = tm.get_processor_wrapper()
        mode = determine_tensor_transport_mode()
        self._mm = self._get_mm_processor(
            lambda: get_mm_processor(mc.hf_config, sa, hf_processor, mode, model_config=mc)
        )
        # 0.5.21+ take the model's modality requirement; 0.5.20 has no such argument.
        kw: dict[str, Any] = {}
        if hasattr(mc, "requires_mm_token_modalities"):
            kw["requires_mm_token_modalities"] = mc.requires_mm_token_modalities
        self._to_items = lambda out: MultimodalInputs.from_processor_output(out, **kw).mm_items

    def _build_global_args(self) -> None:
        """0.5.9 layout: global server args and ``_get_processor_wrapper(server_args)``."""
        from sglang.srt import server_args as sa_mod  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.configs.model_config import ModelConfig  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.managers import tokenizer_manager as tm  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.managers.multimodal_processor import get_mm_processor, import_processors  # type: ignore[import-not-found, unused-ignore]
        from sglang.srt.managers.schedule_batch import MultimodalInputs  # type: ignore[import-not-found, unused-ignore]

        sa = self._server_args(sa_mod.ServerArgs)
        sa_mod.set_global_server_args_for_tokenizer(sa)
        mc = ModelConfig.from_server_args(sa)
        import_processors("sglang.srt.multimodal.processors")
        hf_processor = self._hf_processor = tm._get_processor_wrapper(sa)
        mode = tm._determine_tensor_transport_mode(sa)
        self._mm = self._get_mm_processor(
            lambda: get_mm_processor(mc.hf_config, sa, hf_processor, mode)
        )
        self._to_items = lambda out: MultimodalInputs.from_dict(out).mm_items

    def _get_mm_processor(self, build: Any) -> Any:
        """Build the processor; SGLang's 'no processor registered' becomes a one-line error."""
        try:
            return build()
        except ValueError as e:
            if "No processor registered" not in str(e):
                raise
            raise UnsupportedModelError(
                f"{self.model.path}: sglang {self.sglang_version} has no multimodal processor "
                f"for {self.model.architecture}"
            ) from e

    def _prompt(self, n_images: int, n_audios: int = 0) -> str:
        """A prompt with one placeholder per image, then one per audio, as a chat template writes
        it: the processor's own placeholder, else the HF processor's (LLaVA's processors have
        none)."""
        tokens = getattr(self._mm, "mm_tokens", None)
        image = tokens.image_token if tokens is not None else None
        image = image or getattr(self._hf_processor, "image_token", None) or "<image>"
        audio = tokens.audio_token if tokens is not None else None
        audio = audio or getattr(self._hf_processor, "audio_token", None) or "<audio>"
        placeholders = [image] * n_images + [audio] * n_audios
        return "".join(f"{token}\n" for token in placeholders) + "Describe."

    def audio_decoder(self) -> str | None:
        """What this SGLang decodes audio files with here: ``torchcodec`` when it imported (its
        ``load_audio`` then uses ``AudioDecoder``), else ``soundfile`` (with torchaudio to
        resample); ``None`` for releases whose audio loading this project has not read."""
        try:
            from sglang.srt.utils import video_decoder  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            return None
        return "torchcodec" if video_decoder._BACKEND == "torchcodec" else "soundfile"

    def _check_audio_path(self, source: str) -> None:
        """Refuse audio in one line when SGLang's fallback decoder here lacks its packages."""
        if self.audio_decoder() != "soundfile":
            return
        missing = [n for n in ("soundfile", "torchaudio") if importlib.util.find_spec(n) is None]
        if missing:
            raise UnsupportedModelError(
                f"{source}: sglang decodes audio here with soundfile + torchaudio (torchcodec does not "
                f"import), and {' and '.join(missing)} is not installed: install it into this "
                f"environment (in a checkout, tools/install-sglang-processor.sh 0.5.23 does; "
                f"spec §10.6)"
            )

    def process(self, request: Sequence[Media]) -> list[ProcessedItem]:
        """SGLang's items for one ``/generate`` request with these images and audios, in SGLang's
        order (SGLang's own errors for media it cannot decode become one-line media errors)."""
        for m in request:
            if m.modality not in ("image", "audio"):
                raise UnsupportedModelError(
                    f"{m.source}: the sglang-processor runner takes images and audio, not "
                    f"{m.modality}"
                )
            if m.modality == "image":
                _check_image(m)
        audio = [m.source for m in request if m.modality == "audio"]
        if audio:
            self._check_audio_path(audio[0])
        from sglang.srt.managers.io_struct import GenerateReqInput  # type: ignore[import-not-found, unused-ignore]

        images = [m.data for m in request if m.modality == "image"]
        audios = [m.data for m in request if m.modality == "audio"]
        prompt = self._prompt(len(images), len(audios))
        # as the tokenizer manager passes them; audio_data only when there is audio, so image
        # requests make exactly the call they always made
        data: dict[str, Any] = {"image_data": images or None}
        if audios:
            data["audio_data"] = audios
        req = GenerateReqInput(text=prompt, **data)
        with scoped_env(self._run_env()):
            try:
                out = self._loop.run_until_complete(
                    self._mm.process_mm_data_async(**data, input_text=prompt, request_obj=req)
                )
            except Exception as e:
                names = ", ".join(m.source for m in request)
                if self.device == "cpu" and "compiled without CUDA" in str(e):
                    raise UnsupportedModelError(
                        f"{names}: sglang {self.sglang_version} put its image processor on a CUDA "
                        f"device, and this machine has none (0.5.20 does so even without CUDA; "
                        f"0.5.21+ fall back to CPU): predict this deployment on a CUDA machine, or "
                        f"one with --image-processor-backend pil here"
                    ) from e
                raise MediaError(f"{names}: {_failure(e)}") from e
            items = self._to_items(out)
            for item in items:
                item.set_pad_value()  # the scheduler's step (a no-op where it already ran)
        return [self._item(it) for it in items]

    def _item(self, item: Any) -> ProcessedItem:
        """Our view of one SGLang ``MultimodalDataItem`` after the scheduler set its pads."""
        pads = getattr(item, "pad_values", None) or [item.pad_value]
        feature = item.feature if item.feature is not None else item.precomputed_embeddings
        modality = str(item.modality.name).lower()
        return ProcessedItem(
            modality=modality,  # type: ignore[arg-type]
            feature=feature,
            sglang_hash=int(item.hash) if self.sglang_hash else None,
            sglang_pad_values=tuple(int(p) for p in pads) if self.sglang_hash else None,
            audio_decoder=self.audio_decoder() if modality == "audio" else None,
        )

    def close(self) -> None:
        """Close the event loop the processor ran on."""
        self._loop.close()


def run_processor(
    requests: Sequence[Sequence[Media]],
    *,
    model: Path,
    deployment: Deployment,
    sglang_hash: bool = False,
) -> Iterator[list[ProcessedItem]]:
    """SGLang's items for each request, yielded as each is processed, with one processor built
    (on the first request) for all of them, so a caller that drops each request's items after
    use holds a few requests' features, not all of them.

    By default SGLang does not hash (``sglang_hash``/``sglang_pad_values`` are ``None``): the
    caller hashes the features with this engine, and hashing twice costs throughput.
    """
    proc = SGLangProcessor(model, deployment, sglang_hash=sglang_hash)
    try:
        for r in requests:
            yield proc.process(r)
    finally:
        proc.close()
