"""The record of what a run needed (early.py): read, written, and keyed by what decides it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest

from pytest_multiarch import early
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.platforms import Platform

ARM64 = Platform.parse("linux/arm64")


def spec(**build_args: str) -> ImageSpec:
    return ImageSpec(name="", context=Path("/p"), dockerfile=Path("/p/Dockerfile"), build_args=build_args)


def test_a_record_round_trips(tmp_path):
    path = tmp_path / "early" / "x.json"
    needed = [early.Recorded("multiarch", "linux/arm64", True, "d1"), early.Recorded("db", "linux/amd64", False, "d2")]
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
    assert re.fullmatch(r"[0-9a-f]{64}", base), base  # a SHA-256, nothing of the value


def test_a_written_record_holds_no_build_arg(pytester, monkeypatch):
    """What a real run writes: fixture prefixes, platforms and digests, never a build arg's value
    (from the ini or the command line), though the digest covers them."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # the record is written without an engine too
    monkeypatch.delenv("CI", raising=False)
    ini_secret, cli_secret = "Ini-S3cr3t-Value", "Cli-S3cr3t-Value"
    pytester.makeini(f"[pytest]\nmultiarch_platforms = linux/amd64\nmultiarch_build_args = NPM_TOKEN={ini_secret}\n")
    pytester.makepyfile(test_app="def test_x(multiarch_image):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--multiarch-build-arg=API_KEY={cli_secret}")
    result.assert_outcomes(skipped=1)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-multiarch" / "early"
    (record,) = cache.iterdir()
    (entry,) = early.read(record)
    assert (entry.prefix, entry.platform, entry.container) == ("multiarch", "linux/amd64", False)
    assert re.fullmatch(r"[0-9a-f]{64}", entry.digest), entry
    text = record.read_text().lower()
    assert ini_secret.lower() not in text and cli_secret.lower() not in text, text


def test_the_record_is_per_command_line(pytester):
    config_a = pytester.parseconfig("-k", "a")
    config_b = pytester.parseconfig("-k", "b")
    cache = pytester.path / "cache"
    assert early.record_path(config_a, cache) == early.record_path(pytester.parseconfig("-k", "a"), cache)
    assert early.record_path(config_a, cache) != early.record_path(config_b, cache)


def test_the_record_name_is_keyed_per_user_and_confirms_no_guessed_token(pytester):
    """The name covers the command line, which may hold a build arg's value: it is keyed with the
    user's digest key, so two users' records of one command line differ, and hashing a guess
    (as the name was made before, an unkeyed SHA-256) does not find the file."""
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\n")
    alice, bob = pytester.path / "alice", pytester.path / "bob"

    def name(token: str, cache: Path) -> str:
        config = pytester.parseconfig(f"--multiarch-build-arg=API_TOKEN={token}")
        return early.record_path(config, cache).name

    assert name("t0ken-1", alice) == name("t0ken-1", alice)
    assert name("t0ken-1", alice) != name("t0ken-2", alice)  # still one record per command line
    assert name("t0ken-1", alice) != name("t0ken-1", bob)
    config = pytester.parseconfig("--multiarch-build-arg=API_TOKEN=t0ken-1")
    ini = hashlib.sha256(config.inipath.read_bytes()).hexdigest()  # type: ignore[union-attr]
    guessed = [str(config.rootpath), str(config.inipath), ini, str(config.invocation_params.dir)]
    guessed += [list(config.invocation_params.args), os.environ.get("PYTEST_ADDOPTS", "")]
    unkeyed = hashlib.sha256(json.dumps(guessed).encode()).hexdigest()
    assert unkeyed[:24] not in name("t0ken-1", alice)
    assert "t0ken" not in name("t0ken-1", alice)


def test_a_record_with_fields_of_the_wrong_type_is_ignored(tmp_path):
    path = tmp_path / "typed.json"
    path.write_text('{"scheme": 1, "needed": [{"prefix": ["x"], "platform": 1, "container": "yes", "digest": "d"}]}')
    assert early.read(path) == []


def test_the_record_follows_pytest_addopts_and_the_ini_file(pytester, monkeypatch):
    ini = pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\n")
    cache = pytester.path / "cache"
    before = early.record_path(pytester.parseconfig(), cache)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k slow")
    with_addopts = early.record_path(pytester.parseconfig(), cache)
    monkeypatch.delenv("PYTEST_ADDOPTS")
    ini.write_text("[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n")
    edited = early.record_path(pytester.parseconfig(), cache)
    assert len({before, with_addopts, edited}) == 3


def test_only_runs_that_run_tests_start_or_record_anything(pytester):
    from pytest_multiarch.config import runs_tests as _runs_tests

    assert _runs_tests(pytester.parseconfig())
    assert _runs_tests(pytester.parseconfig("--setup-only"))  # sets fixtures up: containers too
    for listing in ("--co", "--fixtures", "--fixtures-per-test", "--setup-plan"):
        assert not _runs_tests(pytester.parseconfig(listing)), listing


def test_records_of_command_lines_not_run_for_a_month_are_forgotten(tmp_path):
    folder = tmp_path / "early"
    folder.mkdir()
    stale, recent = folder / "stale.json", folder / "recent.json"
    for path, days in ((stale, early.FORGET_DAYS + 1), (recent, early.FORGET_DAYS - 1)):
        path.write_text("{}")
        when = time.time() - days * 86400
        os.utime(path, (when, when))
    early.write(folder / "now.json", [])
    assert sorted(p.name for p in folder.iterdir()) == ["now.json", "recent.json"]


def test_an_interrupted_collection_keeps_the_last_record(pytester):
    """The needs of a run whose collection broke off are partial: the record stays as it was."""
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\n")
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-multiarch" / "early"
    (record,) = cache.iterdir()
    assert early.read(record) == []  # written: these tests need no image
    earlier = [early.Recorded("multiarch", "linux/amd64", True, "an earlier run's digest")]
    early.write(record, earlier)
    pytester.makepyfile(test_broken="import a_module_that_does_not_exist\n")
    broken = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert broken.ret == pytest.ExitCode.INTERRUPTED
    assert early.read(record) == earlier
    (pytester.path / "test_broken.py").unlink()
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert early.read(record) == []


def test_a_cache_that_cannot_be_written_costs_only_the_head_start(pytester, monkeypatch, tmp_path):
    """As on a CI image whose user has no writable home: the tests' outcome is all that counts."""
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder / "cache"))
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\n")
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
