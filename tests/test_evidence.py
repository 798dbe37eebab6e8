"""Evidence (issue 25) without Docker: outcomes per test, the documents' shapes, verify's rules
on made-up indexes, and the options' usage errors."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from pytest_multiarch.evidence import Outcomes, merge_facts
from pytest_multiarch.evidence_report import (
    PlatformEvidence,
    RunEvidence,
    ci_run_url,
    file_descriptors,
    platform_statement,
    schema,
    write_atomically,
)
from pytest_multiarch.gate import GateError, PublishedIndex
from pytest_multiarch.verify import predicate_path, verify

AMD = "sha256:" + "a" * 64
ARM = "sha256:" + "b" * 64
INDEX = "sha256:" + "c" * 64
REF = "127.0.0.1:5000/team/app:1.0"


def _report(nodeid: str, when: str, outcome: str) -> Any:
    return SimpleNamespace(
        nodeid=nodeid,
        when=when,
        failed=outcome == "failed",
        skipped=outcome == "skipped",
        passed=outcome == "passed",
    )


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
        ([("setup", "failed"), ("teardown", "passed")], "errors"),
        ([("setup", "skipped"), ("teardown", "passed")], "skipped"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed"),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "errors"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "failed")], "failed"),
        ([("setup", "passed"), ("call", "skipped"), ("teardown", "passed")], "skipped"),
        # a rerun (pytest-rerunfailures) starts over at its setup
        (
            [("setup", "passed"), ("call", "failed"), ("teardown", "passed"), ("setup", "passed"), ("call", "passed")],
            "passed",
        ),
    ],
)
def test_each_test_has_one_outcome_from_its_phases(phases, expected):
    outcomes = Outcomes()
    for when, outcome in phases:
        outcomes.add(_report("t.py::x[linux/arm64]", when, outcome), "linux/arm64")
    assert outcomes.of == {"t.py::x[linux/arm64]": ("linux/arm64", expected)}


def test_outcomes_fill_only_their_platform_and_mark_warned_passes():
    outcomes = Outcomes()
    for nodeid, platform, outcome in [("a[amd]", "linux/amd64", "passed"), ("a[arm]", "linux/arm64", "failed")]:
        outcomes.add(_report(nodeid, "call", outcome), platform)
    outcomes.add(_report("w[arm]", "call", "passed"), "linux/arm64")
    outcomes.warned.update({"w[arm]", "a[arm]"})
    arm = PlatformEvidence("linux/arm64")
    outcomes.fill(arm)
    assert (arm.passed, arm.failed, arm.warned) == (["w[arm]"], ["a[arm]"], ["w[arm]"])


@pytest.mark.parametrize(
    ("fields", "complete", "result"),
    [
        ({"passed": ["a"]}, True, "PASSED"),
        ({"passed": ["a"], "skipped": ["b"]}, True, "PASSED"),
        ({"passed": ["a"], "failed": ["b"]}, True, "FAILED"),
        ({"passed": ["a"], "errors": ["b"]}, True, "FAILED"),
        ({"skipped": ["a"]}, True, "FAILED"),  # none passed
        ({}, True, "FAILED"),
        ({"passed": ["a"]}, False, "FAILED"),  # the run was interrupted
    ],
)
def test_a_platform_passes_only_when_a_test_passed_none_failed_and_the_run_completed(fields, complete, result):
    assert PlatformEvidence("linux/arm64", **fields).result(complete) == result


def _run(platforms: list[PlatformEvidence], ref: str | None = REF, digest: str | None = INDEX) -> RunEvidence:
    moment = datetime.datetime(2025, 1, 31, 12, 0, 0, tzinfo=datetime.timezone.utc)
    return RunEvidence(ref, digest, platforms, moment, moment, True, 0, "0.1.0")


def test_the_report_follows_its_shipped_schema_gate_and_build():
    gate = PlatformEvidence("linux/arm64", passed=["t.py::a[linux/arm64]"], manifest_digest=ARM, image_id=AMD)
    gate.arch_check, gate.mode, gate.engine = {"elf_files": 3, "foreign": 0}, "emulated", "unix:///var/run/docker.sock"
    for run in (_run([gate]), _run([PlatformEvidence("linux/amd64", image_id=AMD)], ref=None, digest=None)):
        jsonschema.validate(run.report(), schema())
    report = _run([gate]).report()
    assert report["image"] == {"ref": REF, "digest": INDEX, "source": "registry"}
    assert report["started"] == "2025-01-31T12:00:00Z"
    assert report["platforms"][0]["result"] == "PASSED"
    broken = json.loads(json.dumps(report))
    broken["platforms"][0]["result"] = "OK"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())


def test_the_statement_says_warned_when_a_passing_test_warned_and_lists_errors_as_failed():
    platform = PlatformEvidence("linux/arm64", passed=["a", "w"], warned=["w"], manifest_digest=ARM)
    statement = platform_statement("127.0.0.1:5000/team/app", platform, [], "https://ci/run/1", complete=True)
    assert statement["subject"] == [{"name": "127.0.0.1:5000/team/app", "digest": {"sha256": "b" * 64}}]
    predicate = statement["predicate"]
    assert (predicate["result"], predicate["passedTests"], predicate["warnedTests"]) == ("WARNED", ["a"], ["w"])
    assert predicate["url"] == "https://ci/run/1"
    platform = PlatformEvidence("linux/arm64", passed=["a"], failed=["f"], errors=["e"], manifest_digest=ARM)
    predicate = platform_statement("r", platform, [], None, complete=True)["predicate"]
    assert (predicate["result"], predicate["failedTests"], "url" in predicate) == ("FAILED", ["e", "f"], False)


def test_the_ci_run_url_from_github_or_gitlab():
    github = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "42"}
    assert ci_run_url(github) == "https://github.com/acme/app/actions/runs/42"
    assert ci_run_url({**github, "GITHUB_RUN_ATTEMPT": "2"}) == "https://github.com/acme/app/actions/runs/42/attempts/2"
    assert ci_run_url({"CI_JOB_URL": "https://gitlab.com/acme/app/-/jobs/7"}) == "https://gitlab.com/acme/app/-/jobs/7"
    assert ci_run_url({}) is None


def test_file_descriptors_name_files_relative_to_the_root_with_their_sha256(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("x")
    found = file_descriptors([tmp_path / "tests" / "test_a.py", tmp_path / "missing.ini"], tmp_path)
    sha_of_x = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    assert found == [{"name": "tests/test_a.py", "digest": {"sha256": sha_of_x}}]


def test_write_atomically_leaves_no_temporary_file_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "deep" / "report.json"
    write_atomically(target, {"a": 1})
    write_atomically(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_merged_facts_keep_the_first_known_value():
    into: dict[str, Any] = {}
    merge_facts(into, {"index": {"digest": None}, "platforms": {"linux/arm64": {"image_id": None, "mode": "emulated"}}})
    merge_facts(into, {"index": {"digest": INDEX}, "platforms": {"linux/arm64": {"image_id": ARM, "mode": "native"}}})
    assert into == {"index": {"digest": INDEX}, "platforms": {"linux/arm64": {"image_id": ARM, "mode": "emulated"}}}


# -- verify on made-up indexes ------------------------------------------------------------------


def _write_report(path: Path, platforms: dict[str, tuple[str, str]], digest: str = INDEX, complete=True) -> Path:
    """A report with each platform's (result, manifest digest)."""
    entries = []
    for name, (result, manifest) in platforms.items():
        entry = PlatformEvidence(name, manifest_digest=manifest, passed=[f"t.py::a[{name}]"])
        if result == "FAILED":
            entry.failed = [f"t.py::b[{name}]"]
        entries.append(entry)
    run = _run(entries, digest=digest)
    run.complete = complete
    write_atomically(path, run.report())
    return path


