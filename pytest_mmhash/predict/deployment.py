"""What a deployment's settings mean for one SGLang release: defaults, hash path, exactness.

Facts read from the SGLang wheels (0.5.9-0.5.23); the release boundaries below are the releases
read, not guesses: a setting is treated as present from the first release read that has it.
Pure functions over :class:`Deployment`, the release and the model directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .. import versions as V
from ..errors import UnreproducibleHashError
from .errors import BadDeploymentError
from .model import ModelDir
from .types import Deployment, Media

#: SGLang environment variables that change an item's hash or where it is computed.
KNOWN_ENV = (
    "SGLANG_ENABLE_MM_SPLITTING",  # 0.5.9: 1 splits a multi-image request into per-image items
    "SGLANG_MM_BUFFER_SIZE_MB",  # >0: features copied to a float32 GPU buffer, hashed on the GPU
    "SGLANG_MM_PRECOMPUTE_HASH",  # 1: hashed in the tokenizer process (same value)
    "SGLANG_MM_SKIP_COMPUTE_HASH",  # 1: a random uuid4 instead of a hash
    "SGLANG_USE_CPU_ENGINE",  # 1: the server (and its processors) run on CPU
    "SGLANG_USE_CUDA_IPC_TRANSPORT",  # legacy spelling of --mm-feature-transport cuda_ipc
    "SGLANG_FORCE_CPU_IMAGE_PREPROCESSING",  # Kimi K2.5: preprocess on CPU
    "SGLANG_ENCODER_IMAGE_PROCESSOR_USE_GPU",  # encoder-disaggregated image processor device
)
#: First release read with nvJPEG decoding of JPEG bytes on a CUDA server (absent in 0.5.9).
GPU_JPEG_DECODE_FROM = "0.5.10"
#: First release read with ``--image-processor-backend`` (older: ``--disable-fast-image-processor``).
BACKEND_OPTION_FROM = "0.5.19"
#: Architectures whose SGLang processor decodes with Pillow and preprocesses on CPU on any server
#: (by reading 0.5.23: ``gpu_image_decode = False`` and no fast image processor on a device).
CPU_PREPROCESSING = (
    "LlavaLlamaForCausalLM",
    "LlavaQwenForCausalLM",
    "LlavaMistralForCausalLM",
    "LlavaVidForCausalLM",
    "KimiVLForConditionalGeneration",
    "MiniCPMV",
    "MiniCPMO",
    "WhisperForConditionalGeneration",
)
#: What SGLang 0.5.2x's ``load_audio`` does with a WAV/FLAC/Ogg/MP3 file (``utils/common.py``),
#: by the server's ``audio_decoder``; the feature extractor then runs on CPU on any server.
AUDIO_DECODING = {
    "torchcodec": "torchcodec's AudioDecoder (FFmpeg) at 16 kHz mono",
    "soundfile": "soundfile (libsndfile), averaging channels to mono and resampling to 16 kHz "
    "with torchaudio.functional.resample when the file's rate differs",
}
WHAT_TO_DO = (
    "to get an exact value run mmhash predict on a machine with the server's GPU and the same "
    "torch/torchvision/transformers/Pillow, or deploy with CPU preprocessing "
    "(SGLANG_USE_CPU_ENGINE=1, predicted with --preprocess-device cpu)"
)


def _at_least(release: V.Release, first: str) -> bool:
    return V.RELEASES.index(release.version) >= V.RELEASES.index(first)


def _env_on(dep: Deployment, name: str) -> bool:
    """An SGLang boolean variable, parsed as its ``EnvBool`` does."""
    text = str(dep.env.get(name, "false")).strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n", ""):
        return False
    raise BadDeploymentError(
        f"--env {name}={text!r}: not a boolean (sglang accepts 1/0/true/false)"
    )


def _env_int(dep: Deployment, name: str) -> int:
    text = str(dep.env.get(name, "0")).strip() or "0"
    try:
        return int(text)
    except ValueError:
        raise BadDeploymentError(f"--env {name}={text!r}: expected an integer") from None


def check_deployment(dep: Deployment) -> None:
    """Reject settings SGLang does not know, naming the setting."""
    unknown = sorted(set(dep.env) - set(KNOWN_ENV))
    if unknown:
        raise BadDeploymentError(
            f"--env {unknown[0]}: not an SGLang variable that changes item hashes "
            f"(known: {', '.join(KNOWN_ENV)})"
        )
    if dep.audio_decoder not in AUDIO_DECODING:
        raise BadDeploymentError(
            f"audio decoder {dep.audio_decoder!r}: sglang decodes audio with "
            f"{' or '.join(AUDIO_DECODING)}"
        )
    _env_int(dep, "SGLANG_MM_BUFFER_SIZE_MB")
    for name in KNOWN_ENV:
        if name != "SGLANG_MM_BUFFER_SIZE_MB":
            _env_on(dep, name)


def default_preprocess_device(release: V.Release, model: ModelDir, dep: Deployment) -> str:
    """Where the server preprocesses: ``cpu`` for CPU engines and CPU-only processors, else ``cuda``."""
    if _env_on(dep, "SGLANG_USE_CPU_ENGINE") or model.architecture in CPU_PREPROCESSING:
        return "cpu"
    return "cuda"


def resolve(dep: Deployment | None, release: V.Release, model: ModelDir) -> Deployment:
    """The deployment with the release's defaults filled in (``preprocess_device`` never ``None``).

    ``disable_fast_image_processor`` implies ``image_processor_backend="pil"`` (SGLang maps the
    deprecated flag onto the backend from 0.5.19) and stays as given: SGLang's Qwen3-VL identity
    records the flag itself.
    """
    dep = dep or Deployment()
    check_deployment(dep)
    if dep.disable_fast_image_processor:
        if dep.image_processor_backend not in ("auto", "pil"):
            raise BadDeploymentError(
                "--disable-fast-image-processor conflicts with --image-processor-backend "
                f"{dep.image_processor_backend} (sglang raises ValueError)"
            )
        dep = replace(dep, image_processor_backend="pil")
    if _env_on(dep, "SGLANG_USE_CUDA_IPC_TRANSPORT") and dep.mm_feature_transport == "cpu":
        dep = replace(dep, mm_feature_transport="cuda_ipc")
    if dep.preprocess_device is None:
        dep = replace(dep, preprocess_device=default_preprocess_device(release, model, dep))  # type: ignore[arg-type]
    return dep


def check_hashable(dep: Deployment, release: V.Release) -> None:
    """SGLANG_MM_SKIP_COMPUTE_HASH gives random hashes: no value can be predicted."""
    if _env_on(dep, "SGLANG_MM_SKIP_COMPUTE_HASH"):
        raise UnreproducibleHashError(
            f"sglang {release.version} with SGLANG_MM_SKIP_COMPUTE_HASH=1 gives every item a "
            f"random uuid4 hash: no value can be predicted"
        )


def hash_devices(dep: Deployment, numels: Sequence[int]) -> list[str]:
    """The path (``cpu``/``cuda``) that hashes each item of one request.

    GPU when features stay on the GPU (``--mm-feature-transport cuda_ipc|cuda_vmm``); with
    ``SGLANG_MM_BUFFER_SIZE_MB > 0``, the items that still fit in that float32 buffer, in order.
    """
    if dep.mm_feature_transport != "cpu":
        return ["cuda"] * len(numels)
    room = _env_int(dep, "SGLANG_MM_BUFFER_SIZE_MB") * 1024 * 1024 // 4
    out = []
    for n in numels:
        fits = 0 < n <= room
        room -= n if fits else 0
        out.append("cuda" if fits else "cpu")
    return out


def uses_buffer(dep: Deployment) -> bool:
    """Whether features are copied into SGLang's float32 GPU hashing buffer first."""
    return dep.mm_feature_transport == "cpu" and _env_int(dep, "SGLANG_MM_BUFFER_SIZE_MB") > 0


