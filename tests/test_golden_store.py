"""The golden store library: schema validation, canonical atomic writes, merging, diagnosis, impls."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import FakeDriver

from pytest_mmhash import MMHash, UnhashableFeatureError, hash_feature, implementations
from pytest_mmhash.equality import assert_mmhash_equal, feature_difference
from pytest_mmhash.errors import GoldenError
from pytest_mmhash.golden import model as GM
from pytest_mmhash.golden import store as GS
from pytest_mmhash.golden import validation as GV
from pytest_mmhash.implementations import (
    Impl,
    Observed,
    check_entry,
    format_check,
    matches,
    record_entry,
    recording_impl,
    resolve_impl,
)

PROJECT_GOLDEN = Path(__file__).resolve().parents[1] / "golden"
PROV = {
    "sglang": "0.5.23",
    "torch": "2.13.0",
    "triton": "3.9.0",
    "numpy": "2.4.6",
    "python": "3.11.7",
    "cuda_path": "triton-interpreter",
    "date": "2026-11-27",
}


def _value(x, release="0.5.23", device="cpu"):
    m = hash_feature(x, sglang_version=release, device=device)
    return {"hash": m.hash, "hex": m.hex, "pad_values": list(m.pad_values)}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A small golden dir: three features, values for 0.5.23 on both paths."""
    (tmp_path / "features").mkdir()
    torch.save(torch.arange(10, dtype=torch.float32), tmp_path / "features/a.pt")
    torch.save(torch.arange(7, dtype=torch.bfloat16), tmp_path / "features/b.pt")
    np.save(tmp_path / "features/n.npy", np.arange(12, dtype=np.uint8))
    entries = [
        GS.make_entry(tmp_path, i, f)
        for i, f in (("b", "features/b.pt"), ("a", "features/a.pt"), ("n", "features/n.npy"))
    ]
    m = GS.new_manifest(tmp_path, "0.5.23", entries)
    feats = {
        "a": torch.arange(10, dtype=torch.float32),
        "b": torch.arange(7, dtype=torch.bfloat16),
        "n": np.arange(12, dtype=np.uint8),
    }
    ups = [
        GM.Recorded(i, "0.5.23", d, _value(x, device=d))
        for i, x in feats.items()
        for d in GM.DEVICES
    ]
    GS.write_manifest(GS.record_values(m, ups, {"0.5.23": PROV}))
    return tmp_path


def _data(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text())


def _problems(data: dict, root: Path) -> str:
    with pytest.raises(GoldenError) as ei:
        GV.validate(data, root, "m.json")
    return str(ei.value)


# ------------------------------------------------------------------ loading and validation


def test_project_manifest_validates():
    m = GS.load_manifest(PROJECT_GOLDEN)
    assert len(m.entries) * len(GM.DEVICES) >= 48
    assert not GS.missing_files(m) and not GS.unlisted_files(m)
    assert all(GS.content_sha256(m.root / e.file) == e.sha256 for e in m.entries)


def test_load_round_trip(store: Path):
    m = GS.load_manifest(store)
    assert m.ids == ("a", "b", "n") and m.pin == "0.5.23" and m.releases() == ("0.5.23",)
    assert m["b"].value("0.5.23", "cpu") == _value(torch.arange(7, dtype=torch.bfloat16))
    assert m["a"].value("0.5.9", "cpu") is None
    assert torch.equal(m.load("a"), torch.arange(10, dtype=torch.float32))
    with pytest.raises(KeyError, match="no golden entry 'zz'"):
        m["zz"]


def _break(path: list, value, delete: bool = False):
    def apply(d: dict) -> dict:
        d = copy.deepcopy(d)
        node = d
        for k in path[:-1]:
            node = node[k]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return d

    return apply


