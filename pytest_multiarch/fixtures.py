"""Fixtures: the platform, the built image, the running container and an HTTP session.

``multiarch_fixtures`` makes the three image fixtures for one image; the plugin uses it for the
default image (``multiarch_image``, ``multiarch_container``, ``multiarch_http``) and a project
with more images calls it in its conftest.py. Fixtures reach the session's state through the
plugin object registered under ``STATE`` (plugin.py), never through module globals, so nothing
one in-process pytest session declares leaks into the next.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import pytest

from pytest_multiarch.config import ImageSpec, Settings
from pytest_multiarch.errors import EngineError, PlatformUnavailable, UsageError
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:  # the engine-facing modules load only when a fixture is used
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.gate import PublishedIndex
    from pytest_multiarch.http import ContainerHTTP
    from pytest_multiarch.networks import ServiceNetwork
    from pytest_multiarch.oneshot import RunResult
    from pytest_multiarch.plugin import MultiarchPlugin
    from pytest_multiarch.run import MultiarchContainer

SpecFactory = Callable[[pytest.Config], ImageSpec]
SPEC_OF_ATTRIBUTE = "_multiarch_spec_of"
PREFIX_ATTRIBUTE = "_multiarch_prefix"
STATE = "multiarch-state"  # the name plugin.py registers its MultiarchPlugin under
SUFFIXES = ("_image", "_container", "_http", "_run")


def state(config: pytest.Config) -> MultiarchPlugin:
    """The plugin object that owns this session's state."""
    found = config.pluginmanager.get_plugin(STATE)
    if found is None:
        raise UsageError("pytest-multiarch is not active in this run (was it disabled with -p no:multiarch?).")
    return cast("MultiarchPlugin", found)


class ImageFixtures(NamedTuple):
    image: Any
    container: Any
    http: Any


def make_fixtures(prefix: str, spec_of: SpecFactory) -> ImageFixtures:
    def image_fixture(request: pytest.FixtureRequest, multiarch_platform: Platform) -> BuiltImage:
        plugin = state(request.config)
        return plugin.session.image(spec_of(request.config), multiarch_platform, plugin.say)

    def container_fixture(request: pytest.FixtureRequest, multiarch_platform: Platform) -> MultiarchContainer:
        plugin = state(request.config)
        spec = spec_of(request.config)
        environment = _environment_of(request, spec)
        container = plugin.session.container(spec, multiarch_platform, plugin.say, environment)
        plugin.release_when_finished(request, spec, multiarch_platform)
        return container

    def http_fixture(
        request: pytest.FixtureRequest, multiarch_platform: Platform
    ) -> Generator[ContainerHTTP, None, None]:
        # multiarch_platform is named so that pytest parametrizes tests using only this fixture.
        from pytest_multiarch.http import ContainerHTTP

        container: MultiarchContainer = request.getfixturevalue(f"{prefix}_container")
        with ContainerHTTP(container) as session:
            yield session

    what = _described(prefix)
    image_fixture.__doc__ = (
        f"{what[0].upper()}{what[1:]} built for this test's platform, once per session: a BuiltImage "
        "(.tag, .id, .platform, .config, .elf(path))."
    )
    container_fixture.__doc__ = (
        f"The running container of {what} on this test's platform, started once and ready when its ready "
        "path answers: a MultiarchContainer (.url(path), .exec(cmd), .logs(), .read_file(path), .file_info(path))."
    )
    http_fixture.__doc__ = (
        f"A requests.Session whose paths (.get('/health')) go to the container of {what} on this test's platform."
    )
    made = (
        pytest.fixture(scope="session", name=f"{prefix}_image")(image_fixture),
        pytest.fixture(scope="session", name=f"{prefix}_container")(container_fixture),
        pytest.fixture(name=f"{prefix}_http")(http_fixture),
    )
    _mark(prefix, spec_of, image_fixture, container_fixture, http_fixture, *made)
    return ImageFixtures(*made)


def make_run_fixture(prefix: str, spec_of: SpecFactory) -> Any:
    """``<prefix>_run``: a callable that runs the image once as the test's platform."""

    def run_fixture(request: pytest.FixtureRequest, multiarch_platform: Platform) -> Callable[..., RunResult]:
        plugin = state(request.config)
        spec = spec_of(request.config)
        # The image now, in the test's setup: a failed build or architecture check errors the
        # test with its message, as the other image fixtures do, instead of failing it.
        plugin.session.image(spec, multiarch_platform, plugin.say)

        def run(
            *args: str,
            entrypoint: list[str] | None = None,
            env: Mapping[str, str] | None = None,
            stdin: bytes | str | None = None,
            timeout: float | None = None,
        ) -> RunResult:
            options = {"entrypoint": entrypoint, "environment": env, "stdin": stdin, "timeout": timeout}
            return plugin.session.run(spec, multiarch_platform, plugin.say, args, **options)

        return run

    run_fixture.__doc__ = (
        f"Run {_described(prefix)} once on this test's platform, as `docker run --rm` would: "
        f"{prefix}_run('--version') returns .exit_code, .stdout, .stderr."
    )
    made = pytest.fixture(name=f"{prefix}_run")(run_fixture)
    _mark(prefix, spec_of, run_fixture, made)
    return made


def _described(prefix: str) -> str:
    """How ``pytest --fixtures`` names the image of a fixture."""
    if prefix == "multiarch":
        return "the default image (the Dockerfile of multiarch_context)"
    return f'the image "{prefix}" declared with multiarch_fixtures'


