"""``requests.json`` (request-level golden entries): validation, canonical atomic writes, plugin glue.

The values themselves are checked against real SGLang by ``pytest --mmhash-golden golden/`` in a
venv with SGLang's processor path (``.ci/run``); here only what needs no SGLang.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from pytest_mmhash.errors import GoldenError
from pytest_mmhash.golden.request_entries import dumps, load, requests_path, validate, with_values
from pytest_mmhash.golden.store import load_manifest, unlisted_files, write_requests

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    """A copy of the repo's requests.json with its media and model dirs."""
    data = json.loads(requests_path(GOLDEN).read_text())
    for name in data["media"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(GOLDEN / name, tmp_path / name)
    for model in {e["model"] for e in data["entries"]}:
        shutil.copytree(GOLDEN / model, tmp_path / model)
    shutil.copy(requests_path(GOLDEN), tmp_path / "requests.json")
    return tmp_path


def test_repo_file_is_valid_and_canonical() -> None:
    g = load(requests_path(GOLDEN))
    assert g.entries and g.pin == "0.5.23"
    assert dumps(g) == requests_path(GOLDEN).read_text()
    assert all(g.pin in e.values for e in g.entries), "every entry has values for the pin"


def test_every_media_file_names_the_package_it_comes_from() -> None:
    g = load(requests_path(GOLDEN))
    for name, src in g.media.items():
        assert src["package"] in ("scikit-image", "matplotlib", "pyannote-audio", "pygame"), name
        assert src["path"] and src["version"], name


def _bad(golden: Path, mutate) -> str:
    data = json.loads((golden / "requests.json").read_text())
    mutate(data)
    with pytest.raises(GoldenError) as e:
        validate(data, golden / "requests.json")
    assert "\n" not in str(e.value)
    return str(e.value)


def test_validation_names_each_problem(golden: Path) -> None:
    def two_problems(d: dict) -> None:
        d["entries"][0]["values"]["0.5.23"][0]["hex"] = "0"
        d["entries"][0]["deployment"]["colour"] = "red"

    msg = _bad(golden, two_problems)
    assert "2 problem(s)" in msg and "hex" in msg and "colour" in msg


def test_changed_media_file_is_refused(golden: Path) -> None:
    name = next(iter(json.loads((golden / "requests.json").read_text())["media"]))
    (golden / name).write_bytes((golden / name).read_bytes() + b"x")
    with pytest.raises(GoldenError, match="differs from its recorded sha256"):
        load(golden / "requests.json")


def test_missing_model_file_and_duplicate_id_are_refused(golden: Path) -> None:
    def dup(d: dict) -> None:
        d["entries"].append(copy.deepcopy(d["entries"][0]))
        d["entries"][1]["model"] = "models/nowhere"

    msg = _bad(golden, dup)
    assert "duplicate id" in msg and "has no config.json" in msg


def test_with_values_keeps_other_releases_and_writes_canonically(golden: Path) -> None:
    g = load(golden / "requests.json")
    e = g.entries[0]
    new = with_values(g, {e.id: e.values["0.5.23"]}, "0.5.99", {"sglang": "0.5.99"})
    write_requests(new)
    again = load(golden / "requests.json")
    assert again[e.id].values["0.5.99"] == again[e.id].values["0.5.23"]
    assert again.provenance["0.5.99"] == {"sglang": "0.5.99"}
    assert [x.id for x in again.entries] == [x.id for x in g.entries]


# ------------------------------------------------------------------ plugin glue (no SGLang here)


def _golden_for_pytester(pytester: pytest.Pytester) -> Path:
    root = pytester.path / "golden"
    shutil.copytree(GOLDEN, root)
    return root


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("sglang") is not None,
    reason="checks the behaviour without sglang",
)
def test_request_items_are_collected_and_skip_without_sglang(pytester: pytest.Pytester) -> None:
    _golden_for_pytester(pytester)
    n = len(load(requests_path(GOLDEN)).entries)
    res = pytester.runpytest(
        "-p", "no:cacheprovider", "--mmhash-golden", "golden", "golden/requests.json", "-rs"
    )
    res.assert_outcomes(skipped=n)
    res.stdout.fnmatch_lines(["*needs the real sglang's processor path*"])


def test_media_files_are_not_unlisted_features(pytester: pytest.Pytester) -> None:
    _golden_for_pytester(pytester)
    res = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--mmhash-golden",
        "golden",
        "golden/manifest.json",
        "--collect-only",
        "-q",
    )
    assert "unlisted[" not in res.stdout.str()
    assert "request[" not in res.stdout.str()  # only the feature manifest was asked for


def test_a_broken_requests_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    root = _golden_for_pytester(pytester)
    (root / "requests.json").write_text("{}")
    res = pytester.runpytest("-p", "no:cacheprovider", "--mmhash-golden", "golden")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*requests.json*"])


def test_compare_names_what_differs() -> None:
    from pytest_mmhash.request_checks import compare

    item = load(requests_path(GOLDEN)).entries[0].values["0.5.23"][0]
    assert compare([item], [dict(item)]) == []
    other = {**item, "hash": item["hash"] ^ 1, "pad_values": [1, 2, 3, 4]}
    lines = compare([item], [other])
    assert [line.split(":")[0] for line in lines] == ["item 0 hash", "item 0 pad_values"]
    changed = {**item, "feature": {**item["feature"], "sha256": "0" * 64}}
    assert "processor's output changed" in compare([item], [changed])[0]
    assert compare([item], [{**item, "feature": None}]) == []  # identity: no feature computed
    assert compare([item], []) == ["0 item(s), recorded 1"]


def test_request_files_are_listed_and_strays_still_reported(tmp_path: Path) -> None:
    root = tmp_path / "golden"
    shutil.copytree(GOLDEN, root)
    assert unlisted_files(load_manifest(root)) == []
    (root / "media" / "stray.png").write_bytes(b"x")
    (root / "models" / "nobody").mkdir()
    (root / "models" / "nobody" / "config.json").write_text("{}")
    assert unlisted_files(load_manifest(root)) == ["media/stray.png", "models/nobody/config.json"]
