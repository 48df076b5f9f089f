"""Hash -> pad value(s), and the modifiers applied to item hashes (docs/spec.md §6).

All functions take and return Python ints (and bytes for identities); none knows about versions.
"""

from __future__ import annotations

import hashlib
import math

from ..ints import M64

PAD_SHIFT = 1_000_000
WIDE_PAD_TAG = b"sglang-mm-wide-pad-v1"
NS_TAG = b"multimodal-feature-v1"


def u64be(x: int) -> bytes:
    """The 8-byte big-endian encoding of ``x mod 2^64``."""
    return (x & M64).to_bytes(8, "big")


def pad_mod30(h: int) -> tuple[int]:
    """``pad-mod30``: ``h mod 2^30`` (floor mod, so negative hashes give positive pads)."""
    return (h % (1 << 30),)


def pad_shift_1e6(h: int) -> tuple[int]:
    """``pad-shift-1e6``: ``1_000_000 + h mod 2^30``."""
    return (PAD_SHIFT + h % (1 << 30),)


def wide4_from_identity(identity: bytes) -> tuple[int, int, int, int]:
    """``pad-wide4``: four pads from 62-bit slices of ``SHA256(tag || identity)``."""
    d = hashlib.sha256(WIDE_PAD_TAG + identity).digest()
    return tuple(  # type: ignore[return-value]
        PAD_SHIFT + (int.from_bytes(d[8 * k : 8 * k + 8], "big") & ((1 << 62) - 1))
        for k in range(4)
    )


def pad_wide4(h: int) -> tuple[int, int, int, int]:
    """``pad-wide4`` of an item hash: the identity is ``u64be(h mod 2^64)``."""
    return wide4_from_identity(u64be(h))


def mask64(h: int) -> int:
    """The ``mask64`` modifier (0.5.19+): SGLang stores ``h & (2^64 - 1)``."""
    return h & M64


def hash_of_identity(identity: bytes) -> int:
    """The item hash ``set_identity`` stores: the identity's first 8 bytes, big-endian."""
    return int.from_bytes(identity[:8], "big")


def hash_of_mm_hash(text: str) -> int:
    """The item hash SGLang takes from a caller's ``mm_hashes`` entry: ``int(text, 16)``."""
    return int(text, 16)


def parse_namespace(namespace: str) -> bytes:
    """The 32 bytes of a ``sha256:<64 hex digits>`` namespace."""
    prefix, _, digits = namespace.partition(":")
    if prefix != "sha256" or len(digits) != 64:
        raise ValueError(f"namespace {namespace!r} is not 'sha256:' followed by 64 hex digits")
    return bytes.fromhex(digits)


def ns_mix_v1(h: int, namespace: str) -> int:
    """``ns-mix-v1`` (0.5.18+): SGLang's ``resolve_multimodal_item_hash`` with a namespace."""
    if isinstance(h, bool) or not isinstance(h, int) or h < 0:
        raise ValueError(f"ns-mix-v1 needs a non-negative int hash, got {h!r}")
    ns = parse_namespace(namespace)
    hb = h.to_bytes(max(1, math.ceil(h.bit_length() / 8)), "big")
    d = hashlib.sha256(
        u64be(len(NS_TAG)) + NS_TAG + u64be(len(ns)) + ns + u64be(len(hb)) + hb
    ).digest()
    return int.from_bytes(d[:8], "big")