def processor_exactness(
    release: V.Release,
    model: ModelDir,
    dep: Deployment,
    media: Sequence[Media],
    ran_on: str,
    audio_decoded_with: str | None = None,
) -> tuple[bool, tuple[str, ...]]:
    """Whether running SGLang's processor on this machine (``ran_on``) gives the server's bytes;
    ``audio_decoded_with`` is what SGLang decoded the request's audio with here."""
    exact: bool = True
    reasons: tuple[str, ...] = ()
    if not media or any(m.modality != "audio" for m in media):
        exact, reasons = _image_exactness(release, model, dep, media, ran_on)
    if any(m.modality == "audio" for m in media):
        ok, why = audio_exactness(release, dep, audio_decoded_with)
        exact, reasons = exact and ok, (*reasons, *why)
    return exact, reasons


def audio_exactness(
    release: V.Release, dep: Deployment, decoded_with: str | None
) -> tuple[bool, tuple[str, ...]]:
    """Whether this machine decoded a request's audio as the server does (``dep.audio_decoder``)."""
    versions = (
        "equal to the server's only with the same soundfile (libsndfile), torchaudio, "
        "transformers and torch versions (listed under stack)"
    )
    if decoded_with is None:
        return False, (
            f"this project has not read how sglang {release.version} loads audio: not checked",
        )
    server = dep.audio_decoder
    if decoded_with == server:
        return True, (
            f"the server's sglang decodes audio with {AUDIO_DECODING[server]} and runs the feature "
            f"extractor on CPU, and this machine ran the same steps; {versions}",
        )
    todo = (
        "to get an exact value run mmhash predict where sglang's torchcodec loads with the "
        "server's FFmpeg, or, if the server's sglang has no torchcodec (aarch64 installs, no "
        "FFmpeg), give --audio-decoder soundfile"
        if server == "torchcodec"
        else "to get an exact value run mmhash predict in a venv without torchcodec, as the server"
    )
    return False, (
        f"the server's sglang decodes audio with {AUDIO_DECODING[server]}, but sglang here "
        f"decoded it with {AUDIO_DECODING[decoded_with]}; the samples can differ (resampling, "
        f"channel mixing, codecs)",
        todo,
    )


