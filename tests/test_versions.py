"""The release registry reproduces the era table of docs/spec.md §2.2."""

from __future__ import annotations

import sys

import pytest

from pytest_mmhash import UnknownVersionError, UnreproducibleHashError, hash_feature
from pytest_mmhash import versions as V


def test_release_list_matches_spec_counts():
    assert len(V.RELEASES) == 92  # 0.4.0 .. 0.5.23 with post releases; PyPI has no 0.5.0
    assert len(V.RELEASES[V.RELEASES.index("0.4.4.post4") :]) == 67
    assert "0.5.0" not in V.RELEASES


@pytest.mark.parametrize(
    "version,cpu,cuda,pad,mask",
    [
        ("0.4.4.post4", "py-hash-v0", "py-hash-v0", "pad-mod30", False),
        ("0.4.5", "py-hash-v0", "py-hash-v0", "pad-mod30", False),
        ("0.4.5.post1", "sha256-f32", "sha256-f32", "pad-mod30", False),
        ("0.4.6.post4", "sha256-f32", "sha256-f32", "pad-mod30", False),
        ("0.4.6.post5", "sha256-f32", "gpu-xor-int32", "pad-mod30", False),
        ("0.4.7", "sha256-f32", "gpu-xor-int64", "pad-mod30", False),
        ("0.4.10.post2", "sha256-f32", "gpu-xor-int64", "pad-mod30", False),
        ("0.5.1", "sha256-f32", "gpu-tile-fmix32", "pad-mod30", False),
        ("0.5.8.post1", "sha256-f32", "gpu-tile-fmix32", "pad-mod30", False),
        ("0.5.9", "sha256-f32", "gpu-tile-fmix32", "pad-shift-1e6", False),
        ("0.5.10", "sha256-raw", "gpu-tile-fmix32", "pad-shift-1e6", False),
        ("0.5.18", "sha256-raw", "gpu-tile-fmix32", "pad-shift-1e6", False),
        ("0.5.19", "sha256-raw", "gpu-tile-fmix32", "pad-shift-1e6", True),
        ("0.5.22", "sha256-raw", "gpu-tile-fmix32", "pad-shift-1e6", True),
        ("0.5.23", "sha256-raw", "gpu-tile-fmix32", "pad-wide4", True),
    ],
)
def test_range_table(version, cpu, cuda, pad, mask):
    era = V.resolve(version).era
    assert (era.cpu, era.cuda, era.pad, era.mask64) == (cpu, cuda, pad, mask)


def test_every_release_resolves_to_itself():
    for r in V.RELEASES:
        assert V.resolve(r).version == r


@pytest.mark.parametrize(
    "text,expected",
    [
        ("v0.5.9", "0.5.9"),
        ("0.5.9+cu128", "0.5.9"),
        (" 0.4.10.post2 ", "0.4.10.post2"),
        ("0.5.10.0", "0.5.10"),
    ],
)
def test_version_spellings(text, expected):
    assert V.resolve(text).version == expected


@pytest.mark.parametrize(
    "text,match",
    [
        ("banana", "not a version number"),
        ("0.5.0", "not a released version.*0.4.10.post2, 0.5.1"),
        ("0.5.10.post2", "not a released version"),
        ("0.3.6", "predates 0.4.0"),
        ("0.5.24", "newer than the newest release"),
    ],
)
def test_bad_versions(text, match):
    with pytest.raises(UnknownVersionError, match=match):
        V.resolve(text)


def test_allow_newer_uses_newest_and_warns():
    with pytest.warns(UserWarning, match="assuming 0.5.23"):
        assert V.resolve("0.6.0", allow_newer=True).version == V.NEWEST
    with pytest.warns(UserWarning):
        assert (
            hash_feature(b"hello", sglang_version="0.6.0", allow_newer=True).sglang_version
            == "0.5.23"
        )


def test_default_version_is_installed_or_newest(monkeypatch):
    monkeypatch.setattr(V, "installed_sglang_version", lambda: None)
    assert hash_feature(b"x").sglang_version == V.NEWEST
    monkeypatch.setattr(V, "installed_sglang_version", lambda: "0.5.9")
    assert hash_feature(b"x").sglang_version == "0.5.9"


def test_installed_version_is_read_once_per_sys_path(monkeypatch, tmp_path):
    """Every default-release hash asks; the metadata scan (1-6 ms) runs once per ``sys.path``."""
    from importlib import metadata

    calls = []
    monkeypatch.setattr(metadata, "version", lambda name: calls.append(name) or "0.5.9")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])  # a path no lookup has seen
    assert [hash_feature(b"x").sglang_version for _ in range(3)] == ["0.5.9"] * 3
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "other")])
    assert hash_feature(b"x").sglang_version == "0.5.9"
    assert calls == ["sglang", "sglang"]


@pytest.mark.parametrize("version", ["0.4.0", "0.4.4.post3", "0.4.4.post4", "0.4.5"])
def test_unreproducible_eras_refuse(version):
    with pytest.raises(UnreproducibleHashError, match="hash()"):
        hash_feature(b"hello", sglang_version=version)


def test_a_newer_release_names_the_newest_known():
    """``NewerReleaseError`` (an ``UnknownVersionError``) carries the release it could assume."""
    from pytest_mmhash import NewerReleaseError

    with pytest.raises(NewerReleaseError, match="--allow-newer") as info:
        hash_feature(b"hello", sglang_version="0.6.0")
    assert info.value.newest == V.NEWEST and isinstance(info.value, UnknownVersionError)