SCHEMA_CASES = [
    (
        _break(["entries", 1, "sha256"], "xyz"),
        "entries[1] (id 'b') field 'sha256': must be 64 lowercase hex digits",
    ),
    (
        _break(["entries", 0, "kind"], None, delete=True),
        "entries[0] (id 'a') field 'kind': missing",
    ),
    (_break(["entries", 0, "colour"], "red"), "entries[0] (id 'a') field 'colour': unknown field"),
    (_break(["entries", 2, "id"], "a"), "entries[2] (id 'a') field 'id': duplicate of entries[0]"),
    (
        _break(["entries", 0, "file"], "../outside.pt"),
        "entries[0] (id 'a') field 'file': must be a normalised relative path",
    ),
    (
        _break(["entries", 0, "file"], "/abs/a.pt"),
        "field 'file': must be a normalised relative path",
    ),
    (
        _break(["entries", 0, "values", "0.5.23", "cpu", "hex"], "0000000000000000"),
        "entries[0] (id 'a') field 'values'['0.5.23']['cpu']: 'hex' 0000000000000000 does not match 'hash'",
    ),
    (_break(["entries", 0, "values", "0.5.23", "cpu", "hash"], True), "'hash' must be an integer"),
    (
        _break(["entries", 0, "values", "0.5.23", "gpu"], {"error": "TypeError: x"}),
        "['0.5.23']['gpu']: path must be 'cpu' or 'cuda'",
    ),
    (
        _break(["entries", 0, "values", "0.5.23", "cpu"], {"error": "no type here"}),
        "'error' must read 'ExceptionType: message'",
    ),
    (
        _break(["entries", 0, "values", "0.5.99"], {}),
        "['0.5.99']: key must be a known sglang release",
    ),
    (
        _break(["entries", 0, "values", "0.5.9"], {"cpu": {"error": "TypeError: x"}}),
        "release '0.5.9' has values but no provenance['0.5.9']",
    ),
    (
        _break(["provenance", "0.5.23", "cuda_path"], "gpu"),
        "provenance['0.5.23'] field 'cuda_path': must be one of",
    ),
    (
        _break(["provenance", "0.5.23", "sglang"], "0.5.22"),
        "provenance['0.5.23'] field 'sglang': '0.5.22' is not release 0.5.23",
    ),
    (
        _break(["format_version"], 2),
        "field 'format_version': this pytest-mmhash reads version 1, got 2; upgrade pytest-mmhash",
    ),
    (_break(["format"], "other"), "field 'format': must be 'pytest-mmhash-golden'"),
    (_break(["pin"], "v0.5.23"), "field 'pin': must be a known sglang release"),
    (_break(["entries"], {}), "field 'entries': must be a list"),
]


@pytest.mark.parametrize(
    "mutate,message", SCHEMA_CASES, ids=[m.split(":")[0][:40] for _, m in SCHEMA_CASES]
)
def test_schema_messages_locate_the_problem(store: Path, mutate, message):
    assert message in _problems(mutate(_data(store)), store)


def test_every_problem_is_reported_at_once(store: Path):
    d = _data(store)
    d["entries"][0]["sha256"] = "bad"
    d["entries"][2]["key"] = ""
    msg = _problems(d, store)
    assert (
        "2 problems" in msg
        and "entries[0] (id 'a')" in msg
        and "entries[2] (id 'n') field 'key'" in msg
    )


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"a": 1,', "not valid JSON"),
        ('{"format": 1, "format": 2}', "duplicate JSON key 'format'"),
        ('{"x": NaN}', "NaN is not valid"),
        ("[]", "the top level must be an object"),
        ("[" * 100_000, "not a usable JSON manifest"),
        ('{"x": ' + "9" * 5000 + "}", "not a usable JSON manifest"),
    ],
)
def test_unparseable_manifests(tmp_path: Path, text: str, message: str):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(GoldenError, match=message):
        GS.load_manifest(tmp_path)


def test_non_utf8_manifest(tmp_path: Path):
    (tmp_path / "manifest.json").write_bytes(b"\x80{}")
    with pytest.raises(GoldenError, match="not UTF-8"):
        GS.load_manifest(tmp_path)


def test_missing_manifest(tmp_path: Path):
    with pytest.raises(GoldenError, match="no golden manifest here"):
        GS.load_manifest(tmp_path)