def _image_exactness(
    release: V.Release, model: ModelDir, dep: Deployment, media: Sequence[Media], ran_on: str
) -> tuple[bool, tuple[str, ...]]:
    """:func:`processor_exactness` for a request's images."""
    versions = (
        "equal to the server's only with the same transformers, torchvision, Pillow and torch "
        "versions (listed under stack)"
    )
    if dep.preprocess_device == "cpu":
        why = (
            "the server preprocesses on CPU"
            if model.architecture not in CPU_PREPROCESSING
            else f"sglang's processor for {model.architecture} decodes with Pillow and "
            "preprocesses on CPU on any server"
        )
        reasons = [f"{why}, and this machine ran the same processor on CPU; {versions}"]
    elif ran_on == "cuda":
        reasons = [
            f"ran sglang's processor on this machine's GPU as the server does; {versions} and "
            "the same GPU model, driver and CUDA"
        ]
    else:
        gpu_steps = _gpu_steps(release, dep, media)
        if gpu_steps:
            return False, (*gpu_steps, WHAT_TO_DO)
        reasons = [
            "the server's GPU takes no part before hashing here (pil backend, no JPEG decoded "
            f"with nvJPEG); {versions}"
        ]
    return True, tuple(reasons)


def _gpu_steps(release: V.Release, dep: Deployment, media: Sequence[Media]) -> list[str]:
    """The steps a CUDA server runs on its GPU for these media, which a CPU cannot reproduce."""
    steps = []
    if dep.image_processor_backend != "pil":
        steps.append(
            "the server runs the fast (torchvision) image processor on its GPU (resize in "
            "float on CUDA); this machine has no CUDA device, and on CPU torchvision resizes "
            "differently"
        )
    jpegs = [m.source for m in media if m.modality == "image" and _is_jpeg(m.data)]
    if jpegs and _at_least(release, GPU_JPEG_DECODE_FROM):
        steps.append(
            f"sglang {release.version} decodes JPEG bytes with nvJPEG on the server's GPU "
            f"({len(jpegs)} JPEG(s) here); this machine decoded them with Pillow"
        )
    return steps


def _is_jpeg(data: bytes) -> bool:
    """SGLang's test for nvJPEG decoding (``is_jpeg_with_cuda``): SOI at the start, EOI at the end."""
    return data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
