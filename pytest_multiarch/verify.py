"""``python -m pytest_multiarch verify REPORT... [--image REF] [--vsa PATH]``: did the release gate
runs, together, pass every platform of the published index?

The reports (``--multiarch-report`` of gate runs: one per matrix job, or one for all) must all be
about the same index digest; every platform of that index, as the registry lists it now
(attestation manifests excluded, as the gate does), must be in a report with PASSED and the
manifest digest the index has for it. With ``--image REF`` the reference must still resolve to
that digest (a tag moved since the test fails). Each problem is one line naming the platform or
digest. Exit status: 0 verified, 1 not verified, 4 a report or path that cannot be used.

``--vsa PATH`` writes a SLSA Verification Summary (in-toto Statement, predicate
``https://slsa.dev/verification_summary/v1``) about the index digest, PASSED or FAILED, and the
predicate alone beside it (``<name>.predicate.json``) for ``actions/attest`` or ``cosign attest``.
When ``$GITHUB_OUTPUT`` is set, the index digest and each platform's manifest digest are
appended to it as step outputs (``index``, ``manifest-linux-arm64``, ...).

The registry is read with ``docker buildx imagetools inspect``, or with podman (``--runtime
podman``, else ``CONTAINER_RUNTIME=podman``) as the podman release gate reads it (podmangate.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pytest_multiarch.errors import MultiarchError

if TYPE_CHECKING:
    from pytest_multiarch.gate import PublishedIndex

VSA_TYPE = "https://slsa.dev/verification_summary/v1"
VERIFIER_ID = "https://github.com/pytest-multiarch/pytest-multiarch/verify"
POLICY_URI = "https://github.com/pytest-multiarch/pytest-multiarch/blob/main/docs/evidence.md#the-policy-verify-applies"
VERIFIED_LEVEL = "PYTEST_MULTIARCH_ALL_PLATFORMS_PASSED"  # custom levels must not start with SLSA_
EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_BAD_INPUT = 0, 1, 4


class BadInput(Exception):
    """A report or path verify cannot use: one line, exit 4."""


@dataclasses.dataclass
class Report:
    path: Path
    data: dict[str, Any]
    sha256: str

    @property
    def digest(self) -> str | None:
        return (self.data.get("image") or {}).get("digest")

    @property
    def ref(self) -> str | None:
        return (self.data.get("image") or {}).get("ref")

    @property
    def platforms(self) -> list[dict[str, Any]]:
        return list(self.data.get("platforms") or [])


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "verify",
        help="check that release-gate reports cover every platform of the published index, all PASSED",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT", help="a --multiarch-report file of a gate run")
    parser.add_argument("--image", metavar="REF", help="the reference (a tag) that must still resolve to the index")
    parser.add_argument("--vsa", metavar="PATH", help="write a SLSA Verification Summary (in-toto Statement) here")
    parser.add_argument(
        "--runtime",
        help="read the registry with docker (buildx imagetools) or podman (manifest inspect), as "
        "--multiarch-runtime does (default: docker; podman if CONTAINER_RUNTIME=podman)",
    )
    parser.set_defaults(handler=run)


def load(path: Path) -> Report:
    """A report file; BadInput naming the file when it is not a pytest-multiarch report."""
    from pytest_multiarch.evidence_report import REPORT_SCHEMA

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        raise BadInput(f'{path}: not a pytest-multiarch report (no "schema": "{REPORT_SCHEMA}")')
    entries = data.get("platforms")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "platform" in e for e in entries):
        raise BadInput(f'{path}: its "platforms" is not a list of platforms')
    return Report(path, data, hashlib.sha256(raw).hexdigest())


def problems_of(reports: Sequence[Report], read_index: Callable[[str], PublishedIndex]) -> tuple[list[str], Any]:
    """Every reason the reports do not verify, one line each, and the index (None if unknown)."""
    from pytest_multiarch.gate import GateError, repository_of

    problems = []
    for report in reports:
        if not report.digest or not report.ref:
            problems.append(f"{report.path}: tested no published image (a build): gate reports need --multiarch-image")
        elif not report.data.get("complete", False):
            problems.append(f"{report.path}: the run did not complete (exit status {report.data.get('exit_status')})")
    digests = sorted({r.digest for r in reports if r.digest})
    if len(digests) > 1:
        for report in reports:
            if report.digest:
                problems.append(f"{report.path}: about index {report.digest}; the reports name {', '.join(digests)}")
        return problems, None
    if not digests:
        return problems, None
    digest = digests[0]
    ref = f"{repository_of(next(r.ref for r in reports if r.ref))}@{digest}"
    try:
        index = read_index(ref)
    except GateError as exc:
        return [*problems, f"index {digest}: {str(exc).split('. ')[0]}"], None
    problems += _platform_problems(reports, index)
    return problems, index


def _platform_problems(reports: Sequence[Report], index: PublishedIndex) -> list[str]:
    problems = []
    for platform, manifest in index.manifests.items():
        entries = [(r, p) for r in reports for p in r.platforms if p.get("platform") == platform]
        if not entries:
            problems.append(f"{platform}: no report covers it (index {index.digest} has {', '.join(index.platforms)})")
        for report, entry in entries:
            if entry.get("result") != "PASSED":
                problems.append(f"{platform}: {entry.get('result')} in {report.path}{_why(entry)}")
            if entry.get("manifest_digest") != manifest:
                problems.append(
                    f"{platform}: {report.path} tested manifest {entry.get('manifest_digest')}, "
                    f"but index {index.digest} has {manifest}"
                )
    for report in reports:
        for entry in report.platforms:
            if entry.get("platform") not in index.manifests:
                problems.append(f"{entry.get('platform')}: in {report.path}, but not in index {index.digest}")
    return problems


def _why(entry: dict[str, Any]) -> str:
    counts = {k: len(entry.get(k) or []) for k in ("passed", "failed", "errors", "skipped")}
    bad = [*(entry.get("failed") or []), *(entry.get("errors") or [])]
    said = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no test ran"
    return f" ({said}{': ' + ', '.join(bad[:3]) if bad else ''}{', ...' if len(bad) > 3 else ''})"


def vsa_statement(
    reports: Sequence[Report], repository: str, digest: str, passed: bool, now: datetime.datetime
) -> dict[str, Any]:
    """The SLSA VSA v1 Statement about the index ``digest``."""
    from pytest_multiarch import __version__
    from pytest_multiarch.evidence_report import STATEMENT_TYPE, iso

    algorithm, _, hexdigest = digest.partition(":")
    name = repository.rsplit("/", 1)[-1].lower()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {algorithm: hexdigest}}],
        "predicateType": VSA_TYPE,
        "predicate": {
            "verifier": {"id": VERIFIER_ID, "version": {"pytest-multiarch": __version__}},
            "timeVerified": iso(now),
            "resourceUri": f"pkg:oci/{name}@{algorithm}%3A{hexdigest}?repository_url={repository}",
            "policy": {"uri": POLICY_URI},
            "inputAttestations": [
                {"uri": r.path.as_posix(), "digest": {"sha256": r.sha256}, "mediaType": "application/json"}
                for r in reports
            ],
            "verificationResult": "PASSED" if passed else "FAILED",
            "verifiedLevels": [VERIFIED_LEVEL] if passed else ["FAILED"],
            "slsaVersion": "1.0",
        },
    }


def predicate_path(path: Path) -> Path:
    """``vsa.intoto.json`` → ``vsa.predicate.json``, beside it."""
    return path.with_name(path.name.split(".", 1)[0] + ".predicate.json")


def _read_index_with_docker(ref: str) -> PublishedIndex:
    from pytest_multiarch.engine import Engine
    from pytest_multiarch.gate import inspect_published

    return inspect_published(Engine.default().cli, ref)


def _read_index_with_podman(ref: str) -> PublishedIndex:
    """With ``podman manifest inspect`` (no service is started); a tag's digest is the registry's
    answer to a HEAD, as the podman gate reads it: a refusal to tell is a GateError here."""
    from pytest_multiarch.engine import Engine
    from pytest_multiarch.gate import GateError
    from pytest_multiarch.podmangate import UNKNOWN_DIGEST, inspect_published

    index = inspect_published(Engine.podman(), ref)
    if index.digest == UNKNOWN_DIGEST:
        raise GateError("its registry does not tell the digest it resolves to without credentials (podman)")
    return index


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from pytest_multiarch.podman import parse_runtime

    out = out or sys.stdout
    try:
        podman = parse_runtime(args.runtime) == "podman"
    except MultiarchError as exc:
        print(f"verify: {str(exc).replace('--multiarch-runtime (ini multiarch_runtime)', '--runtime')}", file=out)
        return EXIT_BAD_INPUT
    reader = _read_index_with_podman if podman else _read_index_with_docker
    return verify(args.reports, image=args.image, vsa=args.vsa, out=out, read_index=reader)


def verify(
    paths: Sequence[str],
    *,
    image: str | None = None,
    vsa: str | None = None,
    out: TextIO,
    read_index: Callable[[str], PublishedIndex] = _read_index_with_docker,
) -> int:
    """Print each problem on a line (or what was verified); see the module docstring."""
    try:
        reports = [load(Path(p)) for p in paths]
    except BadInput as exc:
        print(f"verify: {exc}", file=out)
        return EXIT_BAD_INPUT
    problems, index = problems_of(reports, read_index)
    if image and index is not None:
        try:
            now = read_index(image).digest
        except MultiarchError as exc:
            problems.append(f"{image}: {str(exc).split('. ')[0]}")
        else:
            if now != index.digest:
                problems.append(f"{image} now resolves to {now}, not to the tested index {index.digest} (it moved)")
    for line in problems:
        print(line, file=out)
    if index is not None:
        _github_outputs(index)
        for platform in index.platforms:
            print(f"{platform}: manifest {index.manifests[platform]}", file=out)
    if vsa:
        written = _write_vsa(Path(vsa), reports, index, passed=not problems)
        print(written, file=out)
        if written.startswith("could not"):
            return EXIT_BAD_INPUT
    verdict = f"verified: index {index.digest if index else '?'}" if not problems else "not verified"
    print(f"{verdict} ({len(problems)} problem(s), {len(reports)} report(s))", file=out)
    return EXIT_VERIFIED if not problems else EXIT_NOT_VERIFIED


def _write_vsa(path: Path, reports: Sequence[Report], index: PublishedIndex | None, passed: bool) -> str:
    from pytest_multiarch.evidence_report import write_atomically
    from pytest_multiarch.gate import repository_of

    digest = index.digest if index else next((r.digest for r in reports if r.digest), None)
    ref = next((r.ref for r in reports if r.ref), None)
    if not digest or not ref:
        return f"could not write the VSA {path}: no report names a published index digest"
    now = datetime.datetime.now(datetime.timezone.utc)
    statement = vsa_statement(reports, repository_of(ref), digest, passed, now)
    try:
        write_atomically(path, statement)
        write_atomically(predicate_path(path), statement["predicate"])
    except OSError as exc:
        return f"could not write the VSA {path}: {exc.strerror or exc}"
    return f"VSA ({statement['predicate']['verificationResult']}) written to {path}"


def _github_outputs(index: PublishedIndex) -> None:
    """On GitHub Actions, the digests as step outputs for the attest steps that follow."""
    from pytest_multiarch.platforms import Platform

    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return
    lines = [f"index={index.digest}"]
    lines += [f"manifest-{Platform.parse(p).slug}={d}" for p, d in index.manifests.items()]
    try:
        with open(target, "a", encoding="utf-8") as outputs:
            outputs.write("\n".join(lines) + "\n")
    except OSError:
        pass  # outputs are a convenience: the verdict is the exit status
