"""Configuration: every setting is a CLI flag and an ini key, and the CLI wins.

``add_options`` declares them; ``Settings.from_pytest`` reads and validates them into plain
values so that the rest of the package never touches ``pytest.Config``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform, parse_platforms, split_list

DEFAULT_TIMEOUT = 30.0
# Emulated platforms get this multiple of the timeout: QEMU runs a process 3-10x slower.
EMULATION_TIMEOUT_FACTOR = 5.0
DEFAULT_BUILD_JOBS = 2

_OPTIONS: list[tuple[str, str, str, dict[str, Any]]] = [
    # (cli flag, ini key, ini type, help)
    (
        "--multiarch-platforms",
        "multiarch_platforms",
        "string",
        {"help": "platforms to test, separated by commas, spaces or newlines (default: the engine's native platform)"},
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
            "help": f"seconds a native container may take to become ready (default: "
            f"{DEFAULT_TIMEOUT:g}); emulated platforms get {EMULATION_TIMEOUT_FACTOR:g}x that"
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
            "help": "build images even when an image with the same build key is already loaded",
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


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """What to build and how to run it; one per image a project declares."""

    name: str
    context: Path
    dockerfile: Path
    build_args: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # may hold secrets
    target: str | None = None
    port: int | None = None
    ready_path: str = "/"

    def __hash__(self) -> int:  # build_args is a dict; hash its items
        return hash(
            (
                self.name,
                self.context,
                self.dockerfile,
                tuple(sorted(self.build_args.items())),
                self.target,
                self.port,
                self.ready_path,
            )
        )

    def setting(self, field: str) -> str:
        """Where a user sets ``field`` of this image, for messages: the plugin's option for the
        default image, the ``multiarch_fixtures`` declaration for a declared one."""
        if self.name:
            return f'{field}= in multiarch_fixtures("{self.name}", ...)'
        return f"--multiarch-{field.replace('_', '-')} (ini multiarch_{field})"

    def check_paths(self) -> None:
        """Fail with the path a user has to fix, not with buildx's message."""
        if not self.context.is_dir():
            raise UsageError(
                f"build context {str(self.context)!r} is not a directory: set {self.setting('context')} "
                f"to the folder holding your Dockerfile (relative to the rootdir)."
            )
        if not self.dockerfile.is_file():
            raise UsageError(
                f"Dockerfile not found: {str(self.dockerfile)!r}. Set {self.setting('dockerfile')}, "
                f"relative to the context {str(self.context)!r}."
            )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Session-wide settings, validated."""

    platforms: list[Platform] | None  # None: the engine's native platform
    image: ImageSpec
    timeout: float = DEFAULT_TIMEOUT
    strict: bool = False
    rebuild: bool = False
    build_jobs: int = DEFAULT_BUILD_JOBS
    published: str | None = None  # --multiarch-image: test this reference instead of building
    reuse: bool = False
    cache_from: str | None = None
    cache_to: str | None = None

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> Settings:
        def get(ini: str) -> Any:
            cli = config.getoption(ini, default=None)
            return cli if cli not in (None, []) else config.getini(ini)

        raw_platforms = get("multiarch_platforms")
        platforms = None
        if raw_platforms is not None:
            platforms = parse_platforms(raw_platforms)
            if not platforms:
                raise UsageError(
                    "the platform list is empty: give at least one platform, for example "
                    "--multiarch-platforms linux/amd64,linux/arm64 (or leave it unset for the "
                    "engine's native platform)."
                )

        reuse = bool(get("multiarch_reuse"))
        published = (get("multiarch_image") or "").strip() or None
        if published and platforms is None:
            raise UsageError(
                "--multiarch-image checks a published image on the platforms you ship, so name them: "
                "--multiarch-platforms linux/amd64,linux/arm64 (or ini multiarch_platforms). Without "
                "them only this machine's platform would be tested, and a missing one would go unnoticed."
            )

        rootdir = Path(config.rootpath)
        context = rootdir / (get("multiarch_context") or ".")
        dockerfile = context / (get("multiarch_dockerfile") or "Dockerfile")
        build_args = parse_build_args(config.getini("multiarch_build_args") or "", "ini multiarch_build_args")
        build_args.update(parse_build_args(config.getoption("multiarch_build_args") or [], "--multiarch-build-arg"))
        image = ImageSpec(
            name="",
            context=context,
            dockerfile=dockerfile,
            build_args=build_args,
            target=get("multiarch_target") or None,
            port=parse_port(get("multiarch_port")),
            ready_path=parse_ready_path(get("multiarch_ready_path")),
        )
        return cls(
            platforms=platforms,
            image=image,
            timeout=parse_positive(get("multiarch_timeout"), "multiarch_timeout", DEFAULT_TIMEOUT),
            strict=bool(get("multiarch_strict")),
            rebuild=bool(get("multiarch_rebuild")),
            published=published,
            reuse=reuse,
            cache_from=(get("multiarch_cache_from") or "").strip() or None,
            cache_to=(get("multiarch_cache_to") or "").strip() or None,
            build_jobs=parse_count(get("multiarch_build_jobs"), "multiarch_build_jobs", DEFAULT_BUILD_JOBS),
        )

    def timeout_for(self, platform: Platform) -> float:
        return self.timeout * (EMULATION_TIMEOUT_FACTOR if platform.emulated else 1.0)


BUILD_ARG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_BUILD_ARG_ITEM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")


def parse_build_args(raw: str | list[str], source: str = "build args") -> dict[str, str]:
    """``K=V`` items: a list (CLI), or an ini string with one per line or comma/space separated.

    In an ini value that spans several lines each line is one item, so values may hold spaces.
    pytest hands over the one-per-line form holding a single arg (``GREETING=hello world``) as
    one line: a line without commas whose only ``K=`` is at its start is that one arg. Any other
    line is split, so that a mistake in it is refused by position (its text may be a secret),
    never read as part of another arg's value.
    """
    if isinstance(raw, str):
        lines = [line.strip() for line in raw.splitlines() if line.strip()]
        if len(lines) > 1:
            items = lines
        else:  # one line, also from a TOML multi-line string holding one (it ends with a newline)
            pieces = split_list(raw)
            one_arg = "," not in raw and not any(_BUILD_ARG_ITEM.match(piece) for piece in pieces[1:])
            items = lines if one_arg else pieces
    else:
        items = list(raw)
    result: dict[str, str] = {}
    for number, item in enumerate(items, 1):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not BUILD_ARG_KEY.match(key):
            # Its position only: any of its text may be a secret given in the wrong form
            # ("API_KEY: s3cr3t==", or a bare token).
            missing = "it has no '='; " if not sep else ""
            shown = f"number {number} of {source} ({missing}its text is not shown: it may hold a secret)"
            raise UsageError(
                f"malformed build arg {shown}: write KEY=VALUE, for example "
                f"--multiarch-build-arg BASE_IMAGE=python:3.12-slim."
            )
        result[key] = value
    return result


def parse_port(raw: Any, source: str = "multiarch_port") -> int | None:
    if raw is None or raw == "":
        return None
    try:
        port = int(str(raw).split("/")[0])
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise UsageError(f"{source} {raw!r} is not a port number (1-65535).")
    return port


def parse_ready_path(raw: Any, source: str = "multiarch_ready_path") -> str:
    path = str(raw or "/").strip()
    if "://" in path:
        raise UsageError(
            f"{source} {path!r} is a URL; give the path only, e.g. /health: it is polled on the "
            f"port the container publishes on 127.0.0.1."
        )
    return path if path.startswith("/") else "/" + path


def parse_positive(raw: Any, name: str, default: float) -> float:
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:  # also refuses nan, with which no deadline ever passes
        raise UsageError(f"{name} {raw!r} is not a positive finite number.")
    return value


def parse_count(raw: Any, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{name} {raw!r} is not a whole number of at least 1.")
    return value
