"""``--mmhash-impl exec:COMMAND``: golden items checked by an external program over protocol v1.

The external programs here are small Python scripts. A correct one rebuilds each feature from the
request's raw parts alone (dtype, shape, layout) and hashes it with this package: if the harness
sent wrong bytes, a wrong order or a wrong dtype, its values would not match the recorded ones
(``test_vectors`` does the same for every golden entry, release and path of the export).
Synthetic goldens are recorded by the fake SGLang of ``test_plugin`` (the engine's values).
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest
from fakes import FakeDriver
from test_plugin import make_golden

from pytest_mmhash import implementations
from pytest_mmhash.errors import ExecProtocolError
from pytest_mmhash.exec_process import ExecHasher

REBUILDER = r"""
import json, sys
import numpy as np, torch
from pytest_mmhash import UnhashableFeatureError, hash_feature

def part(p):
    with open(p["path"], "rb") as f:
        f.seek(p["offset"])
        raw = f.read(p["nbytes"])
    assert p["path"].startswith("/") and len(raw) == p["nbytes"]
    if p["dtype"][0] in "<>|=":
        return np.frombuffer(raw, dtype=np.dtype(p["dtype"])).reshape(p["shape"]).copy()
    flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
    return flat.view(getattr(torch, p["dtype"])).reshape(p["shape"])

def rebuild(layout, parts):
    return [rebuild(x, parts) if isinstance(x, list) else parts[x] for x in layout]

def feature(req):
    parts = [part(p) for p in req["parts"]]
    if req["kind"] == "bytes":
        return parts[0].numpy().tobytes()
    if req["kind"] in ("list", "tuple"):
        f = rebuild(req["layout"], parts)
        return f if req["kind"] == "list" else tuple(f)
    return parts[0]

MODE = sys.argv[1] if len(sys.argv) > 1 else "good"
for n, line in enumerate(sys.stdin):
    req = json.loads(line)
    try:
        m = hash_feature(feature(req), sglang_version=req["sglang_version"], device=req["device"])
        reply = {"id": req["id"], "hash": m.hash, "pad_values": list(m.pad_values)}
    except UnhashableFeatureError:
        reply = {"id": req["id"], "error": "TypeError: object supporting the buffer API required"}
    if MODE == "wrong" and "hash" in reply and req["kind"] != "tensor":
        reply["hash"] += 1
    if MODE == "wrongpads" and "hash" in reply:
        reply["pad_values"][-1] += 1
    print(json.dumps(reply), flush=True)
"""

FLAKY = r"""
import json, sys, time
for n, line in enumerate(sys.stdin):
    if n == 1 and sys.argv[1] == "die":
        sys.stderr.write("hasher: cannot parse this feature\n")
        sys.exit(3)
    if n == 1 and sys.argv[1] == "hang":
        time.sleep(3600)
    print(json.dumps({"id": json.loads(line)["id"], "error": "TypeError: first"}), flush=True)
"""

MALFORMED = r"""
import json, sys
replies = [
    lambda r: "this is not json",
    lambda r: json.dumps({"id": r["id"], "hash": 1.5, "pad_values": [1]}),
    lambda r: json.dumps({"id": "other", "hash": 1, "pad_values": [1]}),
    lambda r: json.dumps({"id": r["id"], "hash": 1}),
    lambda r: json.dumps({"id": r["id"], "error": "ValueError: nope", "hash": 1}),
    lambda r: json.dumps([r["id"]]),
    lambda r: json.dumps({"id": r["id"], "hash": 1, "pad_values": [1], "extra": 0}),
    lambda r: json.dumps({"id": r["id"], "error": "ValueError: not what SGLang raises"}),
]
for n, line in enumerate(sys.stdin):
    print(replies[n % len(replies)](json.loads(line)), flush=True)
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


@pytest.fixture
def recorded(pytester: pytest.Pytester, monkeypatch) -> Path:
    """A synthetic golden (4 entries, 8 items) with values recorded by the fake SGLang."""
    root = make_golden(pytester.path / "golden")
    monkeypatch.setattr(implementations, "_real_sglang_driver", lambda: FakeDriver())
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update").assert_outcomes(passed=8)
    pytester.makepyfile(hasher=REBUILDER, malformed=MALFORMED, flaky=FLAKY)
    return root


def exec_spec(script: str, *args: str) -> str:
    return "exec:" + shlex.join([sys.executable, script, *args])


