"""The plugin's options: every setting is a command-line flag and an ini key of the same name
(``--multiarch-platforms`` / ``multiarch_platforms``). config.py reads and checks them."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

DEFAULT_TIMEOUT = 30.0
# Emulated platforms get this multiple of the timeout: QEMU runs a process 3-10x slower.
EMULATION_TIMEOUT_FACTOR = 5.0
DEFAULT_BUILD_JOBS = 2
DEFAULT_REQUEST_TIMEOUT = 30.0

_OPTIONS: list[tuple[str, str, str, dict[str, Any]]] = [
    # (cli flag, ini key (also the option's dest), ini type, argparse keyword arguments with the help)
    (
        "--multiarch-platforms",
        "multiarch_platforms",
        "string",
        {
            "help": "platforms to test, separated by commas, spaces or newlines; 'native' is each engine's own "
            "(default: the engine's native platform)"
        },
    ),
    (
        "--multiarch-context",
        "multiarch_context",
        "string",
        {"help": "build context directory, relative to the rootdir (default: the rootdir)"},
    ),
    (
        "--multiarch-dockerfile",
        "multiarch_dockerfile",
        "string",
        {"help": "Dockerfile, relative to the context (default: Dockerfile)"},
    ),
    (
        "--multiarch-build-arg",
        "multiarch_build_args",
        "string",
        {
            "action": "append",
            "metavar": "KEY=VALUE",
            "help": "build arg, repeatable; overrides the ini's value for the same key",
        },
    ),
    ("--multiarch-target", "multiarch_target", "string", {"help": "build stage to build"}),
    (
        "--multiarch-secret",
        "multiarch_secrets",
        "string",
        {
            "action": "append",
            "metavar": "id=ID[,src=PATH|,env=VAR]",
            "help": "build secret for RUN --mount=type=secret, repeatable (ini: one per line); buildx reads "
            "it, the value is never shown, stored or part of the build key",
        },
    ),
    (
        "--multiarch-ssh",
        "multiarch_ssh",
        "string",
        {
            "action": "append",
            "metavar": "default|ID[=SOCKET_OR_KEY,...]",
            "help": "ssh agent or keys for RUN --mount=type=ssh, repeatable (ini: one per line)",
        },
    ),
    (
        "--multiarch-env",
        "multiarch_env",
        "string",
        {
            "action": "append",
            "metavar": "KEY=VALUE",
            "help": "environment variable of the default image's container, repeatable (ini: one per line); "
            "values of secret-like names are masked like build args",
        },
    ),
    (
        "--multiarch-port",
        "multiarch_port",
        "string",
        {"help": "container port the app serves (default: the image's lowest EXPOSEd port)"},
    ),
    (
        "--multiarch-ready-path",
        "multiarch_ready_path",
        "string",
        {"help": "HTTP path polled until it answers with a status < 500 (default: /)"},
    ),
    (
        "--multiarch-timeout",
        "multiarch_timeout",
        "string",
        {
            "metavar": "SECONDS[,PLATFORM=SECONDS...]",
            "help": f"seconds a native container may take to become ready (default: "
            f"{DEFAULT_TIMEOUT:g}); emulated platforms get {EMULATION_TIMEOUT_FACTOR:g}x that; PLATFORM=SECONDS "
            "entries set a platform's own, used as given (e.g. '30, linux/riscv64=600')",
        },
    ),
    (
        "--multiarch-request-timeout",
        "multiarch_request_timeout",
        "string",
        {
            "metavar": "SECONDS[,PLATFORM=SECONDS...]",
            "help": f"seconds one multiarch_http request or one container.exec command may take on a native "
            f"platform (default: {DEFAULT_REQUEST_TIMEOUT:g}); emulated platforms get "
            f"{EMULATION_TIMEOUT_FACTOR:g}x that; PLATFORM=SECONDS entries as for --multiarch-timeout; a per-call "
            "timeout= wins",
        },
    ),
    (
        "--multiarch-strict",
        "multiarch_strict",
        "bool",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "a platform this engine cannot run fails its tests instead of skipping them",
        },
    ),
    (
        "--multiarch-rebuild",
        "multiarch_rebuild",
        "bool",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "build images even when an image with the same build key is already loaded; BuildKit's "
            "layer cache still applies (add --multiarch-no-cache for a build from scratch, --multiarch-pull for "
            "newer base images)",
        },
    ),
    (
        "--multiarch-no-cache",
        "multiarch_no_cache",
        "bool",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "build every image without BuildKit's layer cache (buildx --no-cache); implies --multiarch-rebuild",
        },
    ),
    (
        "--multiarch-pull",
        "multiarch_pull",
        "bool",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "pull newer versions of the base images while building (buildx --pull); implies "
            "--multiarch-rebuild",
        },
    ),
    (
        "--multiarch-reuse",
        "multiarch_reuse",
        "bool",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "keep the containers running after the session and reuse them in the next one "
            "while their image and settings are unchanged",
        },
    ),
    (
        "--multiarch-cache-from",
        "multiarch_cache_from",
        "string",
        {"help": "passed to buildx --cache-from, e.g. type=local,src=.buildx-cache or type=gha"},
    ),
    (
        "--multiarch-cache-to",
        "multiarch_cache_to",
        "string",
        {"help": "passed to buildx --cache-to, e.g. type=local,dest=.buildx-cache,mode=max or type=gha"},
    ),
    (
        "--multiarch-image",
        "multiarch_image",
        "string",
        {
            "metavar": "REF",
            "help": "release gate: test this published image (tag or digest) from its registry "
            "instead of building; every configured platform must be in its index",
        },
    ),
    (
        "--multiarch-build-jobs",
        "multiarch_build_jobs",
        "string",
        {"help": f"platform builds run at once (default: {DEFAULT_BUILD_JOBS})"},
    ),
    (
        "--multiarch-engine",
        "multiarch_engines",
        "string",
        {
            "action": "append",
            "metavar": "PLATFORM=ENDPOINT",
            "help": "build and run PLATFORM on this engine: a docker context name or a unix://, tcp:// or "
            "ssh:// URL (repeatable; ini: one per line); other platforms use the docker CLI's engine",
        },
    ),
    (
        "--multiarch-runtime",
        "multiarch_runtime",
        "string",
        {
            "metavar": "docker|podman",
            "help": "the container runtime that builds and runs the images (default: docker; podman when "
            "CONTAINER_RUNTIME=podman)",
        },
    ),
    (
        "--multiarch-builder",
        "multiarch_builder",
        "string",
        {"help": "buildx builder to build with (default: the docker CLI's current builder)"},
    ),
    (
        "--multiarch-arch-check",
        "multiarch_arch_check",
        "string",
        {
            "metavar": "commands|all|off",
            "help": "read every platform's image for binaries built for another CPU: 'commands' (default) fails a "
            "platform whose entrypoint, PATH programs, their loader or libraries are foreign and warns of other "
            "foreign ELF files; 'all' fails those too; 'off' reads nothing",
        },
    ),
    (
        "--multiarch-arch-ignore",
        "multiarch_arch_ignore",
        "string",
        {
            "action": "append",
            "metavar": "GLOB",
            "help": "a file the architecture check leaves alone, as a glob of its path in the image "
            "(e.g. /opt/sdk/*/lib/*.so; * also crosses /), repeatable (ini: one per line)",
        },
    ),
    (
        "--multiarch-summary-file",
        "multiarch_summary_file",
        "string",
        {
            "metavar": "PATH",
            "help": "append the per-platform summary as a Markdown table to PATH (default: $GITHUB_STEP_SUMMARY "
            "when set, i.e. the job's summary page on GitHub Actions); --no-multiarch-summary-file: none",
        },
    ),
    (
        "--multiarch-container-host",
        "multiarch_container_host",
        "string",
        {
            "help": "host at which the default engine's published ports are reached (default: 127.0.0.1 "
            "for a local engine, else the engine's host name; also TESTCONTAINERS_HOST_OVERRIDE)"
        },
    ),
]


def runs_tests(config: pytest.Config) -> bool:
    """Not a run that only lists tests or fixtures (--co, --fixtures, --fixtures-per-test,
    --setup-plan): it needs no image and no container."""
    listing = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan")
    return not any(getattr(config.option, name, False) for name in listing)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("multiarch", "pytest-multiarch: test a container image per platform")
    for flag, ini, ini_type, kwargs in _OPTIONS:
        dest = ini
        group.addoption(flag, dest=dest, **kwargs)
        parser.addini(ini, help=kwargs["help"], type=ini_type, default=None)  # type: ignore[arg-type]
    group.addoption(
        "--no-multiarch-summary-file",
        dest="multiarch_summary_file",
        action="store_const",
        const="",
        help="write no Markdown summary, not even to $GITHUB_STEP_SUMMARY",
    )
