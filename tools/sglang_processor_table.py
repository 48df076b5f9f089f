"""Regenerate the list of SGLang's multimodal processor classes from the installed SGLang.

    $VENV/bin/python tools/sglang_processor_table.py            # rewrite both files
    $VENV/bin/python tools/sglang_processor_table.py --check    # exit 1 if either is stale

Imports every module of ``sglang.srt.multimodal.processors`` as SGLang's ``import_processors``
does (after the oracle harness's shims), records each ``BaseMultimodalProcessor`` subclass with a
``models`` list in ``pytest_mmhash/predict/processors.json``, and rewrites the README table between
``<!-- processor-table:start -->`` and ``<!-- processor-table:end -->`` with each class's status
from ``pytest_mmhash.predict.support.STATUS``. Modules that fail to import here are listed too
(SGLang itself skips them with a warning), so a new release's additions always show up.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_mmhash.predict import support  # noqa: E402

DATA = ROOT / "pytest_mmhash" / "predict" / "processors.json"
README = ROOT / "README.md"
START, END = support.TABLE_MARKERS
PACKAGE = "sglang.srt.multimodal.processors"


def scan() -> dict:
    """Every processor class the installed SGLang registers, and modules that fail to import."""
    from pytest_mmhash.oracle.shims import apply_shims

    apply_shims()
    logging.disable(logging.WARNING)
    import sglang
    from sglang.srt.multimodal.processors.base_processor import BaseMultimodalProcessor

    package = importlib.import_module(PACKAGE)
    processors, failed = [], []
    for info in sorted(pkgutil.iter_modules(package.__path__, PACKAGE + "."), key=lambda i: i.name):
        if info.ispkg:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception as e:  # SGLang's own loop skips such modules with a warning
            failed.append({"module": info.name, "error": f"{type(e).__name__}: {e}"[:160]})
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseMultimodalProcessor):
                continue
            archs = sorted({m.__name__ for m in getattr(cls, "models", [])})
            if archs:
                processors.append(
                    {"class": cls.__name__, "module": cls.__module__, "architectures": archs}
                )
    return {"sglang_version": sglang.__version__, "processors": processors, "import_failed": failed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    args = ap.parse_args()
    data = scan()
    new_json = json.dumps(data, indent=1, sort_keys=True) + "\n"
    readme = README.read_text(encoding="utf-8")
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    if not rest or END not in rest:
        print(f"README.md lacks the {START} ... {END} markers", file=sys.stderr)
        return 2
    new_readme = f"{head}{START}\n{support.table(data)}\n{END}{tail}"
    stale = [
        f
        for f, new in ((DATA, new_json), (README, new_readme))
        if not f.is_file() or f.read_text(encoding="utf-8") != new
    ]
    if args.check:
        for f in stale:
            print(f"{f.relative_to(ROOT)} is stale: run tools/sglang_processor_table.py")
        return 1 if stale else 0
    DATA.write_text(new_json, encoding="utf-8")
    README.write_text(new_readme, encoding="utf-8")
    print(
        f"{len(data['processors'])} processor classes, {len(data['import_failed'])} modules failed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
