"""The record of what a run needed (early.py): read, written, and keyed by what decides it."""

from __future__ import annotations

from pathlib import Path

from pytest_multiarch import early
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.platforms import Platform

ARM64 = Platform.parse("linux/arm64")


def spec(**build_args: str) -> ImageSpec:
    return ImageSpec(name="", context=Path("/p"), dockerfile=Path("/p/Dockerfile"), build_args=build_args)


def test_a_record_round_trips(tmp_path):
    path = tmp_path / "early" / "x.json"
    needed = [early.Needed("multiarch", "linux/arm64", True, "d1"), early.Needed("db", "linux/amd64", False, "d2")]
    early.write(path, needed)
    assert early.read(path) == needed
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_missing_broken_or_foreign_record_means_nothing_was_needed(tmp_path):
    assert early.read(tmp_path / "missing.json") == []
    (tmp_path / "broken.json").write_text("{not json")
    assert early.read(tmp_path / "broken.json") == []
    (tmp_path / "old.json").write_text('{"scheme": 0, "needed": [{"prefix": "multiarch"}]}')
    assert early.read(tmp_path / "old.json") == []
    (tmp_path / "odd.json").write_text('{"scheme": 1, "needed": [{"unknown": 1}]}')
    assert early.read(tmp_path / "odd.json") == []


def test_the_digest_covers_build_args_and_platform_but_stores_no_value():
    base = early.spec_digest(spec(TOKEN="s3cr3t-value"), ARM64)
    assert base == early.spec_digest(spec(TOKEN="s3cr3t-value"), ARM64)
    assert base != early.spec_digest(spec(TOKEN="other"), ARM64)
    assert base != early.spec_digest(spec(TOKEN="s3cr3t-value"), Platform.parse("linux/amd64"))
    assert "s3cr3t" not in base


def test_the_record_is_per_command_line(pytester):
    config_a = pytester.parseconfig("-k", "a")
    config_b = pytester.parseconfig("-k", "b")
    cache = pytester.path / "cache"
    assert early.record_path(config_a, cache) == early.record_path(pytester.parseconfig("-k", "a"), cache)
    assert early.record_path(config_a, cache) != early.record_path(config_b, cache)
