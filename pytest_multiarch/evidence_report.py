"""The evidence a run leaves for a release pipeline, as documents: the JSON report
(``--multiarch-report``, schema ``schemas/report-v1.json``) and one in-toto Statement per platform
(``--multiarch-attest``, predicate ``test-result/v0.1``). Pure functions of what the run learned
(evidence.py gathers it), and an atomic file write, so a reader never sees half a file.

Nothing here holds a build arg, an environment value or the command line: the report names
tests, platforms, digests, image ids and engines only.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPORT_SCHEMA = "pytest-multiarch/report/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
TEST_RESULT_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
OUTCOMES = ("passed", "failed", "skipped", "errors")


@dataclasses.dataclass
class PlatformEvidence:
    """What one platform's run showed: its tests by outcome (pytest node ids) and its image."""

    platform: str
    passed: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    warned: list[str] = dataclasses.field(default_factory=list)  # passed, with warnings
    manifest_digest: str | None = None
    image_id: str | None = None
    engine: str | None = None
    mode: str | None = None  # "native", "emulated"; None when the platform could not run
    emulator: str | None = None
    arch_check: dict[str, int] | None = None  # {"elf_files": N, "foreign": M}

    def result(self, complete: bool) -> str:
        """FAILED when a test failed or errored, none passed, or the run did not complete."""
        return "PASSED" if complete and self.passed and not (self.failed or self.errors) else "FAILED"

    def to_json(self, complete: bool) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "manifest_digest": self.manifest_digest,
            "image_id": self.image_id,
            "engine": self.engine,
            "mode": self.mode,
            "emulator": self.emulator,
            "result": self.result(complete),
            **{outcome: sorted(getattr(self, outcome)) for outcome in (*OUTCOMES, "warned")},
            "arch_check": self.arch_check,
        }


@dataclasses.dataclass
class RunEvidence:
    """The whole run: the image (a published reference and its index digest, or a build), the
    platforms, when it ran, and whether it completed."""

    ref: str | None
    digest: str | None
    platforms: list[PlatformEvidence]
    started: datetime.datetime
    finished: datetime.datetime
    complete: bool
    exit_status: int
    version: str

    def report(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "tool": {"name": "pytest-multiarch", "version": self.version},
            "image": {"ref": self.ref, "digest": self.digest, "source": "registry" if self.ref else "build"},
            "platforms": [p.to_json(self.complete) for p in sorted(self.platforms, key=lambda p: p.platform)],
            "started": iso(self.started),
            "finished": iso(self.finished),
            "complete": self.complete,
            "exit_status": self.exit_status,
        }


def iso(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC, to the second: ``2025-01-31T12:00:00Z``."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ci_run_url(environ: Mapping[str, str]) -> str | None:
    """The CI run's page: GitHub Actions' run (its attempt when known), GitLab's job."""
    server, repository, run = (environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run:
        attempt = environ.get("GITHUB_RUN_ATTEMPT")
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run}" + (f"/attempts/{attempt}" if attempt else "")
    return environ.get("CI_JOB_URL") or None


def file_descriptors(paths: Iterable[Path], root: Path) -> list[dict[str, Any]]:
    """in-toto ResourceDescriptors of files: the path relative to ``root`` (else absolute) and
    the SHA-256 of the content; files that cannot be read are left out."""
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        try:
            name = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = path.resolve().as_posix()
        found[name] = {"name": name, "digest": {"sha256": digest}}
    return [found[name] for name in sorted(found)]


def platform_statement(
    repository: str, platform: PlatformEvidence, configuration: list[dict[str, Any]], url: str | None, complete: bool
) -> dict[str, Any]:
    """The in-toto Statement v1 of one platform's test results, about its manifest digest.

    ``result`` is FAILED as in the report, WARNED when it passed and some test passed with a
    warning, else PASSED; failed and errored tests are ``failedTests``. Skipped tests are in no
    list (the predicate has none for them); the report keeps them."""
    assert platform.manifest_digest, "a statement needs the platform's manifest digest"
    algorithm, _, hexdigest = platform.manifest_digest.partition(":")
    warned = set(platform.warned)
    result = platform.result(complete)
    if result == "PASSED" and warned:
        result = "WARNED"
    predicate: dict[str, Any] = {"result": result, "configuration": configuration}
    if url:
        predicate["url"] = url
    predicate["passedTests"] = sorted(set(platform.passed) - warned)
    predicate["warnedTests"] = sorted(warned & set(platform.passed))
    predicate["failedTests"] = sorted({*platform.failed, *platform.errors})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {algorithm: hexdigest}}],
        "predicateType": TEST_RESULT_TYPE,
        "predicate": predicate,
    }


def write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` through a file beside it, renamed over it: a
    reader sees the old file or the new one, never a part. OSError when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def schema() -> dict[str, Any]:
    """The report's JSON Schema, shipped in the package."""
    from importlib import resources

    shipped = resources.files("pytest_multiarch").joinpath("schemas").joinpath("report-v1.json")
    text = shipped.read_text(encoding="utf-8")
    return dict(json.loads(text))