def run_exec(pytester: pytest.Pytester, spec: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--mmhash-golden", "golden", "--mmhash-impl", spec, *args)


def test_a_conforming_program_passes_every_item(pytester, recorded):
    result = run_exec(pytester, exec_spec("hasher.py"), "-v")
    result.assert_outcomes(passed=8)  # incl. empty[cpu/cuda]: the program replies SGLang's error


def test_a_wrong_program_fails_naming_each_bad_item(pytester, recorded):
    result = run_exec(pytester, exec_spec("hasher.py", "wrong"))
    result.assert_outcomes(passed=6, failed=2)  # only n (an ndarray) gets a wrong hash
    result.stdout.fnmatch_lines_random(
        [
            "*golden entry 'n' [[]cpu path[]] vs sglang 0.5.23: the value differs*",
            "*golden entry 'n' [[]cuda path[]] vs sglang 0.5.23: the value differs*",
            "*impl:      exec:*hasher.py wrong",
            "*differs:   hash",
            "FAILED golden/manifest.json::n[[]cpu[]]*",
            "FAILED golden/manifest.json::n[[]cuda[]]*",
        ]
    )
    result = run_exec(pytester, exec_spec("hasher.py", "wrongpads"))
    result.assert_outcomes(passed=2, failed=6)
    result.stdout.fnmatch_lines(["*differs:   pad_values at index 3*"])


def test_malformed_and_wrong_replies_fail_their_items_with_the_reason(pytester, recorded):
    result = run_exec(pytester, exec_spec("malformed.py"), "-p", "no:randomly")
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines_random(
        [
            "*malformed reply (not JSON*'this is not json'*",
            "*malformed reply (needs an integer 'hash'*1.5*",
            "*reply is for id 'other', not for request '3'*",
            "*malformed reply (needs an integer 'hash'*",
            "*malformed reply (an error reply is*",
            "*malformed reply (not a JSON object)*",
            "*malformed reply (unknown fields [[]'extra'[]])*",
            "*actual:    error ValueError: not what SGLang raises",
        ]
    )


def test_a_program_that_dies_fails_the_rest_with_status_and_stderr(pytester, recorded):
    result = run_exec(pytester, exec_spec("flaky.py", "die"))
    result.assert_outcomes(failed=8)  # the first reply is an error where a value is recorded
    result.stdout.fnmatch_lines(
        [
            "*no reply to request '2': the program exited with status 3; "
            "stderr tail: 'hasher: cannot parse this feature'*"
        ]
    )
    assert result.stdout.str().count("the program exited with status 3") == 7
    out = result.stdout.str()
    # only the first item (a wrong error reply) is a changed value; a dead program is not
    assert out.count("scheme/implementation changed") == 1
    assert out.count("re-recording would not help") == 7
    assert out.count("the recorded values are not in question") == 7
    assert out.count("mmhash install-sglang") == 1  # no re-record command for a dead program


def test_a_program_that_hangs_fails_cleanly_within_the_timeout(pytester, recorded):
    start = time.monotonic()
    result = run_exec(pytester, exec_spec("flaky.py", "hang"), "--mmhash-exec-timeout", "5")
    elapsed = time.monotonic() - start
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(
        ["*no reply within 5 s to request '2' (--mmhash-exec-timeout); the program was stopped*"]
    )
    assert result.stdout.str().count("the program was stopped after it gave no reply") == 6
    assert elapsed < 60


def test_ini_timeout_and_bad_settings(pytester, recorded):
    pytester.makeini("[pytest]\nmmhash_exec_timeout = 1\n")
    start = time.monotonic()
    run_exec(pytester, exec_spec("flaky.py", "hang")).assert_outcomes(failed=8)
    assert time.monotonic() - start < 60
    for bad in ("0", "-1", "soon", "inf"):
        result = run_exec(pytester, exec_spec("hasher.py"), "--mmhash-exec-timeout", bad)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--mmhash-exec-timeout*"])
    result = run_exec(pytester, "exec:")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*exec: needs a command*"])


def test_a_program_that_cannot_start_fails_every_item(pytester, recorded):
    result = run_exec(pytester, "exec:./no-such-hasher --flag")
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(["*the program could not be started*no-such-hasher*"])


def test_xdist_starts_one_program_per_worker(pytester, recorded):
    pytester.makepyfile(
        counting="""
        import os, runpy, sys
        open(os.path.join("pids", str(os.getpid())), "w").close()
        sys.argv = ["flaky.py", "ok"]
        runpy.run_path("flaky.py", run_name="__main__")
        """
    )
    (pytester.path / "pids").mkdir()
    result = pytester.runpytest_subprocess(
        "--mmhash-golden", "golden", "--mmhash-impl", exec_spec("counting.py"), "-n", "2"
    )
    result.assert_outcomes(passed=2, failed=6)  # it replies TypeError: right for 'empty' only
    assert len(list((pytester.path / "pids").iterdir())) == 2


# ------------------------------------------------------------------ the client alone


def test_pad_only_requests_and_cleanup(tmp_path):
    echo = tmp_path / "echo.py"
    echo.write_text(
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    r = json.loads(line)\n"
        "    print(json.dumps({'id': r['id'], 'hash': int(r['mm_hash'], 16), "
        "'pad_values': [len(r), r['v']]}), flush=True)\n"
    )
    hasher = ExecHasher(shlex.join([sys.executable, str(echo)]), timeout=10)
    assert hasher.pads_of_mm_hash("00ff", "0.5.23") == {"hash": 255, "pad_values": [4, 1]}
    import torch

    with pytest.raises(ExecProtocolError, match="exited with status 1; stderr tail: .*KeyError"):
        hasher.hash_feature(torch.arange(3), "0.5.23", "cpu")  # no mm_hash: the echo dies
    parts = hasher._dir
    assert parts is not None and any((parts / "parts").iterdir())
    hasher.close()
    assert not parts.exists()
    with pytest.raises(ExecProtocolError, match="the session is over"):
        hasher.pads_of_mm_hash("1", "0.5.23")
