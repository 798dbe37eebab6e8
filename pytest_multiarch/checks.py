"""Checks of the settings as a whole, at configuration time: a value that cannot work is a usage
error (pytest exits 4) with one line per problem, before any test runs, instead of an error per
test or nothing at all.

- every ``--multiarch-engine`` endpoint is a well-formed URL (a port is a number) and routes a
  configured platform;
- ``--multiarch-image`` is an image reference;
- ``--multiarch-builder`` names a buildx builder that exists (one CLI call, only when it is given).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from pytest_multiarch import xdist
from pytest_multiarch.config import Settings, runs_tests
from pytest_multiarch.endpoints import url_problem
from pytest_multiarch.errors import UsageError

ENGINE_OPTION = "--multiarch-engine (ini multiarch_engines)"

# An image reference as the registry's grammar has it (distribution/reference): an optional
# registry host[:port], lowercase path components, an optional tag and an optional digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])"
_REFERENCE = re.compile(
    rf"(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


def check_configuration(config: pytest.Config, settings: Settings) -> None:
    """Every check of this module that applies to this run (UsageError on the first that fails).
    The builder is looked up only where it would be used: a run of tests, not an xdist worker
    (its controller did), with the plugin configured."""
    check_settings(settings)
    configured = settings.platforms is not None or settings.published is not None
    if (
        settings.builder
        and settings.runtime == "docker"
        and configured
        and runs_tests(config)
        and xdist.role(config) != "worker"
    ):
        from pytest_multiarch.engine import Engine

        check_builder(settings.builder, Engine.default().docker_command())


def check_settings(settings: Settings) -> None:
    """UsageError listing every value of ``settings`` that cannot work, one line each."""
    problems: list[str] = []
    configured = settings.platforms
    named = {*settings.named_platforms, *(configured or ())}
    for option, seconds in (
        ("multiarch_timeout", settings.timeouts),
        ("multiarch_request_timeout", settings.request_timeouts),
    ):
        strays = [str(p) for p in seconds.own if named and p not in named]
        if strays:
            problems.append(
                f"{option} names {', '.join(strays)}, which the configuration does not name "
                f"({', '.join(map(str, named))}): a typo, or add it to multiarch_platforms."
            )
    for platform, endpoint in settings.engines.items():
        problem = url_problem(endpoint) if "://" in endpoint else None
        if problem:
            problems.append(f"{ENGINE_OPTION} {platform}={endpoint}: {problem}.")
        if configured is not None and not settings.native and platform not in configured:
            listed = ", ".join(map(str, configured))
            problems.append(
                f"{ENGINE_OPTION} names an engine for {platform}, which is not a configured platform ({listed}): "
                f"add it to --multiarch-platforms, or drop that engine."
            )
    if settings.runtime == "podman":
        from pytest_multiarch.podmanbuild import cache_problem

        for option, value in (("cache-from", settings.cache_from), ("cache-to", settings.cache_to)):
            problem = cache_problem(value) if value else None
            if problem:
                problems.append(
                    f"--multiarch-{option} (ini multiarch_{option.replace('-', '_')}) {value!r}: {problem}."
                )
    if settings.runtime == "podman" and (settings.engines or settings.builder):
        problems.append(
            "--multiarch-runtime podman builds and runs every platform on this machine's podman: "
            "--multiarch-engine and --multiarch-builder are for Docker engines and buildx; drop them."
        )
    if settings.published:
        problem = reference_problem(settings.published)  # the registry's own error would come per test
        if problem:
            problems.append(f"--multiarch-image (ini multiarch_image) {settings.published!r}: {problem}.")
    if problems:
        raise UsageError("\n".join(problems))


def reference_problem(ref: str) -> str | None:
    """What is wrong with image reference ``ref`` (None: nothing)."""
    if _REFERENCE.fullmatch(ref) and len(ref.split("@")[0].rsplit(":", 1)[0]) <= 255:
        return None
    return (
        "not an image reference: [REGISTRY[:PORT]/]REPOSITORY[:TAG][@DIGEST], the repository in lowercase, "
        "for example ghcr.io/owner/app:1.2.0"
    )


def check_builder(name: str, docker: list[str]) -> None:
    """UsageError when buildx has no builder ``name``, naming the ones it has. Anything else
    (no docker CLI, no buildx) is left to the preflight, which explains it per engine."""
    try:
        found = subprocess.run([*docker, "buildx", "inspect", name], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return
    if found.returncode == 0 or "no builder" not in found.stderr:
        return
    try:
        listed = subprocess.run(
            [*docker, "buildx", "ls", "--format", "{{.Name}}"], capture_output=True, text=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        listed = []
    have = ", ".join(dict.fromkeys(listed)) or "none listed"
    raise UsageError(
        f"--multiarch-builder (ini multiarch_builder) {name!r}: buildx has no such builder (it has: {have}). "
        f"`docker buildx ls` lists them; `docker buildx create --name {name}` makes one."
    )
