"""Real audio recordings that installable packages ship: test and golden media for audio items.

Never downloaded and never made by this project. The packages are installed without their
dependencies and never imported (``tools/install-sglang-processor.sh``): each file is found
through its distribution's metadata. Each is ``(distribution, path inside site-packages, file)``.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

#: (distribution, paths inside site-packages)
Sources = tuple[tuple[str, tuple[str, ...]], ...]
SOURCES: Sources = (
    # speech, 16 kHz mono 16-bit PCM, 30 s: SGLang's load_audio does not resample it
    ("pyannote-audio", ("pyannote/audio/sample/sample.wav",)),
    # a sound effect, 11025 Hz mono 8-bit PCM: load_audio resamples it to 16 kHz
    ("pygame", ("pygame/examples/data/whiff.wav",)),
)
#: Recordings no golden entry uses, for tests/test_audio_oracle.py: Ogg Vorbis and MP3 (11025 Hz).
FRESH: Sources = (
    ("pygame", ("pygame/examples/data/house_lo.ogg", "pygame/examples/data/house_lo.mp3")),
)


def package_recordings(sources: Sources = SOURCES) -> list[tuple[str, str, Path]]:
    """``(distribution, path inside site-packages, file)`` for every shipped recording found."""
    found = []
    for dist, paths in sources:
        try:
            d = metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            continue
        for rel in paths:
            path = Path(str(d.locate_file(rel)))
            if path.is_file():
                found.append((dist, rel, path))
    return found
