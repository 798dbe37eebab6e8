"""Configuration: every setting is a CLI flag and an ini key (options.py), and the CLI wins.

``Settings.from_pytest`` reads and validates them into plain values so that the rest of the
package never touches ``pytest.Config``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_multiarch.archcheck import parse_mode
from pytest_multiarch.errors import UsageError
from pytest_multiarch.options import (
    DEFAULT_BUILD_JOBS,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TIMEOUT,
    EMULATION_TIMEOUT_FACTOR,
    add_options,
    runs_tests,
)
from pytest_multiarch.platforms import Platform, parse_platforms_or_native
from pytest_multiarch.podman import parse_runtime
from pytest_multiarch.secrets import BuildSecret, parse_secret, parse_ssh
from pytest_multiarch.timeouts import PlatformSeconds
from pytest_multiarch.values import (  # noqa: F401  (also imported from here)
    BUILD_ARG_KEY,
    parse_build_args,
    parse_count,
    parse_engines,
    parse_env,
    parse_port,
    parse_positive,
    parse_ready_path,
    split_lines,
)

__all__ = ["EMULATION_TIMEOUT_FACTOR", "ImageSpec", "Settings", "add_options", "runs_tests"]


EnvValue = str | Callable[..., str]  # a callable gets the values of depends_on's fixtures


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """What to build and how to run it; one per image a project declares."""

    name: str
    context: Path
    dockerfile: Path
    build_args: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # may hold secrets
    target: str | None = None
    port: int | None = None
    ready_path: str | None = "/"  # None: no HTTP probe, ready once it runs
    # How its container runs (not part of the build key):
    environment: dict[str, EnvValue] = dataclasses.field(default_factory=dict, repr=False)  # may hold secrets
    command: tuple[str, ...] | None = None  # replaces the image's CMD
    entrypoint: tuple[str, ...] | None = None  # replaces its ENTRYPOINT
    ports: tuple[int, ...] = ()  # more container ports to publish, besides ``port``
    ready_log: str | None = None  # ready once this text appears in its logs (instead of HTTP)
    depends_on: tuple[str, ...] = ()  # fixtures set up before its container starts
    # How it builds, besides build args: buildx --secret and --ssh (ids and sources, never values)
    secrets: tuple[BuildSecret, ...] = ()
    ssh: tuple[str, ...] = ()

    def __hash__(self) -> int:  # the dicts are hashed by their items; a callable by identity
        return hash(
            (
                self.name,
                self.context,
                self.dockerfile,
                tuple(sorted(self.build_args.items())),
                self.target,
                self.port,
                self.ready_path,
                tuple(sorted((k, v if isinstance(v, str) else id(v)) for k, v in self.environment.items())),
                self.command,
                self.entrypoint,
                self.ports,
                self.ready_log,
                self.depends_on,
                self.secrets,
                self.ssh,
            )
        )

    def for_build(self) -> ImageSpec:
        """Only what decides the image: declarations that differ in how their containers run
        share one build."""
        return dataclasses.replace(
            self,
            port=None,
            ready_path="/",
            environment={},
            command=None,
            entrypoint=None,
            ports=(),
            ready_log=None,
            depends_on=(),
        )

    @property
    def needs_fixtures(self) -> bool:
        """Its container can start only once fixtures of the test session are set up."""
        return bool(self.depends_on) or any(not isinstance(v, str) for v in self.environment.values())

    @property
    def resolved_environment(self) -> dict[str, str]:
        """The environment when no value is a callable still to be called (see fixtures.py)."""
        return {k: v for k, v in self.environment.items() if isinstance(v, str)}

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


class Need(NamedTuple):
    """What the collected tests need of one image on one platform: its build, and when
    ``container`` its container too (plugin.py collects them, session.prefetch starts them,
    early.py records them for the next run)."""

    spec: ImageSpec
    platform: Platform
    container: bool


@dataclasses.dataclass(frozen=True)
class Settings:
    """Session-wide settings, validated."""

    platforms: list[Platform] | None  # None: the engine's native platform
    image: ImageSpec
    timeouts: PlatformSeconds = dataclasses.field(default_factory=lambda: PlatformSeconds(DEFAULT_TIMEOUT))
    request_timeouts: PlatformSeconds = dataclasses.field(
        default_factory=lambda: PlatformSeconds(DEFAULT_REQUEST_TIMEOUT)
    )
    native: bool = False  # "native" among the platforms: each engine's own platform (session.py)
    named_platforms: tuple[Platform, ...] = ()  # every platform the ini or the command line names
    strict: bool = False
    rebuild: bool = False  # also when no_cache or pull: they only act in a build
    no_cache: bool = False  # --multiarch-no-cache: buildx --no-cache
    pull: bool = False  # --multiarch-pull: buildx --pull
    build_jobs: int = DEFAULT_BUILD_JOBS
    published: str | None = None  # --multiarch-image: test this reference instead of building
    reuse: bool = False
    cache_from: str | None = None
    cache_to: str | None = None
    engines: dict[Platform, str] = dataclasses.field(default_factory=dict)  # --multiarch-engine
    builder: str | None = None  # --multiarch-builder; None: the CLI's current builder
    container_host: str | None = None  # --multiarch-container-host, for the default engine
    summary_file: str | None = None  # where the Markdown summary is appended (None: nowhere)
    arch_check: str = "commands"  # --multiarch-arch-check: commands, all or off (archcheck.py)
    arch_ignore: tuple[str, ...] = ()  # --multiarch-arch-ignore globs
    runtime: str = "docker"  # --multiarch-runtime: docker or podman (podman.py)

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> Settings:
        get = functools.partial(_setting, config)
        platforms, native = _platform_selection(config)
        reuse = bool(get("multiarch_reuse"))
        published = (get("multiarch_image") or "").strip() or None
        if published and platforms is None:
            raise UsageError(
                "--multiarch-image checks a published image on the platforms you ship, so name them: "
                "--multiarch-platforms linux/amd64,linux/arm64 (or ini multiarch_platforms). Without "
                "them only this machine's platform would be tested, and a missing one would go unnoticed."
            )

        return cls(
            platforms=platforms,
            image=_project_image(config),
            timeouts=PlatformSeconds.parse(get("multiarch_timeout"), "multiarch_timeout", DEFAULT_TIMEOUT),
            request_timeouts=PlatformSeconds.parse(
                get("multiarch_request_timeout"), "multiarch_request_timeout", DEFAULT_REQUEST_TIMEOUT
            ),
            native=native,
            named_platforms=_named_platforms(config),
            strict=bool(get("multiarch_strict")),
            rebuild=bool(get("multiarch_rebuild") or get("multiarch_no_cache") or get("multiarch_pull")),
            no_cache=bool(get("multiarch_no_cache")),
            pull=bool(get("multiarch_pull")),
            published=published,
            reuse=reuse,
            cache_from=(get("multiarch_cache_from") or "").strip() or None,
            cache_to=(get("multiarch_cache_to") or "").strip() or None,
            build_jobs=parse_count(get("multiarch_build_jobs"), "multiarch_build_jobs", DEFAULT_BUILD_JOBS),
            engines={
                **parse_engines(config.getini("multiarch_engines") or "", "ini multiarch_engines"),
                **parse_engines(config.getoption("multiarch_engines") or [], "--multiarch-engine"),
            },
            builder=(get("multiarch_builder") or "").strip() or None,
            runtime=parse_runtime(get("multiarch_runtime")),
            summary_file=_summary_file(config),
            arch_check=parse_mode(get("multiarch_arch_check")),
            arch_ignore=tuple(
                [
                    *split_lines(config.getini("multiarch_arch_ignore")),
                    *(config.getoption("multiarch_arch_ignore") or []),
                ]
            ),
            container_host=(
                get("multiarch_container_host") or os.environ.get("TESTCONTAINERS_HOST_OVERRIDE") or ""
            ).strip()
            or None,
        )

    @property
    def buildx_flags(self) -> tuple[str, ...]:
        """buildx build's own flags for --multiarch-no-cache and --multiarch-pull."""
        return ("--no-cache",) * self.no_cache + ("--pull",) * self.pull

    @property
    def timeout(self) -> float:
        """The default readiness timeout (a native platform's)."""
        return self.timeouts.default

    @property
    def request_timeout(self) -> float:
        return self.request_timeouts.default

    def timeout_for(self, platform: Platform) -> float:
        """Seconds a container of ``platform`` may take to be ready (see PlatformSeconds)."""
        return self.timeouts.for_platform(platform)

    def request_timeout_for(self, platform: Platform) -> float:
        """Seconds one HTTP request or exec command may take on ``platform``."""
        return self.request_timeouts.for_platform(platform)


