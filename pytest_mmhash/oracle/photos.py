"""Real photographs that installed packages ship (scikit-image, matplotlib): test and benchmark media.

Never downloaded and never made by this project; whichever of the packages is installed provides
them. Each is ``(package distribution, path inside the package, file)``.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

#: (import name, distribution, folder inside the package, file names)
Sources = tuple[tuple[str, str, str, tuple[str, ...]], ...]
# RGB photographs, PNG and JPEG.
SOURCES: Sources = (
    (
        "skimage",
        "scikit-image",
        "data",
        ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"),
    ),
    ("matplotlib", "matplotlib", "mpl-data/sample_data", ("grace_hopper.jpg",)),
)

#: Photographs no test, golden entry or benchmark uses but tests/test_predict_oracle.py: a JPEG,
#: two RGB PNGs and a greyscale PNG, for predictions on media the project has never seen.
FRESH: Sources = (
    (
        "skimage",
        "scikit-image",
        "data",
        ("hubble_deep_field.jpg", "ihc.png", "motorcycle_right.png", "camera.png"),
    ),
)


def package_photos(sources: Sources = SOURCES) -> list[tuple[str, str, Path]]:
    """``(distribution, path inside the package, file)`` for every shipped photograph found."""
    found = []
    for pkg, dist, sub, names in sources:
        spec = find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        for n in names:
            if (root / sub / n).is_file():
                found.append((dist, f"{pkg}/{sub}/{n}", root / sub / n))
    return found
