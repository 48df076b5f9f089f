"""Oracle harness: drives real SGLang releases to produce golden values; never used by the engine.

Run it only inside a venv built by ``mmhash install-sglang`` (see ``requirements/README.md``).
Importing it changes nothing; :func:`.driver.start` prepares a process for real SGLang, and the
``sglang`` golden implementation calls it in a child process (:mod:`.worker`), never in the
user's.
"""
