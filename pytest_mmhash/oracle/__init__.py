"""Oracle harness: drives real SGLang releases to produce golden values; never used by the engine.

Run it only inside a venv built by ``tools/install-sglang.sh`` (see ``requirements/README.md``).
Nothing here imports the rest of ``pytest_mmhash``.
"""
