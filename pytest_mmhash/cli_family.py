"""The ``mmhash`` pieces for the SGLang forks: ``--list-versions --engine FORK`` and
``mmhash omni-key-pad KEY --vocab-size N`` (sglang-omni's cache-key pad)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import engines as E
from . import versions as V
from .errors import MmhashError

EXIT_OK, EXIT_BAD_INPUT = 0, 2
KEY_PAD_SCHEME = "omni-key-pad"


def list_fork_versions(engine: str, as_json: bool) -> None:
    """Print a fork's release ranges: the upstream schemes each runs and what the fork adds."""
    rows = []
    for span in E.spans(engine):
        rel = E.releases(engine)
        era = V.resolve(span.upstream).era
        rows.append(
            {
                "engine": engine,
                "first": span.first,
                "last": span.last,
                "upstream": span.upstream,
                "cpu": span.waveform or era.cpu,
                "cuda": "none" if span.waveform else era.cuda,
                "pad": era.pad,
                "modifiers": ["mask64"] if era.mask64 else [],
                "releases": list(rel[rel.index(span.first) : rel.index(span.last) + 1]),
            }
        )
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    head = "waveform hash" if engine == E.SGLANG_OMNI else "cpu"
    print(f"{'releases':<22} {'schemes of':<14} {head:<22} {'cuda':<16} {'pad':<14} modifiers")
    for r in rows:
        label = r["first"] if r["first"] == r["last"] else f"{r['first']} - {r['last']}"
        print(
            f"{label:<22} {'sglang ' + str(r['upstream']):<14} {r['cpu']:<22} {r['cuda']:<16} "
            f"{r['pad']:<14} {' '.join(r['modifiers'])}"
        )
    newest = E.releases(engine)[-1]
    print(f"{len(E.releases(engine))} {engine} releases known, newest {newest}.", end=" ")
    if engine == E.SGLANG_OMNI:
        print(
            "The waveform hash is the item hash of ASR requests; Qwen3-Omni, Ming-Omni and "
            "MiniCPM-o use a cache-key pad instead (mmhash omni-key-pad)."
        )
    else:
        print("Version numbers follow KTransformers, not upstream sglang.")


def _key_pad_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmhash omni-key-pad",
        description="The pad sglang-omni's Qwen3-Omni, Ming-Omni and MiniCPM-o give every "
        "placeholder of a modality: vocab_size + XXH3_64(cache key) mod 2^62.",
    )
    p.add_argument("keys", nargs="+", metavar="KEY", help="cache key string(s), e.g. image:...")
    p.add_argument("--vocab-size", type=int, required=True, help="the thinker's vocab_size")
    p.add_argument(
        "--sglang-version",
        metavar="V",
        help="sglang-omni release (default: the installed one, else the newest known)",
    )
    p.add_argument("--allow-newer", action="store_true", help="accept a newer sglang-omni release")
    p.add_argument("--json", action="store_true", help="one JSON object per line per key")
    return p


def omni_key_pad_main(argv: Sequence[str]) -> int:
    """``mmhash omni-key-pad``: print each key's pad; exit 2 on bad input."""
    from .omni import omni_key_pad

    args = _key_pad_parser().parse_args(list(argv))
    try:
        er = E.resolve(E.SGLANG_OMNI, args.sglang_version, allow_newer=args.allow_newer)
        pads = [
            omni_key_pad(k, vocab_size=args.vocab_size, sglang_version=er.version)
            for k in args.keys
        ]
    except MmhashError as e:
        print(f"mmhash omni-key-pad: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for i, (key, pad) in enumerate(zip(args.keys, pads, strict=True)):
        record = {
            "engine": E.SGLANG_OMNI,
            "sglang_version": er.version,
            "cache_key": key,
            "vocab_size": args.vocab_size,
            "pad_value": pad,
            "scheme": KEY_PAD_SCHEME,
        }
        if args.json:
            print(json.dumps(record))
            continue
        print(("\n" if i else "") + key)
        print(f"  Engine: sglang-omni {er.version}    Scheme: {KEY_PAD_SCHEME}")
        print(f"Pad value: {pad}")
    return EXIT_OK
