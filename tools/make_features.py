#!/usr/bin/env python3
"""Make the input side of the pytest-mmhash golden corpus.

Writes small, real feature files into ``golden/features/`` and the entries of
``golden/manifest.json`` (through :mod:`pytest_mmhash.golden.store`, the one
writer of the manifest format), plus ``requirements/features-env.json``, the
versions and source-image digests this run used.  It writes NO hash or pad
values: those are recorded later, from real pinned SGLang, into each entry's
``values`` object.

Run it from the dedicated venv (see docs/golden.md), with this project installed
into it (``pip install --no-deps -e .``):

    "$FEATURES_VENV/bin/python" tools/make_features.py

Properties:

* Deterministic: fixed seeds (numpy PCG64), one torch thread, no timestamps in
  any container (torch.save already writes fixed zip dates; the .npz is written
  by hand with fixed dates).  Running it twice gives byte-identical files.
* Offline: the sample images ship inside installed packages (matplotlib's
  ``mpl-data/sample_data`` and scikit-image's ``skimage/data``); processors are
  built from their default configs, never from the hub.
* Re-runnable: an existing manifest's ``provenance`` is kept, and an entry's
  recorded ``values`` are kept when its id, file, key and sha256 are unchanged;
  values of an entry whose bytes changed are dropped (they would be stale) and
  the entry is reported on stderr.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import io
import json
import os
import platform
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save as st_save  # noqa: E402

from pytest_mmhash.golden import store  # noqa: E402
from pytest_mmhash.golden.model import Entry  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "golden"
FEATURES = GOLDEN / "features"
ENV_FILE = REPO / "requirements" / "features-env.json"

PIN = "0.5.23"
SEED = 20261127

PACKAGES = ["torch", "numpy", "pillow", "safetensors", "transformers", "matplotlib", "scikit-image"]

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

ENTRIES: list[Entry] = []
WRITTEN: dict[str, dict] = {}  # relative file -> {"sha256":..., "obj":...}


def rng(tag: str) -> np.random.Generator:
    """A PCG64 generator seeded from SEED and a tag, so adding an entry never
    shifts the random content of another one."""
    h = int.from_bytes(hashlib.sha256(tag.encode()).digest()[:8], "big")
    return np.random.default_rng([SEED, h])


def shape_str(shape) -> str:
    return "(" + ",".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _register(fname: str, entries: list[tuple[str, str | None, str, str]]) -> None:
    rel = f"features/{fname}"
    digest = store.content_sha256(FEATURES / fname)
    for eid, key, kind, desc in entries:
        ENTRIES.append(Entry(eid, rel, key, digest, kind, desc, {}))


def _desc_tensor(t: torch.Tensor) -> str:
    return f"{str(t.dtype).replace('torch.', '')} {shape_str(t.shape)}"


def save_pt(
    fname: str, obj, eid: str, kind: str, desc: str, *, keep_noncontig: bool = False
) -> None:
    """One feature per file: a tensor, or a list/tuple container saved whole."""
    if isinstance(obj, torch.Tensor) and not keep_noncontig:
        # clone: torch.save writes the whole storage; never ship a big base
        obj = obj.detach().contiguous().clone()
    torch.save(obj, FEATURES / fname)
    back = torch.load(FEATURES / fname, weights_only=True)
    _check_same(obj, back, fname)
    if isinstance(obj, torch.Tensor):
        desc = f"{_desc_tensor(obj)}: {desc}"
    _register(fname, [(eid, None, kind, desc)])


def _check_same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride(), where
        assert a.is_contiguous() == b.is_contiguous(), where
        ab = a.contiguous().reshape(-1).view(torch.uint8) if a.numel() else a
        bb = b.contiguous().reshape(-1).view(torch.uint8) if b.numel() else b
        assert torch.equal(ab, bb), f"bytes differ after reload: {where}"
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for x, y in zip(a, b, strict=True):
            _check_same(x, y, where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _check_same(a[k], b[k], where)
    else:
        raise AssertionError(f"unexpected object in {where}: {type(a)}")


def save_pt_dict(
    fname: str, d: dict[str, torch.Tensor], entries: dict[str, tuple[str, str, str]]
) -> None:
    d = {k: v.detach().contiguous().clone() for k, v in d.items()}
    torch.save(d, FEATURES / fname)
    back = torch.load(FEATURES / fname, weights_only=True)
    _check_same(d, back, fname)
    _register(
        fname,
        [
            (eid, k, kind, f"{_desc_tensor(d[k])}: {desc}")
            for k, (eid, kind, desc) in entries.items()
        ],
    )


def save_npy(
    fname: str, arr: np.ndarray, eid: str, desc: str, kind: str = "edge-case"
) -> np.ndarray:
    np.save(FEATURES / fname, arr, allow_pickle=False)
    back = np.load(FEATURES / fname, allow_pickle=False)
    assert back.dtype == arr.dtype and back.shape == arr.shape, fname
    assert back.tobytes(order="A") == arr.tobytes(order="A"), fname
    assert back.flags.f_contiguous == arr.flags.f_contiguous, fname
    _register(fname, [(eid, None, kind, f"numpy {arr.dtype.str} {shape_str(arr.shape)}: {desc}")])
    return back


def save_npz(
    fname: str, arrays: dict[str, np.ndarray], entries: dict[str, tuple[str, str]]
) -> None:
    """Like np.savez (uncompressed .npy members), but with fixed zip dates so
    the file bytes do not depend on the clock."""
    path = FEATURES / fname
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for k, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
            zi = zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, buf.getvalue())
    with np.load(path, allow_pickle=False) as back:
        assert sorted(back.files) == sorted(arrays), fname
        for k, a in arrays.items():
            assert back[k].dtype == a.dtype and back[k].tobytes() == a.tobytes(), fname
    _register(
        fname,
        [
            (
                eid,
                k,
                "edge-case",
                f"numpy {arrays[k].dtype.str} {shape_str(arrays[k].shape)}: {desc}",
            )
            for k, (eid, desc) in entries.items()
        ],
    )


def save_safetensors(
    fname: str, tensors: dict[str, torch.Tensor], entries: dict[str, tuple[str, str]]
) -> None:
    from safetensors.torch import load_file

    tensors = {k: v.contiguous().clone() for k, v in tensors.items()}
    (FEATURES / fname).write_bytes(st_save(tensors))
    back = load_file(str(FEATURES / fname))
    _check_same(dict(sorted(tensors.items())), dict(sorted(back.items())), fname)
    _register(
        fname,
        [
            (eid, k, "edge-case", f"{_desc_tensor(tensors[k])}: {desc}")
            for k, (eid, desc) in entries.items()
        ],
    )


# ----------------------------------------------------------------------------
# sample images shipped inside installed packages
# ----------------------------------------------------------------------------


def _pkg_dir(mod: str) -> Path:
    spec = importlib.util.find_spec(mod)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {mod!r} is not installed in this venv")
    return Path(list(spec.submodule_search_locations)[0])


SOURCES: dict[str, dict] = {}


def sample_image(name: str) -> Image.Image:
    table = {
        "grace_hopper.jpg": (
            "matplotlib",
            _pkg_dir("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg",
        ),
        "astronaut.png": ("scikit-image", _pkg_dir("skimage") / "data" / "astronaut.png"),
        "coffee.png": ("scikit-image", _pkg_dir("skimage") / "data" / "coffee.png"),
        "chelsea.png": ("scikit-image", _pkg_dir("skimage") / "data" / "chelsea.png"),
    }
    pkg, path = table[name]
    root = _pkg_dir("matplotlib" if pkg == "matplotlib" else "skimage").parent
    if not path.is_file():
        raise SystemExit(
            f"sample image {path} is missing (is {pkg} installed with its bundled data?)"
        )
    SOURCES[name] = {
        "package": pkg,
        "package_version": md.version(pkg),
        "path_in_package": path.relative_to(root).as_posix(),
        "sha256": store.content_sha256(path),
    }
    with Image.open(path) as im:
        return im.convert("RGB")


# ----------------------------------------------------------------------------
# the corpus
# ----------------------------------------------------------------------------


def processor_outputs() -> None:
    from transformers import (
        CLIPImageProcessorPil,
        Qwen2VLImageProcessorPil,
        SiglipImageProcessorPil,
        WhisperFeatureExtractor,
    )

    hopper = sample_image("grace_hopper.jpg")

    # CLIP: fp32 (1,3,224,224), and the same cast to bf16 as many SGLang processors do
    clip = CLIPImageProcessorPil()
    pv = clip(hopper, return_tensors="pt")["pixel_values"]
    assert pv.dtype == torch.float32 and tuple(pv.shape) == (1, 3, 224, 224)
    save_pt(
        "clip_grace_hopper_fp32.pt",
        pv,
        "clip-grace-hopper-fp32",
        "processor-output",
        "CLIPImageProcessor (default config, PIL backend) pixel_values of grace_hopper.jpg; a real "
        "single-tensor fp32 feature: same value in sha256-f32 and sha256-raw, 19 tiles of 8192 words on the GPU path (18 full + 3072)",
    )
    save_pt(
        "clip_grace_hopper_bf16.pt",
        pv.to(torch.bfloat16),
        "clip-grace-hopper-bf16",
        "processor-output",
        "the CLIP pixel_values above cast to bf16; CPU hash changes at 0.5.10 (fp32 upcast vs raw 2-byte values) "
        "and the GPU path never upcasts",
    )

    # SigLIP on another image, cast to fp16
    chelsea = sample_image("chelsea.png")
    sv = SiglipImageProcessorPil()(chelsea, return_tensors="pt")["pixel_values"]
    assert tuple(sv.shape) == (1, 3, 224, 224)
    save_pt(
        "siglip_chelsea_fp16.pt",
        sv.to(torch.float16),
        "siglip-chelsea-fp16",
        "processor-output",
        "SiglipImageProcessor (default config, PIL backend) pixel_values of skimage chelsea.png cast to fp16; "
        "a real half-precision feature (no upcast in any scheme, even byte count)",
    )

    # Qwen2-VL flattened patches + grid (downscale first so the file stays small)
    q = Qwen2VLImageProcessorPil()
    small = hopper.resize((84, 112), Image.Resampling.BICUBIC)
    qo = q(small, return_tensors="pt")
    qpv, qgrid = qo["pixel_values"], qo["image_grid_thw"]
    save_pt(
        "qwen2vl_grace_hopper_pixel_values.pt",
        qpv,
        "qwen2vl-grace-hopper-pixel-values",
        "processor-output",
        "Qwen2VLImageProcessor (default config, PIL backend) flattened patches of grace_hopper.jpg downscaled "
        "to 84x112 (bicubic); the 2-D patch layout Qwen-VL items carry as feature",
    )
    save_pt(
        "qwen2vl_grace_hopper_image_grid_thw.pt",
        qgrid,
        "qwen2vl-grace-hopper-image-grid-thw",
        "processor-output",
        "the image_grid_thw that goes with the Qwen2-VL patches above; a tiny int64 tensor (24 bytes, "
        "6 words, one short tile)",
    )

    # Video: 4 frames from 4 sample images at 84x56, Qwen2-VL video layout
    names = ["grace_hopper.jpg", "astronaut.png", "coffee.png", "chelsea.png"]
    frames = []
    for n in names:
        im = sample_image(n)
        w, h = im.size
        side = min(w, h)  # centre square crop, then 3:2 resize
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize(
            (84, 56), Image.Resampling.BICUBIC
        )
        frames.append(np.asarray(im, dtype=np.uint8))
    tchw = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()  # (T,C,H,W) uint8
    save_pt(
        "video_frames_uint8_tchw.pt",
        tchw,
        "video-frames-uint8-tchw",
        "edge-case",
        "raw (T,C,H,W) uint8 video-shaped stack: centre crops of grace_hopper, astronaut, coffee, chelsea "
        "resized to 84x56; 4-D uint8 feature, byte count a multiple of 4",
    )
    # normalise each frame with the Qwen2-VL image processor's own rescale/normalize, then lay the
    # frames out exactly as transformers' Qwen2VLVideoProcessor.patchify does (that class needs
    # torchvision, which cannot be installed next to CPU torch here).
    normed = []
    for f in tchw.numpy():
        x = q.rescale(f.astype(np.float32), q.rescale_factor)
        x = q.normalize(x, q.image_mean, q.image_std)
        normed.append(np.asarray(x, dtype=np.float32))
    videos = torch.from_numpy(np.stack(normed))[None]  # (B=1,T,C,H,W)
    vpv, vgrid = _qwen2vl_video_patchify(videos, patch_size=14, merge_size=2, temporal_patch_size=2)
    save_pt(
        "qwen2vl_video_pixel_values_videos.pt",
        vpv,
        "qwen2vl-video-pixel-values-videos",
        "processor-output",
        "Qwen2-VL pixel_values_videos of the 4-frame stack above (temporal_patch_size 2, OPENAI-CLIP "
        "normalisation by Qwen2VLImageProcessor, layout of Qwen2VLVideoProcessor.patchify, no resize)",
    )
    save_pt(
        "qwen2vl_video_grid_thw.pt",
        vgrid,
        "qwen2vl-video-grid-thw",
        "processor-output",
        "the video_grid_thw that goes with pixel_values_videos above",
    )

    # Audio: Whisper log-mel of a deterministic synthetic waveform
    sr = 16000
    t = np.arange(int(2.5 * sr), dtype=np.float64) / sr
    wave = (
        0.4 * np.sin(2 * np.pi * 440.0 * t)
        + 0.2 * np.sin(2 * np.pi * (300.0 * t + 400.0 * t * t))  # chirp 300 -> 2300 Hz
        + 0.05 * rng("whisper-noise").standard_normal(t.shape)
    ) * np.minimum(1.0, t / 0.1)
    wave = wave.astype(np.float32)
    fe = WhisperFeatureExtractor()
    af = fe(wave, sampling_rate=sr, return_tensors="pt")["input_features"]
    assert af.dtype == torch.float32 and tuple(af.shape) == (1, 80, 3000)
    save_pt(
        "whisper_synthetic_input_features.pt",
        af,
        "whisper-synthetic-input-features",
        "processor-output",
        "WhisperFeatureExtractor (default config) log-mel input_features of a 2.5 s synthetic 16 kHz "
        "waveform (440 Hz tone + chirp + seeded noise), padded to 30 s; a real audio feature (30 tiles)",
    )


def _qwen2vl_video_patchify(
    videos: torch.Tensor, patch_size: int, merge_size: int, temporal_patch_size: int
):
    """Copy of transformers 5.24.0 Qwen2VLVideoProcessor.patchify + the grid/cat of _preprocess."""
    batch_size, num_frames, channel, resized_height, resized_width = videos.shape
    if pad := -num_frames % temporal_patch_size:
        repeats = videos[:, -1:].expand(-1, pad, -1, -1, -1)
        videos = torch.cat((videos, repeats), dim=1)
        num_frames += pad
    grid_t = num_frames // temporal_patch_size
    grid_h, grid_w = resized_height // patch_size, resized_width // patch_size
    patches = videos.view(
        batch_size,
        grid_t,
        temporal_patch_size,
        channel,
        grid_h // merge_size,
        merge_size,
        patch_size,
        grid_w // merge_size,
        merge_size,
        patch_size,
    )
    patches = patches.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    flat = patches.reshape(
        batch_size,
        grid_t * grid_h * grid_w,
        channel * temporal_patch_size * patch_size * patch_size,
    )
    pixel_values_videos = torch.cat(list(flat), dim=0)
    video_grid_thw = torch.tensor([[grid_t, grid_h, grid_w]] * batch_size)
    return pixel_values_videos, video_grid_thw


def image_file() -> None:
    hopper = sample_image("grace_hopper.jpg")
    # the face region (256x192), box-downscaled 4x to 64x48
    crop = hopper.crop((136, 110, 392, 302)).resize((64, 48), Image.Resampling.BOX)
    assert crop.size == (64, 48)
    crop.save(
        FEATURES / "grace_hopper_crop_64x48.png", format="PNG", optimize=False, compress_level=9
    )
    with Image.open(FEATURES / "grace_hopper_crop_64x48.png") as im:
        back = np.asarray(im.convert("RGB"))
    assert back.shape == (48, 64, 3) and back.tobytes() == np.asarray(crop).tobytes()
    _register(
        "grace_hopper_crop_64x48.png",
        [
            (
                "image-grace-hopper-crop-png",
                None,
                "image",
                "64x48 RGB PNG of grace_hopper.jpg (face region 256x192 box-downscaled 4x); loader: Pillow open, convert('RGB'), HWC uint8, permute "
                "to CHW uint8 (3,48,64) = 9216 bytes; exercises the image-file loading path (lossless, so decoding "
                "is exact on any Pillow)",
            )
        ],
    )


def edge_cases() -> None:
    E = "edge-case"
    # --- half types with odd element counts (GPU int kernels raise; tile kernel zero-pads) ---
    b7 = torch.tensor([1.0, -2.5, 3.140625, 0.0, -0.0, 65280.0, 0.0009765625], dtype=torch.bfloat16)
    save_pt(
        "bf16_odd7.pt",
        b7,
        "bf16-odd7",
        E,
        "7 bf16 values (14 bytes, not a multiple of 4): bf16 upcast vs raw change at 0.5.10; "
        "int32/int64 GPU kernels raise; tile kernel zero-pads to 16 bytes",
    )
    save_pt(
        "fp32_odd7_from_bf16.pt",
        b7.float(),
        "fp32-odd7-from-bf16",
        E,
        "exact fp32 upcast of bf16-odd7: collides with bf16-odd7 under sha256-f32 (<=0.5.9), differs from 0.5.10",
    )
    f16 = torch.tensor([1.0, -2.0, 0.5, 65504.0, -0.0, 6.1e-05, 3.0], dtype=torch.float16)
    save_pt(
        "fp16_odd7.pt",
        f16,
        "fp16-odd7",
        E,
        "7 fp16 values (14 bytes): odd half-precision count, byte count not a multiple of 4",
    )

    # --- uint8 byte counts that are not multiples of 4 ---
    for n in (1, 3, 5, 6, 7):
        if n == 3:
            data = torch.tensor([1, 2, 3], dtype=torch.uint8)
        else:
            data = torch.from_numpy(rng(f"uint8-{n}").integers(0, 256, size=n, dtype=np.uint8))
        extra = "; [1,2,3] collides with uint8-4-pad0 on the tile kernel" if n == 3 else ""
        save_pt(
            f"uint8_len{n}.pt",
            data,
            f"uint8-len{n}",
            E,
            f"uint8 with {n} byte(s), not a multiple of 4: int GPU kernels raise, tile kernel zero-pads{extra}",
        )
    save_pt(
        "uint8_len4_pad0.pt",
        torch.tensor([1, 2, 3, 0], dtype=torch.uint8),
        "uint8-len4-pad0",
        E,
        "uint8 [1,2,3,0]: the zero-padded twin of uint8-len3; same tile-kernel hash, different SHA-256",
    )

    # --- multi-tile sizes (tile = 8192 words) ---
    base = torch.from_numpy(
        rng("int32-tiles").integers(-(2**31), 2**31, size=3 * 8192, dtype=np.int64).astype(np.int32)
    )
    for n, eid, why in (
        (8192, "int32-tile-8192", "exactly one full tile"),
        (8193, "int32-tile-8193", "one full tile + a 1-word tile; prefix equals int32-tile-8192"),
        (16384 + 5, "int32-tile-16389", "two full tiles + a 5-word tile; same prefix"),
        (3 * 8192, "int32-tile-24576", "exactly three full tiles; same prefix"),
    ):
        save_pt(
            f"int32_words_{n}.pt",
            base[:n],
            eid,
            E,
            f"{n} int32 words: {why} (tile-boundary behaviour of gpu-tile-fmix32)",
        )

    # --- non-contiguous tensors (torch.save keeps the strides) ---
    x = torch.arange(6 * 10, dtype=torch.float32).reshape(6, 10) * 0.25 - 3.0
    tr = x.t()
    save_pt(
        "noncontig_transpose_fp32.pt",
        tr,
        "noncontig-transpose-fp32",
        E,
        "x.t() of a (6,10) fp32 tensor, saved non-contiguous (strides (1,10)): hashes in logical row-major "
        "order, so must equal the .contiguous() copy",
        keep_noncontig=True,
    )
    sl = x[:, ::2]
    save_pt(
        "noncontig_slice_fp32.pt",
        sl,
        "noncontig-slice-fp32",
        E,
        "x[:, ::2] of a (6,10) fp32 tensor, saved non-contiguous (strides (10,2), whole 60-element storage "
        "in the file): only the 30 selected elements may be hashed",
        keep_noncontig=True,
    )
    save_pt(
        "contig_slice_fp32.pt",
        sl.contiguous(),
        "contig-slice-fp32",
        E,
        "the .contiguous() copy of noncontig-slice-fp32: must hash the same as it",
    )
    for fn in ("noncontig_transpose_fp32.pt", "noncontig_slice_fp32.pt"):
        assert not torch.load(FEATURES / fn, weights_only=True).is_contiguous(), fn

    # --- lists (the whole list is the feature) ---
    r = rng("lists")
    a = torch.from_numpy(r.standard_normal((2, 3)).astype(np.float32))
    b = torch.from_numpy(r.standard_normal((4,)).astype(np.float32))
    c = torch.from_numpy(r.standard_normal((3,)).astype(np.float32))
    i64 = torch.tensor([3, -1, 2**40, 0], dtype=torch.int64)
    save_pt(
        "list_fp32_fp32.pt",
        [a, b],
        "list-fp32-fp32",
        E,
        "list [fp32 (2,3), fp32 (4,)]: same-dtype list, flattened and concatenated (or streamed) part by part",
    )
    save_pt(
        "list_fp32_int64.pt",
        [b, i64],
        "list-fp32-int64",
        E,
        "mixed-dtype list [fp32 (4,), int64 (4,)]: promoted to fp32 by torch.cat in sha256-f32 and on the GPU, "
        "raw per-part bytes in sha256-raw",
    )
    save_pt(
        "list_bf16_fp32.pt",
        [b7, c],
        "list-bf16-fp32",
        E,
        "mixed list [bf16 (7,), fp32 (3,)]: cat promotes to fp32 (<=0.5.9 and GPU), raw 14+12 bytes from 0.5.10",
    )
    save_pt(
        "list_fp16_bf16.pt",
        [f16, b7],
        "list-fp16-bf16",
        E,
        "mixed half list [fp16 (7,), bf16 (7,)]: torch.cat promotes to fp32 (<=0.5.9 and GPU)",
    )
    save_pt(
        "list_nested.pt",
        [a, [b, c]],
        "list-nested",
        E,
        "nested list [t1, [t2, t3]]: flatten_nested_list descends into the inner list, depth-first",
    )
    save_pt(
        "list_nested_first.pt",
        [[a], [b]],
        "list-nested-first",
        E,
        "list whose first element is a list [[t1],[t2]]: dispatch looks at f[0] only, so SGLang raises TypeError",
    )
    save_pt(
        "list_empty.pt",
        [],
        "list-empty",
        E,
        "empty list: IndexError up to 0.5.13, TypeError from 0.5.14",
    )
    save_pt(
        "tuple_fp32_fp32.pt",
        (a, b),
        "tuple-fp32-fp32",
        E,
        "tuple (t1, t2) instead of a list: not dispatched as tensors, SHA-256 over a tuple raises TypeError",
    )

    # --- dict of tensors (container: one entry per key) ---
    save_pt_dict(
        "dict_tensors.pt",
        {
            "pixel_values": a,
            "image_grid_thw": torch.tensor([[1, 2, 2]], dtype=torch.int64),
            "mask": torch.tensor([True, False, True]),
        },
        {
            "pixel_values": ("dict-pixel-values", E, "fp32 entry of a .pt dict container"),
            "image_grid_thw": ("dict-image-grid-thw", E, "int64 entry of a .pt dict container"),
            "mask": ("dict-mask", E, "bool entry of a .pt dict container (3 bytes)"),
        },
    )

    # --- numpy ---
    f64 = rng("np-f64").standard_normal((3, 5))
    save_npy(
        "np_float64.npy",
        f64,
        "np-float64",
        "numpy float64 array: numpy path (SHA-256 of C-order bytes, never GPU)",
    )
    fo = np.asfortranarray(rng("np-fortran").standard_normal((4, 6)).astype(np.float32))
    back = save_npy(
        "np_fortran_f4.npy",
        fo,
        "np-fortran-f4",
        "Fortran-order .npy (loads F-contiguous): hashed via ascontiguousarray, i.e. C order",
    )
    assert back.flags.f_contiguous and not back.flags.c_contiguous
    be4 = (np.arange(12, dtype=np.float32).reshape(3, 4) * 1.5 - 4.0).astype(">f4")
    back = save_npy(
        "np_bigendian_f4.npy",
        be4,
        "np-bigendian-f4",
        "big-endian >f4 .npy: whether the non-native byte order reaches the digest as stored",
    )
    assert back.dtype.byteorder == ">"
    be2 = np.array([1, -2, 300, -32768, 32767], dtype=">i2")
    back = save_npy(
        "np_bigendian_i2.npy",
        be2,
        "np-bigendian-i2",
        "big-endian >i2 .npy, 5 elements (10 bytes): byte order and a non-multiple-of-4 byte count",
    )
    assert back.dtype.byteorder == ">"
    ar = np.arange(10, dtype=np.float32) * 0.5
    save_npy(
        "np_float32_arange10.npy",
        ar,
        "np-float32-arange10",
        "numpy float32 [0,0.5,...,4.5]: same dtype and values as fp32-arange10, so the same CPU hash",
    )
    save_pt(
        "fp32_arange10.pt",
        torch.from_numpy(ar.copy()),
        "fp32-arange10",
        E,
        "torch fp32 twin of np-float32-arange10 (numpy/tensor agreement on CPU)",
    )
    save_npy(
        "np_empty_f4.npy",
        np.empty((0,), dtype=np.float32),
        "np-empty-f4",
        "empty numpy array: SHA-256 of b''",
    )

    # --- signed zero and NaN payloads ---
    save_pt(
        "fp32_pos_zero.pt",
        torch.tensor([0.0, 1.0], dtype=torch.float32),
        "fp32-pos-zero",
        E,
        "fp32 [0.0, 1.0]: twin of fp32-neg-zero; byte hashes tell +0.0 from -0.0",
    )
    save_pt(
        "fp32_neg_zero.pt",
        torch.tensor([-0.0, 1.0], dtype=torch.float32),
        "fp32-neg-zero",
        E,
        "fp32 [-0.0, 1.0]: -0.0 == 0.0 numerically but has a different bit pattern",
    )
    nan_bits = np.array(
        [0x7FC00000, 0x7FC00001, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF], dtype=np.uint32
    )
    nans = torch.from_numpy(nan_bits.view(np.int32).copy()).view(torch.float32)
    save_pt(
        "fp32_nan_payloads.pt",
        nans,
        "fp32-nan-payloads",
        E,
        "six fp32 NaNs with distinct bit patterns (quiet, payload, negative, signalling, all-ones) made via an "
        "int32 view: hashing must keep the exact bits",
    )
    back = torch.load(FEATURES / "fp32_nan_payloads.pt", weights_only=True)
    assert torch.equal(back.view(torch.int32), nans.view(torch.int32))
    save_pt(
        "fp32_nan_canonical.pt",
        torch.full((6,), float("nan"), dtype=torch.float32),
        "fp32-nan-canonical",
        E,
        "six canonical fp32 NaNs (0x7fc00000): differs from fp32-nan-payloads only in NaN bits",
    )
    bnan_bits = np.array([0x7FC0, 0x7FC1, 0xFFC0, 0x7F81, 0x7FFF, 0x3F80], dtype=np.uint16)
    bnan = torch.from_numpy(bnan_bits.view(np.int16).copy()).view(torch.bfloat16)
    save_pt(
        "bf16_nan_payloads.pt",
        bnan,
        "bf16-nan-payloads",
        E,
        "bf16 NaNs with distinct payloads plus 1.0: the sha256-f32 upcast must keep the payload bits",
    )
    back = torch.load(FEATURES / "bf16_nan_payloads.pt", weights_only=True)
    assert torch.equal(back.view(torch.int16), bnan.view(torch.int16))

    # --- empty, 0-dim, bool, int64, float8, dtype/bit collisions ---
    save_pt(
        "fp32_empty.pt",
        torch.empty((0,), dtype=torch.float32),
        "fp32-empty",
        E,
        "empty fp32 tensor: SHA-256 of b'' on CPU; 0 (no finaliser) on the tile kernel",
    )
    save_pt(
        "fp32_0dim.pt",
        torch.tensor(3.5, dtype=torch.float32),
        "fp32-0dim",
        E,
        "0-dim fp32 scalar tensor: flattened to one element",
    )
    save_pt(
        "bool_len5.pt",
        torch.tensor([True, False, True, True, False]),
        "bool-len5",
        E,
        "bool tensor, 5 elements (5 bytes): bool raw bytes and a non-multiple-of-4 byte count",
    )
    save_pt(
        "int64_mixed.pt",
        torch.tensor([0, 1, -1, 2**62, -(2**63), 2**63 - 1, 12345], dtype=torch.int64),
        "int64-mixed",
        E,
        "int64 with sign and extreme values (7 x 8 bytes)",
    )
    save_pt(
        "float8_e4m3fn.pt",
        torch.tensor([1.0, -2.0, 0.5, 0.0, 448.0], dtype=torch.float32).to(torch.float8_e4m3fn),
        "float8-e4m3fn",
        E,
        "float8_e4m3fn, 5 bytes: numpy lacks the dtype, so sha256-f32 (<=0.5.9) raises "
        "TypeError; hashed raw from 0.5.10",
    )
    save_pt(
        "fp32_one.pt",
        torch.tensor([1.0], dtype=torch.float32),
        "fp32-one",
        E,
        "fp32 [1.0]: collides with int32-3f800000 (dtype is not hashed)",
    )
    save_pt(
        "int32_3f800000.pt",
        torch.tensor([0x3F800000], dtype=torch.int32),
        "int32-3f800000",
        E,
        "int32 [0x3f800000]: the same 4 bytes as fp32 1.0",
    )
    save_pt(
        "fp32_reshaped_2x3.pt",
        torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "fp32-reshaped-2x3",
        E,
        "fp32 arange(6) as (2,3): collides with fp32-flat-6 (shape is not hashed)",
    )
    save_pt(
        "fp32_flat_6.pt",
        torch.arange(6, dtype=torch.float32),
        "fp32-flat-6",
        E,
        "fp32 arange(6) as (6,): same bytes as fp32-reshaped-2x3",
    )

    # --- .npz and .safetensors containers ---
    save_npz(
        "np_container.npz",
        {
            "features": rng("npz-f").standard_normal((2, 4)).astype(np.float32),
            "ids": np.array([7, 8, 9], dtype=np.int64),
            "bytes3": np.array([250, 251, 252], dtype=np.uint8),
        },
        {
            "features": ("npz-features", ".npz member (float32) loaded with allow_pickle=False"),
            "ids": ("npz-ids", ".npz member (int64)"),
            "bytes3": ("npz-bytes3", ".npz member (uint8, 3 bytes, not a multiple of 4)"),
        },
    )
    save_safetensors(
        "st_container.safetensors",
        {
            "pixel_values": torch.from_numpy(
                rng("st-pv").standard_normal((2, 3, 4)).astype(np.float32)
            ).to(torch.bfloat16),
            "embeds": torch.from_numpy(rng("st-em").standard_normal((3, 5)).astype(np.float32)),
            "grid": torch.tensor([[1, 4, 6]], dtype=torch.int64),
        },
        {
            "pixel_values": ("st-pixel-values-bf16", ".safetensors member in bf16 (24 values)"),
            "embeds": (
                "st-embeds-fp32",
                ".safetensors member in fp32 (precomputed-embedding shaped)",
            ),
            "grid": ("st-grid-int64", ".safetensors member in int64"),
        },
    )


# ----------------------------------------------------------------------------
# manifest
# ----------------------------------------------------------------------------


def main() -> int:
    FEATURES.mkdir(parents=True, exist_ok=True)
    old_files = {p.name for p in FEATURES.iterdir() if p.is_file()}

    processor_outputs()
    image_file()
    edge_cases()

    import re

    for e in ENTRIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", e.id), e.id
    new_files = {e.file.split("/", 1)[1] for e in ENTRIES}
    for stale in sorted(old_files - new_files):
        (FEATURES / stale).unlink()
        print(f"removed stale feature file {stale}", file=sys.stderr)

    path = store.manifest_path(GOLDEN)
    old = store.load_manifest(GOLDEN) if path.exists() else store.new_manifest(GOLDEN, PIN, [])
    manifest, dropped = store.replace_entries(old, ENTRIES)  # validated: duplicate ids refused
    for eid in dropped:
        print(f"entry {eid}: feature bytes changed, dropping its recorded values", file=sys.stderr)
    store.write_manifest(manifest)

    env = {
        "generator": "tools/make_features.py",
        "seed": SEED,
        "python": platform.python_version(),
        "packages": {p: md.version(p) for p in PACKAGES},
        "torch_num_threads": 1,
        "transformers_backend": "PIL (torchvision not installed)",
        "sample_images": dict(sorted(SOURCES.items())),
    }
    store.write_atomic(
        ENV_FILE, json.dumps(env, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )

    total = sum((FEATURES / f).stat().st_size for f in new_files)
    print(f"{len(ENTRIES)} entries, {len(new_files)} files, {total} bytes in {FEATURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