def _index(digest: str = INDEX, manifests: dict[str, str] | None = None) -> PublishedIndex:
    found = manifests if manifests is not None else {"linux/amd64": AMD, "linux/arm64": ARM}
    return PublishedIndex(REF, digest, "application/vnd.oci.image.index.v1+json", found, is_index=True)


def _verify(*paths: Path, image: str | None = None, index: PublishedIndex | None = None, **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    asked: dict[str, PublishedIndex] = {f"127.0.0.1:5000/team/app@{INDEX}": index or _index()}
    asked.update(kw.pop("refs", {}))

    def read_index(ref: str) -> PublishedIndex:
        if ref not in asked:
            raise GateError(f"cannot read {ref} from its registry: not found. Check it.")
        return asked[ref]

    code = verify([str(p) for p in paths], image=image, out=out, read_index=read_index, **kw)
    return code, out.getvalue()


def test_verify_passes_two_reports_that_together_cover_the_index(tmp_path):
    amd = _write_report(tmp_path / "amd.json", {"linux/amd64": ("PASSED", AMD)})
    arm = _write_report(tmp_path / "arm.json", {"linux/arm64": ("PASSED", ARM)})
    code, said = _verify(amd, arm, image=REF, refs={REF: _index()})
    assert code == 0, said
    assert said.splitlines()[-1].startswith(f"verified: index {INDEX}")


GOOD = {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("PASSED", ARM)}


@pytest.mark.parametrize(
    ("reports", "line"),
    [
        ([{"linux/amd64": ("PASSED", AMD)}],
         f"linux/arm64: no report covers it (index {INDEX} has linux/amd64, linux/arm64)"),
        ([{**GOOD, "linux/arm64": ("FAILED", ARM)}],
         "linux/arm64: FAILED in r0.json (1 passed, 1 failed: t.py::b[linux/arm64])"),
        ([{**GOOD, "linux/arm64": ("PASSED", AMD)}],
         f"linux/arm64: r0.json tested manifest {AMD}, but index {INDEX} has {ARM}"),
        ([{**GOOD, "linux/s390x": ("PASSED", AMD)}], f"linux/s390x: in r0.json, but not in index {INDEX}"),
    ],
)  # fmt: skip
def test_verify_refuses_with_one_line_naming_the_platform(tmp_path, monkeypatch, reports, line):
    monkeypatch.chdir(tmp_path)
    paths = [_write_report(Path(f"r{n}.json"), platforms) for n, platforms in enumerate(reports)]
    code, said = _verify(*paths)
    assert code == 1
    assert line in said.splitlines(), said
    assert said.splitlines()[-1].startswith("not verified (1 problem(s)")


def test_verify_refuses_reports_about_different_indexes_an_interrupted_run_and_a_moved_tag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    amd = _write_report(Path("amd.json"), {"linux/amd64": ("PASSED", AMD)})
    other = "sha256:" + "d" * 64
    arm = _write_report(Path("arm.json"), {"linux/arm64": ("PASSED", ARM)}, digest=other)
    code, said = _verify(amd, arm)
    assert code == 1 and f"arm.json: about index {other}; the reports name {INDEX}, {other}" in said
    cut = _write_report(
        Path("cut.json"), {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("PASSED", ARM)}, complete=False
    )
    code, said = _verify(cut)
    assert code == 1 and "cut.json: the run did not complete (exit status 0)" in said
    both = _write_report(Path("both.json"), {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("PASSED", ARM)})
    code, said = _verify(both, image=REF, refs={REF: _index(digest=other)})
    assert code == 1
    assert f"{REF} now resolves to {other}, not to the tested index {INDEX} (it moved)" in said.splitlines()


def test_verify_says_in_one_line_when_a_file_is_not_a_report(tmp_path):
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    (tmp_path / "other.json").write_text('{"schema": "something/else"}')
    for name, said in [
        ("missing.json", "cannot read it: No such file or directory"),
        ("junit.xml", "not JSON"),
        ("other.json", "not a pytest-multiarch report"),
    ]:
        code, out = _verify(tmp_path / name)
        assert code == 4 and len(out.splitlines()) == 1 and said in out, out


def test_verify_writes_a_vsa_statement_and_its_predicate(tmp_path):
    both = _write_report(tmp_path / "both.json", {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("PASSED", ARM)})
    code, said = _verify(both, vsa=str(tmp_path / "vsa.intoto.json"))
    assert code == 0, said
    statement = json.loads((tmp_path / "vsa.intoto.json").read_text())
    assert statement["subject"] == [{"name": "127.0.0.1:5000/team/app", "digest": {"sha256": "c" * 64}}]
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert json.loads(predicate_path(tmp_path / "vsa.intoto.json").read_text()) == statement["predicate"]
    assert statement["predicate"]["verificationResult"] == "PASSED"
    failed = _write_report(tmp_path / "f.json", {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("FAILED", ARM)})
    code, _ = _verify(failed, vsa=str(tmp_path / "vsa.intoto.json"))
    predicate = json.loads((tmp_path / "vsa.intoto.json").read_text())["predicate"]
    assert (code, predicate["verificationResult"], predicate["verifiedLevels"]) == (1, "FAILED", ["FAILED"])


def test_verify_appends_the_digests_to_github_output(tmp_path, monkeypatch):
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    both = _write_report(tmp_path / "both.json", {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("PASSED", ARM)})
    assert _verify(both)[0] == 0
    assert outputs.read_text().splitlines() == [
        f"index={INDEX}",
        f"manifest-linux-amd64={AMD}",
        f"manifest-linux-arm64={ARM}",
    ]


# -- the options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--multiarch-attest=out"], "--multiarch-attest attests the registry digests of what was tested, and a build"),
        (["--multiarch-report=."], "is a directory: give the path of a file to write"),
    ],
)  # fmt: skip
def test_bad_evidence_options_are_a_usage_error_in_one_line(pytester, args, said):
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and said in errors[0] and errors[0].startswith("ERROR: pytest-multiarch: "), errors