def test_symlink_escaping_the_golden_dir_is_refused(store: Path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "x.pt"
    torch.save(torch.ones(2), outside)
    (store / "features/a.pt").unlink()
    (store / "features/a.pt").symlink_to(outside)
    m = GS.load_manifest(store)
    with pytest.raises(GoldenError, match="resolves outside"):
        m.load("a")


# ------------------------------------------------------------------ writing and merging


def test_write_is_canonical_and_keeps_the_mode(store: Path):
    path = store / "manifest.json"
    os.chmod(path, 0o640)
    data = _data(store)
    data["entries"].reverse()
    path.write_text(json.dumps(data))  # not canonical, unsorted entries
    GS.write_manifest(GS.load_manifest(store))
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert [e["id"] for e in json.loads(text)["entries"]] == ["a", "b", "n"]
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert not [p for p in store.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_leaves_old_file_and_no_temp(store: Path, monkeypatch):
    path = store / "manifest.json"
    before = path.read_bytes()

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        GS.write_manifest(GS.load_manifest(store))
    assert path.read_bytes() == before
    assert not [p for p in store.iterdir() if p.name.endswith(".tmp")]


def test_record_values_merges(store: Path):
    m = GS.load_manifest(store)
    ups = [
        GM.Recorded(
            "a", "0.5.9", "cpu", {"hash": 1, "hex": "0000000000000001", "pad_values": [1000001]}
        ),
        GM.Recorded(
            "a", "0.5.9", "cpu", {"hash": 2, "hex": "0000000000000002", "pad_values": [1000002]}
        ),
        GM.Recorded("b", "0.5.23", "cpu", {"error": "TypeError: boom"}),
    ]
    new = GS.record_values(m, ups, {"0.5.9": {**PROV, "sglang": "0.5.9"}}, pin="0.5.9")
    assert new.pin == "0.5.9" and new.releases() == ("0.5.9", "0.5.23")
    assert new["a"].value("0.5.9", "cpu")["hash"] == 2  # later wins
    assert new["a"].value("0.5.23", "cpu") == m["a"].value("0.5.23", "cpu")  # others kept
    assert new["b"].value("0.5.23", "cpu") == {"error": "TypeError: boom"}
    assert GM.changed_count(m, new) == 2
    assert m["b"].value("0.5.23", "cpu") != {"error": "TypeError: boom"}  # the input is not mutated


@pytest.mark.parametrize(
    "update,message",
    [
        (GM.Recorded("zz", "0.5.23", "cpu", {"error": "TypeError: x"}), "unknown entry 'zz'"),
        (GM.Recorded("a", "0.5.23", "cpu", {"hash": 1}), "keys must be hash, hex, pad_values"),
        (GM.Recorded("a", "0.5.9", "cpu", {"error": "TypeError: x"}), "no provenance"),
    ],
)
def test_record_values_refuses_bad_updates(store: Path, update, message):
    with pytest.raises(GoldenError, match=message):
        GS.record_values(GS.load_manifest(store), [update])


# ------------------------------------------------------------------ files and diagnosis


def test_content_sha256(tmp_path: Path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * (3 << 20))
    assert GS.content_sha256(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_unlisted_and_missing_files(store: Path):
    (store / "features/extra.pt").write_bytes(b"1")
    (store / "README.md").write_text("docs")
    (store / ".manifest.json.123.tmp").write_text("{}")
    (store / "features/n.npy").unlink()
    m = GS.load_manifest(store)
    assert GS.unlisted_files(m) == ["README.md", "features/extra.pt"]  # docs live elsewhere
    assert [e.id for e in GS.missing_files(m)] == ["n"]


def test_diagnose(store: Path):
    m = GS.load_manifest(store)
    assert not GS.diagnose(m, m["a"]).bytes_changed
    assert "hash scheme/implementation changed" in GS.diagnose(m, m["a"]).detail
    data = bytearray((store / "features/a.pt").read_bytes())
    data[-30] ^= 1
    (store / "features/a.pt").write_bytes(bytes(data))
    d = GS.diagnose(m, m["a"])
    assert d.bytes_changed and d.summary == "the feature bytes changed"
    (store / "features/a.pt").unlink()
    assert GS.diagnose(m, m["a"]).summary == "the feature file is missing"


# ------------------------------------------------------------------ implementations and checks


def test_engine_checks_pass_and_errors_match(store: Path):
    m = GS.load_manifest(store)
    engine = resolve_impl("engine")
    assert all(check_entry(m, e, "0.5.23", d, engine).problem is None for e, d in GM.iter_items(m))
    assert matches(
        {"error": "TypeError: x"}, Observed({"error": "UnhashableFeatureError: y"}, any_error=True)
    )
    assert not matches({"error": "TypeError: x"}, Observed({"error": "IndexError: y"}))
    assert matches({"error": "TypeError: x"}, Observed({"error": "TypeError: other text"}))


def test_check_reports_a_changed_value(store: Path):
    m = GS.load_manifest(store)
    fake = Impl(
        "fake",
        "callable",
        lambda f, r, d: Observed({"hash": 5, "hex": "0000000000000005", "pad_values": [1]}),
    )
    c = check_entry(m, m["a"], "0.5.23", "cpu", fake)
    assert c.problem == "the value differs from the recorded one"
    text = format_check(c, "CMD")
    assert (
        "differs:   hash; pad_values length 4 vs 1" in text
        and "hash scheme/implementation changed" in text
    )
    assert text.rstrip().endswith("CMD")


def sample_callable_int(feature, *, sglang_version, device):
    return hash_feature(feature, sglang_version=sglang_version, device=device).hash


def sample_callable_mmhash(feature, *, sglang_version, device):
    return hash_feature(feature, sglang_version=sglang_version, device=device)


def sample_callable_dict(feature, *, sglang_version, device):
    m = hash_feature(feature, sglang_version=sglang_version, device=device)
    return {"hash": m.hash, "pad_values": list(m.pad_values)}


def sample_callable_raises(feature, *, sglang_version, device):
    raise UnhashableFeatureError("sglang raises TypeError here")


def sample_callable_bad(feature, *, sglang_version, device):
    return "nope"


@pytest.mark.parametrize(
    "name", ["sample_callable_int", "sample_callable_mmhash", "sample_callable_dict"]
)
def test_callable_impl_contract(store: Path, name: str):
    m = GS.load_manifest(store)
    impl = resolve_impl(f"{__name__}:{name}")
    assert impl.kind == "callable"
    assert all(check_entry(m, e, "0.5.23", d, impl).problem is None for e, d in GM.iter_items(m))


def test_callable_impl_errors(store: Path):
    m = GS.load_manifest(store)
    with pytest.raises(GoldenError, match="the contract is an int hash"):
        resolve_impl(f"{__name__}:sample_callable_bad")(m.load("a"), "0.5.23", "cpu")
    with pytest.raises(GoldenError, match="cannot import module"):
        resolve_impl("no_such_module_xyz:f")
    with pytest.raises(GoldenError, match="has no attribute"):
        resolve_impl(f"{__name__}:missing")
    with pytest.raises(
        GoldenError, match="expected engine, sglang, exec:COMMAND or MODULE:CALLABLE"
    ):
        resolve_impl("rust")
    obs = resolve_impl(f"{__name__}:sample_callable_raises")(m.load("a"), "0.5.23", "cpu")
    assert obs.is_error and obs.any_error
    assert matches({"error": "TypeError: x"}, obs)


def test_real_sglang_refused_when_not_importable():
    import importlib.util

    if importlib.util.find_spec("sglang") is not None:
        pytest.skip("sglang is installed here")
    with pytest.raises(GoldenError, match="real SGLang is not importable"):
        recording_impl(None, "0.5.23", False)


@pytest.mark.parametrize(
    "installed,target,pin,repin,ok",
    [
        ("0.5.23", None, "0.5.23", False, "0.5.23"),
        ("0.5.22", None, "0.5.23", False, "differs from the manifest pin 0.5.23"),
        ("0.5.22", None, "0.5.23", True, "0.5.22"),
        ("0.5.22", "0.5.22", "0.5.23", False, "0.5.22"),
        ("0.5.22", "0.5.9", "0.5.23", False, "records from the installed sglang 0.5.22"),
    ],
)
def test_recording_impl_rules(monkeypatch, installed, target, pin, repin, ok):
    monkeypatch.setattr(implementations, "_real_sglang_driver", lambda: FakeDriver(installed))
    if ok[0].isdigit():
        impl, release = recording_impl(target, pin, repin)
        assert release == ok and impl.kind == "sglang"
    else:
        with pytest.raises(GoldenError, match=ok):
            recording_impl(target, pin, repin)


def test_record_entry_refuses_changed_bytes(store: Path, monkeypatch):
    monkeypatch.setattr(implementations, "_real_sglang_driver", lambda: FakeDriver())
    m = GS.load_manifest(store)
    impl, release = recording_impl(None, m.pin, False)
    assert record_entry(m, m["b"], release, "cuda", impl).value == m["b"].value(release, "cuda")
    (store / "features/b.pt").write_bytes((store / "features/b.pt").read_bytes() + b"\0")
    with pytest.raises(GoldenError, match="feature bytes changed"):
        record_entry(m, m["b"], release, "cpu", impl)


# ------------------------------------------------------------------ mmhash_equal helpers


def test_feature_difference():
    a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    b = a.clone()
    b[1, 2] = -1
    assert feature_difference(a, a.clone()) is None
    assert "index (1, 2)" in feature_difference(a, b)
    assert "dtype float32 shape (2, 3) vs dtype bfloat16 shape (2, 3)" in feature_difference(
        a, a.bfloat16()
    )
    assert "list of 2 vs list of 1" in feature_difference([a, a], [a])
    assert "feature[1]" in feature_difference([a, a], [a, b])
    assert feature_difference(b"ab", b"ab") is None


def test_assert_mmhash_equal_forms():
    x = torch.arange(10, dtype=torch.float32)
    m = hash_feature(x, sglang_version="0.5.23")
    assert assert_mmhash_equal(x, x.clone(), sglang_version="0.5.23") == m
    assert_mmhash_equal(x, m)
    assert_mmhash_equal(x, m.hash, sglang_version="0.5.23")
    assert_mmhash_equal(x, "0x" + m.hex.upper(), sglang_version="0.5.23")
    with pytest.raises(AssertionError, match="hash 1") as ei:
        assert_mmhash_equal(x, 1, sglang_version="0.5.23")
    assert str(m.hash) in str(ei.value) and str(m.pad_values[0]) in str(ei.value)
    with pytest.raises(ValueError, match="not a 64-bit hex"):
        assert_mmhash_equal(x, "xyz")
    assert isinstance(m, MMHash)


# ------------------------------------------------------------------ entries and the one writer


def test_add_and_remove_entry(store: Path):
    m = GS.load_manifest(store)
    torch.save(torch.ones(3), store / "features/c.pt")
    added = GS.add_entry(m, GS.make_entry(store, "c", "features/c.pt", kind="edge-case"))
    assert added.ids == ("a", "b", "c", "n") and added["c"].values == {}
    assert added["a"].values == m["a"].values  # the others keep their recorded values
    with pytest.raises(GoldenError, match="duplicate of entries"):
        GS.add_entry(added, GS.make_entry(store, "c", "features/a.pt"))
    with pytest.raises(GoldenError, match="same file and key"):
        GS.add_entry(added, GS.make_entry(store, "d", "features/c.pt"))
    removed = GS.remove_entry(added, "a")
    assert removed.ids == ("b", "c", "n")
    with pytest.raises(GoldenError, match="no entry 'zz' to remove"):
        GS.remove_entry(removed, "zz")
    assert GS.load_manifest(store) == m  # nothing written: they return new manifests


def test_replace_entries_keeps_values_only_for_unchanged_bytes(store: Path):
    m = GS.load_manifest(store)
    torch.save(torch.arange(10, dtype=torch.float64), store / "features/a.pt")
    fresh = [GS.make_entry(store, e.id, e.file, e.key, e.kind, e.description) for e in m.entries]
    new, dropped = GS.replace_entries(m, fresh)
    assert dropped == ["a"]
    assert new["a"].values == {} and new["a"].sha256 != m["a"].sha256
    assert new["b"].values == m["b"].values and new["n"].values == m["n"].values
    assert (new.pin, new.provenance) == (m.pin, m.provenance)
    shrunk, dropped = GS.replace_entries(m, fresh[1:])
    assert shrunk.ids == ("b", "n") and dropped == []


def test_write_atomic_keeps_the_mode_and_leaves_no_temp_file(tmp_path: Path):
    target = tmp_path / "x.json"
    target.write_text("old")
    target.chmod(0o640)
    GS.write_atomic(target, "new ✓\n")
    assert target.read_text(encoding="utf-8") == "new ✓\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_the_committed_manifest_is_what_the_one_writer_writes():
    path = PROJECT_GOLDEN / "manifest.json"
    assert GS.dumps(GS.load_manifest(PROJECT_GOLDEN)) == path.read_text(encoding="utf-8")


def test_only_the_model_spells_the_manifest_format():
    """One writer of the format: no other file of the package, tools or benchmarks builds the
    manifest's top-level object (its format id, or a ``"format_version": ...`` key)."""
    repo = PROJECT_GOLDEN.parent
    spellers = sorted(
        p.relative_to(repo).as_posix()
        for folder in ("pytest_mmhash", "tools", "benchmarks")
        for p in (repo / folder).rglob("*.py")
        if any(
            s in p.read_text(encoding="utf-8")
            for s in ('"pytest-mmhash-golden"', '"format_version":')
        )
    )
    # request_entries.py writes its own format (pytest-mmhash-requests), never the manifest's
    assert spellers == ["pytest_mmhash/golden/model.py", "pytest_mmhash/golden/request_entries.py"]