def _setting(config: pytest.Config, ini: str) -> Any:
    """The command line's value of ``ini``'s option when given, else the ini file's (or its
    default); UsageError naming the key for a value pytest cannot read."""
    cli = config.getoption(ini, default=None)
    if cli not in (None, []):
        return cli
    try:
        return config.getini(ini)
    except (ValueError, pytest.UsageError) as exc:  # a bool key's "maybe": pytest's message names no key
        raise UsageError(f"ini {ini}: {exc}; use true or false.") from None


def _platform_selection(config: pytest.Config) -> tuple[list[Platform] | None, bool]:
    """The platforms asked for (None: not set) and whether "native" is among them; UsageError
    for a list that names none."""
    raw_platforms = _setting(config, "multiarch_platforms")
    if raw_platforms is None:
        return None, False
    platforms, native = parse_platforms_or_native(raw_platforms)
    if not platforms and not native:
        raise UsageError(
            "the platform list is empty: give at least one platform, for example "
            "--multiarch-platforms linux/amd64,linux/arm64 (or leave it unset for the "
            "engine's native platform)."
        )
    return platforms, native


def _project_image(config: pytest.Config) -> ImageSpec:
    """The project's own image as the options and ini say (context, Dockerfile, build args,
    environment, secrets, ssh), each checked; its secrets' sources only when it is built."""
    get = functools.partial(_setting, config)
    context = Path(config.rootpath) / (get("multiarch_context") or ".")
    dockerfile = context / (get("multiarch_dockerfile") or "Dockerfile")
    build_args = parse_build_args(config.getini("multiarch_build_args") or "", "ini multiarch_build_args")
    build_args.update(parse_build_args(config.getoption("multiarch_build_args") or [], "--multiarch-build-arg"))
    environment: dict[str, EnvValue] = dict(parse_env(config.getini("multiarch_env") or "", "ini multiarch_env"))
    environment.update(parse_env(config.getoption("multiarch_env") or [], "--multiarch-env"))
    secrets = [parse_secret(item, "ini multiarch_secrets") for item in split_lines(config.getini("multiarch_secrets"))]
    secrets += [parse_secret(item, "--multiarch-secret") for item in config.getoption("multiarch_secrets") or []]
    ssh = [parse_ssh(item, "ini multiarch_ssh") for item in split_lines(config.getini("multiarch_ssh"))]
    ssh += [parse_ssh(item, "--multiarch-ssh") for item in config.getoption("multiarch_ssh") or []]
    if not (get("multiarch_image") or "").strip():  # a release gate builds nothing: not needed there
        for secret in secrets:
            secret.check("--multiarch-secret")
    return ImageSpec(
        name="",
        context=context,
        dockerfile=dockerfile,
        build_args=build_args,
        target=get("multiarch_target") or None,
        port=parse_port(get("multiarch_port")),
        ready_path=parse_ready_path(get("multiarch_ready_path")),
        environment=environment,
        secrets=tuple(secrets),
        ssh=tuple(ssh),
    )


def _named_platforms(config: pytest.Config) -> tuple[Platform, ...]:
    """The platforms of the ini and of the command line: a marker or a timeout may name one the
    ini lists while this run tests fewer (``--multiarch-platforms native`` on a pull request)."""
    named: list[Platform] = []
    for raw in (config.getini("multiarch_platforms"), config.getoption("multiarch_platforms", default=None)):
        if raw:
            named += parse_platforms_or_native(raw)[0]
    return tuple(dict.fromkeys(named))


def _summary_file(config: pytest.Config) -> str | None:
    """--multiarch-summary-file, else the ini, else $GITHUB_STEP_SUMMARY; "" (the --no- form)
    turns it off."""
    chosen = config.getoption("multiarch_summary_file", default=None)
    if chosen is None:
        chosen = config.getini("multiarch_summary_file") or os.environ.get("GITHUB_STEP_SUMMARY")
    return (chosen or "").strip() or None