def test_the_ini_names_the_report_relative_to_the_rootdir(pytester):
    """Not Docker-backed: no test uses the plugin's fixtures, so the report lists no platform."""
    pytester.makeini("[pytest]\nmultiarch_report = out/report.json\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    jsonschema.validate(report, schema())
    assert (report["platforms"], report["image"]["source"], report["complete"]) == ([], "build", True)


def test_a_run_that_only_collects_leaves_an_older_report_alone(pytester):
    pytester.makeini("[pytest]\nmultiarch_report = report.json\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    (pytester.path / "report.json").write_text("older")
    pytester.runpytest_subprocess("--co").assert_outcomes()
    assert (pytester.path / "report.json").read_text() == "older"


def test_verify_on_podman_reads_the_index_with_podman_and_refuses_a_tag_whose_digest_is_not_told(tmp_path, monkeypatch):
    """--runtime podman (or CONTAINER_RUNTIME=podman): podman's reading of the registry, where a
    tag's digest may be unknown (a registry wanting credentials): that is a problem, not a move."""
    from pytest_multiarch import podmangate
    from pytest_multiarch.verify import run

    both = _write_report(tmp_path / "both.json", {"linux/amd64": ("PASSED", AMD), "linux/arm64": ("PASSED", ARM)})
    read: list[str] = []

    def inspect_published(engine: Any, ref: str) -> PublishedIndex:
        assert engine.runtime == "podman"
        read.append(ref)
        return _index(digest=INDEX if "@" in ref else podmangate.UNKNOWN_DIGEST)

    monkeypatch.setattr(podmangate, "inspect_published", inspect_published)
    monkeypatch.setenv("CONTAINER_RUNTIME", "podman")
    out = io.StringIO()
    code = run(SimpleNamespace(reports=[str(both)], image=REF, vsa=None, runtime=None), out)
    said = out.getvalue()
    assert (code, read) == (1, [f"127.0.0.1:5000/team/app@{INDEX}", REF]), said
    assert f"{REF}: its registry does not tell the digest it resolves to without credentials (podman)" in said
    assert "moved" not in said

    out = io.StringIO()
    assert run(SimpleNamespace(reports=[str(both)], image=None, vsa=None, runtime="rkt"), out) == 4
    assert out.getvalue() == "verify: --runtime 'rkt': use docker or podman.\n"