def _mark(prefix: str, spec_of: SpecFactory, *functions: Any) -> None:
    """Which declaration a fixture belongs to: a test uses the one nearest to it, when conftests
    of two folders declare one name."""
    for function in functions:
        setattr(function, SPEC_OF_ATTRIBUTE, spec_of)
        setattr(function, PREFIX_ATTRIBUTE, prefix)


def _environment_of(request: pytest.FixtureRequest, spec: ImageSpec) -> dict[str, str] | None:
    """The container's environment once its depends_on fixtures are set up: each callable value
    gets their values. None when the declaration has neither."""
    if not spec.depends_on and len(spec.resolved_environment) == len(spec.environment):
        return None
    values = [request.getfixturevalue(name) for name in spec.depends_on]
    environment: dict[str, str] = {}
    for key, value in spec.environment.items():
        found = value(*values) if callable(value) else value
        if not isinstance(found, str):
            raise UsageError(
                f'environment= of multiarch_fixtures("{spec.name}", ...): the callable for {key} returned a '
                f"{type(found).__name__}; return a string."
            )
        environment[key] = found
    return environment


def declarations(plugins: Iterable[object]) -> dict[str, SpecFactory]:
    """Fixture prefix → spec factory of every image declared in the modules of ``plugins``
    (conftests and the plugin itself) loaded so far."""
    found: dict[str, SpecFactory] = {}
    for plugin in plugins:
        for value in list(getattr(plugin, "__dict__", {}).values()):
            spec_of = getattr(value, SPEC_OF_ATTRIBUTE, None)
            prefix = getattr(value, PREFIX_ATTRIBUTE, None)
            if spec_of is not None and isinstance(prefix, str):
                found.setdefault(prefix, spec_of)
    return found


def declarations_of_item(item: pytest.Item) -> dict[str, SpecFactory]:
    """Fixture prefix → spec factory of each declared image ``item`` uses: the declaration
    nearest to it, should two folders' conftests declare the same name. pytest has no public
    API for an item's fixture definitions: this reads ``item._fixtureinfo``."""
    name2defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None) or {}
    found: dict[str, SpecFactory] = {}
    for name in getattr(item, "fixturenames", ()):
        for definition in reversed(name2defs.get(name, ())):  # past a user's override
            spec_of = getattr(definition.func, SPEC_OF_ATTRIBUTE, None)
            prefix = getattr(definition.func, PREFIX_ATTRIBUTE, None)
            if spec_of is not None and isinstance(prefix, str):
                found.setdefault(prefix, cast(SpecFactory, spec_of))
                break
    return found


# -- the plugin's own fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def multiarch_platform(request: pytest.FixtureRequest) -> Platform:
    """The platform this test runs for, with ``emulated`` set by the engine's preflight."""
    platform = getattr(request, "param", None)
    if not isinstance(platform, Platform):
        raise UsageError(
            "multiarch_platform is only available to tests parametrized by pytest-multiarch "
            "(request it as a test argument, not through request.getfixturevalue)."
        )
    return resolved_platform(request.config, platform)


def resolved_platform(config: pytest.Config, platform: Platform) -> Platform:
    """``platform`` with ``emulated`` set; a platform the engine cannot run skips, or fails
    when it must run (--multiarch-strict, a release gate, CI, --multiarch-engine)."""
    plugin = state(config)
    settings = plugin.settings
    because = _must_run_because(settings.strict, settings.published is not None)
    if plugin.session.routed(platform):
        because = because or "--multiarch-engine names an engine for it"
    try:
        return plugin.session.resolve(platform)
    except PlatformUnavailable as exc:
        if because:  # a release gate, or CI, must never turn green by skipping a platform
            raise
        pytest.skip(str(exc))
    except EngineError as exc:
        if because:
            raise EngineError(f"{exc}\n(Docker-backed tests fail instead of skipping because {because}.)") from None
        pytest.skip(str(exc))


def _must_run_because(strict: bool, gate: bool) -> str:
    """Why a platform that cannot run fails instead of skipping ("" when it may skip)."""
    import os

    if strict:
        return "--multiarch-strict is set"
    if gate:
        return "--multiarch-image makes this run a release gate"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return "CI is set"
    return ""


@pytest.fixture(scope="session")
def multiarch_index(request: pytest.FixtureRequest) -> PublishedIndex:
    """The parsed index of --multiarch-image: ``.digest``, ``.media_type``, ``.manifests``."""
    plugin = state(request.config)
    if not plugin.settings.published:
        raise UsageError("multiarch_index needs --multiarch-image REF (ini multiarch_image).")
    return plugin.session.images.published_index()


def _default_image(config: pytest.Config) -> ImageSpec:
    settings: Settings = state(config).settings
    return settings.image


multiarch_image, multiarch_container, multiarch_http = make_fixtures("multiarch", _default_image)
multiarch_run = make_run_fixture("multiarch", _default_image)


@pytest.fixture(scope="session")
def multiarch_network(request: pytest.FixtureRequest, multiarch_platform: Platform) -> ServiceNetwork:
    """The session's network on this platform's engine (``.name``, ``.docker_host``): attach
    your service containers to it; the plugin's containers are there as ``app`` (the default
    image) and their declared names."""
    plugin = state(request.config)
    session = plugin.session
    return session.networks.of(session.engine_for(multiarch_platform), multiarch_platform)
