"""``mmhash golden init|add|refresh|remove|list``: a golden store without writing a manifest by
hand; every refusal is one line and leaves the store as it was.

Values here are recorded by the engine-backed fake SGLang of ``fakes.py`` (the plugin's own
recording path); the project's real ``golden/`` is never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import FakeDriver

from pytest_mmhash import NEWEST, implementations
from pytest_mmhash import lifecycle as L
from pytest_mmhash.cli import main
from pytest_mmhash.errors import GoldenError
from pytest_mmhash.golden import store as G


@pytest.fixture
def feats(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    d.mkdir()
    torch.save(torch.arange(10, dtype=torch.float32), d / "clip.pt")
    np.save(d / "audio.npy", np.arange(12, dtype=np.uint8))
    np.savez(d / "both.npz", pixel_values=np.ones(3), grid=np.ones(2))
    (d / "broken.pt").write_bytes(b"not a torch file")
    return d


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["golden", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_pins_the_newest_release_without_sglang(tmp_path, capsys):
    code, out, _ = run(capsys, "init", str(tmp_path / "g"))
    assert code == 0 and f"pin: sglang {NEWEST}" in out
    m = G.load_manifest(tmp_path / "g")
    assert (m.pin, m.entries) == (NEWEST, ())
    code, _, err = run(capsys, "init", str(tmp_path / "g"), "--pin", "0.5.9")
    assert code == 2 and "a golden manifest is already there" in err
    assert run(capsys, "init", str(tmp_path / "h"), "--pin", "0.5.9")[0] == 0
    assert G.load_manifest(tmp_path / "h").pin == "0.5.9"


def test_add_copies_records_sha256_and_says_how_to_record(tmp_path, feats, capsys):
    g = tmp_path / "g"
    run(capsys, "init", str(g))
    code, out, _ = run(capsys, "add", str(g), str(feats / "clip.pt"), str(feats / "audio.npy"))
    assert code == 0, out
    m = G.load_manifest(g)
    assert m.ids == ("audio", "clip")
    assert m["clip"].file == "features/clip.pt"
    assert m["clip"].sha256 == G.content_sha256(feats / "clip.pt")
    assert (g / "features/clip.pt").read_bytes() == (feats / "clip.pt").read_bytes()
    assert "added clip: features/clip.pt (copied from" in out
    assert f"mmhash install-sglang {NEWEST}" in out and "--mmhash-update" in out
    # a file already inside the store is not copied; --key picks a container entry
    (g / "extra").mkdir()
    np.savez(g / "extra/c.npz", pixel_values=np.ones(3), grid=np.ones(2))
    code, out, _ = run(capsys, "add", str(g), str(g / "extra/c.npz"), "--key", "grid")
    assert code == 0 and "added c.grid: extra/c.npz," in out and "copied" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["{f}/clip.pt"], "an entry with id 'clip' already exists"),
        (["{f}/clip.pt", "--id", "other"], "already in the store as features/clip.pt"),
        (["{f}/broken.pt"], "broken.pt: not a readable torch file"),
        (["{f}/both.npz"], "holds 2 features (pixel_values, grid); pass key= to pick one"),
        (
            ["{f}/both.npz", "--key", "nope"],
            "no entry named 'nope' (available keys: pixel_values, grid)",
        ),
        (["{f}/missing.pt"], "missing.pt: no such file"),
        (["{f}/audio.npy", "--id=-bad"], "entry id '-bad' must be letters, digits"),
        (["{f}/audio.npy", "{f}/clip.pt", "--id", "x"], "--id x names one entry, but 2 files"),
    ],
)
def test_add_refuses_with_one_line_and_changes_nothing(tmp_path, feats, capsys, args, message):
    g = tmp_path / "g"
    run(capsys, "init", str(g))
    run(capsys, "add", str(g), str(feats / "clip.pt"))
    before = (g / "manifest.json").read_bytes()
    files_before = sorted(p.name for p in g.rglob("*"))
    code, _, err = run(capsys, "add", str(g), *[a.format(f=feats) for a in args])
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert (g / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in g.rglob("*")) == files_before


def test_add_refuses_a_different_file_of_the_same_name(tmp_path, feats, capsys):
    g = tmp_path / "g"
    run(capsys, "init", str(g))
    run(capsys, "add", str(g), str(feats / "clip.pt"))
    other = tmp_path / "other"
    other.mkdir()
    torch.save(torch.ones(3), other / "clip.pt")
    code, _, err = run(capsys, "add", str(g), str(other / "clip.pt"), "--id", "clip2")
    assert code == 2 and "features/clip.pt already exists with other bytes" in err


def _record(g: Path, monkeypatch) -> None:
    """Record 0.5.23 values the way a user does (pytest --mmhash-update), with the fake SGLang."""
    monkeypatch.delenv("CI", raising=False)  # --mmhash-update refuses to run on CI
    monkeypatch.setattr(implementations, "_real_sglang_driver", lambda: FakeDriver("0.5.23"))
    assert (
        pytest.main(
            [
                "-q",
                "-p",
                "no:cacheprovider",
                "--mmhash-golden",
                str(g),
                "--mmhash-update",
                str(g / "manifest.json"),
            ]
        )
        == 0
    )


def test_refresh_drops_the_values_of_changed_bytes_only(tmp_path, feats, capsys, monkeypatch):
    g = tmp_path / "g"
    run(capsys, "init", str(g), "--pin", "0.5.23")
    run(capsys, "add", str(g), str(feats / "clip.pt"), str(feats / "audio.npy"))
    _record(g, monkeypatch)
    capsys.readouterr()
    assert G.load_manifest(g)["clip"].value("0.5.23", "cpu") is not None
    torch.save(torch.arange(11, dtype=torch.float32), g / "features/clip.pt")
    assert L.listing(g)[1]["bytes"] == "changed"
    code, out, _ = run(capsys, "refresh", str(g))
    assert code == 0
    assert "refreshed clip: features/clip.pt sha256" in out
    assert "dropped values: 0.5.23 cpu, 0.5.23 cuda" in out
    m = G.load_manifest(g)
    assert m["clip"].values == {} and m["clip"].sha256 == G.content_sha256(g / "features/clip.pt")
    assert m["audio"].value("0.5.23", "cpu") is not None  # untouched
    code, out, _ = run(capsys, "refresh", str(g), "audio")
    assert code == 0 and "nothing to refresh" in out
    code, _, err = run(capsys, "refresh", str(g), "nope")
    assert code == 2 and "no entry 'nope' (entries: audio, clip)" in err


def test_remove_deletes_the_entry_and_its_file(tmp_path, feats, capsys):
    g = tmp_path / "g"
    run(capsys, "init", str(g))
    run(capsys, "add", str(g), str(feats / "clip.pt"), str(feats / "audio.npy"))
    code, out, _ = run(capsys, "remove", str(g), "clip")
    assert code == 0 and "removed clip; deleted features/clip.pt" in out
    assert G.load_manifest(g).ids == ("audio",) and not (g / "features/clip.pt").exists()
    assert G.unlisted_files(G.load_manifest(g)) == []
    code, _, _ = run(capsys, "remove", str(g), "audio", "--keep-files")
    assert code == 0 and (g / "features/audio.npy").exists()


def test_list_shows_files_state_and_recorded_releases(tmp_path, feats, capsys, monkeypatch):
    g = tmp_path / "g"
    run(capsys, "init", str(g), "--pin", "0.5.23")
    run(capsys, "add", str(g), str(feats / "clip.pt"))
    code, out, _ = run(capsys, "list", str(g))
    assert code == 0 and "clip" in out and "recorded: nothing yet" in out
    _record(g, monkeypatch)
    capsys.readouterr()
    code, out, _ = run(capsys, "list", str(g), "--json")
    assert json.loads(out) == {
        "id": "clip",
        "file": "features/clip.pt",
        "key": None,
        "bytes": "ok",
        "recorded": {"0.5.23": ["cpu", "cuda"]},
    }


def test_changed_file_failure_names_refresh_then_record(pytester, monkeypatch):
    """The failure of a changed feature file names the exact refresh command, then the re-record
    command for both paths of the entry, which the refresh leaves without values."""
    g = pytester.path / "golden"
    L.init(g, "0.5.23")
    torch.save(torch.arange(10, dtype=torch.float32), pytester.path / "a.pt")
    L.add(g, [pytester.path / "a.pt"])
    monkeypatch.setattr(implementations, "_real_sglang_driver", lambda: FakeDriver("0.5.23"))
    monkeypatch.delenv("CI", raising=False)  # --mmhash-update refuses to run on CI
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update").assert_outcomes(passed=2)
    torch.save(torch.arange(11, dtype=torch.float32), g / "features/a.pt")
    result = pytester.runpytest("--mmhash-golden", "golden", "-k", "cpu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the feature bytes changed: features/a.pt has sha256*",
            "  to update: if the new bytes are intended, refresh the entry*",
            "    mmhash golden refresh golden a",
            "  then record from real SGLang:",
            "    TRITON_INTERPRET=1 *--mmhash-update --mmhash-sglang-version 0.5.23 "
            "'golden/manifest.json::a[[]cpu[]]' 'golden/manifest.json::a[[]cuda[]]'*",
        ]
    )
    # the re-record command refuses until the refresh, and names it
    result = pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update")
    result.stdout.fnmatch_lines(["*so refresh the entry first: mmhash golden refresh golden a*"])
    L.refresh(g)
    pytester.runpytest("--mmhash-golden", "golden", "--mmhash-update").assert_outcomes(passed=2)
    pytester.runpytest("--mmhash-golden", "golden").assert_outcomes(passed=2)


def test_validation_problems_one_per_line(tmp_path):
    g = tmp_path / "g"
    L.init(g)
    data = json.loads((g / "manifest.json").read_text())
    data["pin"] = "nope"
    data["extra"] = 1
    (g / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(GoldenError) as e:
        G.load_manifest(g)
    lines = str(e.value).splitlines()
    assert lines[0].endswith("invalid golden manifest (2 problems):")
    assert lines[1:] == [
        "  field 'extra': unknown top-level field",
        "  field 'pin': must be a known sglang release like '0.5.23' (a fork's: "
        "'sglang-kt==0.7.2'), got 'nope'",
    ]
