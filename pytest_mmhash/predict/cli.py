"""``mmhash predict``: what SGLang assigns to the images and audio of a request, from media and a
model dir.

Every prediction is computed before anything is printed, so an error prints one line and nothing
else. Exit status: 0 ok, 2 bad input, 3 SGLang cannot hash or refuses, 4 ``--strict`` and some
prediction is not exact.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import EXIT_OK, MmhashError, first_line
from . import deployment as D
from .errors import BadDeploymentError, NotExactError
from .types import Deployment, ItemPrediction


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash predict",
        description="The item hash and pad values a given SGLang release assigns to every "
        "multimodal item of a request, from the media and a local model directory (no weights).",
        epilog="Methods: mm_hashes (client hashes), identity (Qwen3-VL image requests, 0.5.20+, "
        "no sglang needed), sglang-processor (the installed sglang's own processor, hashed by "
        "this project). Exit status: 0 ok, 2 bad input, 3 sglang cannot hash or refuses, "
        "4 --strict and a prediction is not exact.",
    )
    p.add_argument("media", nargs="*", metavar="MEDIA", help="path, file:// URL or data: URL")
    p.add_argument("--model", required=True, metavar="DIR", help="local model directory")
    p.add_argument(
        "--sglang-version", metavar="V", help="the engine's release (default: the installed one)"
    )
    p.add_argument(
        "--engine",
        metavar="NAME",
        help="sglang or sglang-kt (runs upstream 0.5.9's processors); default: the installed one. "
        "sglang-omni is refused: it builds its items itself",
    )
    p.add_argument(
        "--together", action="store_true", help="all MEDIA in one request (default: one each)"
    )
    p.add_argument(
        "--request",
        action="append",
        default=[],
        metavar="FILE.json",
        help="an OpenAI chat request or a /generate body (local file:// paths or data URLs)",
    )
    p.add_argument(
        "--mm-hashes", metavar="HEX,...", help="the request's client mm_hashes (one request)"
    )
    p.add_argument(
        "--image-processor-backend", choices=("auto", "torchvision", "pil"), default="auto"
    )
    p.add_argument(
        "--disable-fast-image-processor",
        action="store_true",
        help="the deprecated server flag (same as --image-processor-backend pil)",
    )
    p.add_argument(
        "--preprocess-device",
        choices=("cpu", "cuda"),
        help="where the server preprocesses (default: the release's, cuda for fast processors "
        "on a GPU server; cpu = no GPU touches the media before hashing)",
    )
    p.add_argument("--mm-feature-transport", choices=("cpu", "cuda_ipc", "cuda_vmm"), default="cpu")
    p.add_argument(
        "--audio-decoder",
        choices=("torchcodec", "soundfile"),
        default="torchcodec",
        help="what the server's sglang decodes audio with: torchcodec (default: sglang pins it on "
        "x86-64, with FFmpeg) or soundfile (its fallback: aarch64 installs, no FFmpeg)",
    )
    p.add_argument("--mm-process-config", metavar="JSON", help="the server's JSON, as given")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"server environment ({', '.join(D.KNOWN_ENV)})",
    )
    p.add_argument(
        "--transformers-version",
        metavar="V",
        help="the server's transformers (identity method; default: the installed one)",
    )
    p.add_argument("--revision", help="the server's --revision (identity method)")
    p.add_argument("--json", action="store_true", help="one JSON object per item")
    p.add_argument("--strict", action="store_true", help="exit 4 if any prediction is not exact")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``mmhash predict``; returns the exit status."""
    args = parser().parse_args(list(argv))
    try:
        records = _predict(args)
    except MmhashError as e:
        print(f"mmhash predict: error: {first_line(e)}", file=sys.stderr)
        return e.exit_code
    _print(records, args.json)
    inexact = [p for _, p in records if not p.exact]
    if args.strict and inexact:
        err = NotExactError(
            f"{len(inexact)} of {len(records)} predictions are not exact "
            f"(first: {inexact[0].source or 'item ' + str(inexact[0].item)}: {inexact[0].reasons[0]})"
        )
        print(f"mmhash predict: error: {err}", file=sys.stderr)
        return err.exit_code
    return EXIT_OK


def _predict(args: argparse.Namespace) -> list[tuple[int, ItemPrediction]]:
    """``(request index, prediction)`` for every item, in input order."""
    from ..errors import BadArgumentError
    from .media import read_media
    from .predictor import Request, predict_requests
    from .request import read_request_file

    if not args.media and not args.request:
        raise BadArgumentError("give MEDIA or --request FILE.json (see mmhash predict --help)")
    hashes = _split(args.mm_hashes)
    media = [read_media(m) for m in args.media]
    if hashes is not None and len(media) > 1 and not args.together:
        raise BadArgumentError(
            "--mm-hashes belongs to one request: add --together to send the MEDIA as one request"
        )
    if args.together or hashes is not None:
        requests = [Request(tuple(media), hashes)] if media else []
    else:
        requests = [Request((m,)) for m in media]
    for f in args.request:
        requests.extend(read_request_file(f))
    out = predict_requests(
        requests,
        model=args.model,
        sglang_version=args.sglang_version,
        engine=args.engine,
        deployment=_deployment(args),
        transformers_version=args.transformers_version,
        revision=args.revision,
        shims=True,
    )
    return [(r, p) for r, items in enumerate(out) for p in items]


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _deployment(args: argparse.Namespace) -> Deployment:
    config: Any = {}
    if args.mm_process_config is not None:
        try:
            config = json.loads(args.mm_process_config)
        except json.JSONDecodeError as e:
            raise BadDeploymentError(f"--mm-process-config is not JSON ({e})") from None
        if not isinstance(config, dict) or any(
            not isinstance(config.get(k, {}), dict) for k in ("image", "video", "audio")
        ):
            raise BadDeploymentError(
                "--mm-process-config must be a JSON object whose image/video/audio entries are "
                "objects (sglang raises TypeError otherwise)"
            )
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadDeploymentError(f"--env {item!r}: expected NAME=VALUE")
        env[name] = value
    return Deployment(
        image_processor_backend=args.image_processor_backend,
        preprocess_device=args.preprocess_device,
        mm_feature_transport=args.mm_feature_transport,
        mm_process_config=config,
        env=env,
        disable_fast_image_processor=args.disable_fast_image_processor,
        audio_decoder=args.audio_decoder,
    )


def _print(records: list[tuple[int, ItemPrediction]], as_json: bool) -> None:
    for n, (request, p) in enumerate(records):
        if as_json:
            print(json.dumps({"path": p.source, "request": request, **p.to_dict()}), flush=True)
            continue
        if n:
            print()
        print(f"{p.source or '(joint item of several media)'}  [request {request}, item {p.item}]")
        release = p.sglang_version if p.engine == "sglang" else f"{p.engine} {p.sglang_version}"
        print(f"  SGLang version: {release}    Method: {p.method}")
        print(f"Hash value: {p.hash}")
        print(f"Hash hex: {p.hex}")
        print(f"Pad values: {list(p.pad_values)}")
        print(f"  Exact: {'yes' if p.exact else 'NO'}")
        for reason in p.reasons:
            print(f"    - {reason}")
        if p.feature_shape is not None:
            print(f"  Feature: {p.feature_dtype} {list(p.feature_shape)} sha256 {p.feature_sha256}")
        if p.stack:
            print("  Stack: " + ", ".join(f"{k} {v}" for k, v in p.stack.items()))
