"""What ``tools/gpu-check.sh --prepare-only`` does with wheels, for a GPU machine with no index.

python tools/gpu_check_prepare.py kernels WHEEL DEST   # SGLang's two kernel sources only
python tools/gpu_check_prepare.py select HAS < FREEZE  # requirements to fetch as wheels
python tools/gpu_check_prepare.py slim WHEEL           # drop sglang's unused Rust servers
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

#: The files of an sglang wheel that hold its multimodal hash kernels (0.4.x and 0.5.x layouts).
KERNEL_FILES = ("layers/multimodal.py", "ops/memory/gpu_tensor_hash.py")
#: Never fetched: the GPU machine's own CUDA builds (and what they pin) serve these.
GPU_STACK = re.compile(r"^(torch|torchvision|triton|numpy|pillow|nvidia-[a-z0-9-]+)$")
#: sglang's HTTP-server, benchmark and gRPC Rust extensions (17 MB zipped): the processor path
#: never imports them, and without them the wheels fit the 64 MiB a GPU machine is sent.
UNUSED_EXTENSIONS = re.compile(r"sglang/srt/rust_extensions/_(server|bench|grpc)\.[^/]*\.so$")


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extract_kernels(wheel: Path, dest: Path) -> list[str]:
    """Unzip the kernel sources of ``wheel`` under ``dest``; their paths inside the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(KERNEL_FILES)]
        for name in names:
            zf.extract(name, dest)
    return names


def select(freeze: Iterable[str], has: Iterable[str]) -> list[str]:
    """The ``name==version`` lines of a ``pip freeze`` to fetch: neither the GPU stack, nor this
    project, nor a name the GPU machine already has."""
    skip = {normalise(n) for n in has if n.strip()} | {"pytest-mmhash"}
    out = []
    for line in freeze:
        req = line.strip()
        if not req or req.startswith(("#", "-e ")) or "==" not in req:
            continue
        name = normalise(req.split("==", 1)[0])
        if not GPU_STACK.match(name) and name not in skip:
            out.append(req)
    return out


def slim(wheel: Path) -> list[str]:
    """Rewrite ``wheel`` without :data:`UNUSED_EXTENSIONS`; the names dropped."""
    dropped = []
    tmp = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if UNUSED_EXTENSIONS.search(info.filename):
                dropped.append(info.filename)
            else:
                dst.writestr(info, src.read(info))
    tmp.replace(wheel)
    return dropped


def main(argv: list[str]) -> int:
    """Dispatch the three commands of the module docstring."""
    if len(argv) == 3 and argv[0] == "kernels":
        found = extract_kernels(Path(argv[1]), Path(argv[2]))
        if not found:
            print(f"{argv[1]}: no kernel source in this wheel", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "select":
        has = Path(argv[1]).read_text().splitlines()
        print("\n".join(select(sys.stdin, has)))
        return 0
    if len(argv) == 2 and argv[0] == "slim":
        slim(Path(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
