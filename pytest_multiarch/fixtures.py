"""Fixtures: the built image, the running container and an HTTP session, per platform.

``multiarch_fixtures`` makes the three fixtures for one image; the plugin uses it for the
default image (``multiarch_image``, ``multiarch_container``, ``multiarch_http``) and a project
with more images calls it in its conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import pytest

from pytest_multiarch.config import BUILD_ARG_KEY, ImageSpec, parse_port, parse_ready_path
from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:  # the engine-facing modules load only when a fixture is used
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.http import ContainerHTTP
    from pytest_multiarch.run import MultiarchContainer

SpecFactory = Callable[[pytest.Config], ImageSpec]

# fixture-name prefix → how to get its ImageSpec; read at collection to start builds early.
REGISTRY: dict[str, SpecFactory] = {}
SPEC_OF_ATTRIBUTE = "_multiarch_spec_of"


class ImageFixtures(NamedTuple):
    image: Any
    container: Any
    http: Any


def multiarch_fixtures(
    name: str,
    *,
    context: str | Path = ".",
    dockerfile: str | Path = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    port: int | None = None,
    ready_path: str = "/",
) -> ImageFixtures:
    """Declare one more image; returns fixtures ``<name>_image``, ``<name>_container`` and
    ``<name>_http``. Assign them to module-level names in a conftest.py::

        api_image, api_container, api_http = multiarch_fixtures("api", context="api", port=8000)

    ``context`` is relative to the rootdir and ``dockerfile`` to the context. The configured build
    args (``--multiarch-build-arg``, ini ``multiarch_build_args``) apply on top of ``build_args``.
    Tests using them are parametrized over the platforms exactly like ``multiarch_image``.
    """
    if not name.isidentifier():
        raise UsageError(f"multiarch_fixtures name {name!r} must be a Python identifier, e.g. 'api'.")
    where = f'multiarch_fixtures("{name}", ...)'
    declared = _declared_build_args(build_args, where)
    port = parse_port(port, f"port= of {where}")
    ready_path = parse_ready_path(ready_path, f"ready_path= of {where}")

    def spec_of(config: pytest.Config) -> ImageSpec:
        from pytest_multiarch.plugin import settings_of

        settings = settings_of(config)
        root = Path(config.rootpath) / context
        return ImageSpec(
            name=name,
            context=root,
            dockerfile=root / dockerfile,
            build_args={**declared, **settings.image.build_args},
            target=target,
            port=port,
            ready_path=ready_path,
        )

    return make_fixtures(name, spec_of)


def _declared_build_args(build_args: Mapping[str, Any] | None, where: str) -> dict[str, str]:
    """The declaration's build args as strings; numbers are written out, anything else is a
    mistake reported by key (a value may be a secret)."""
    if build_args is None:
        return {}
    if not isinstance(build_args, Mapping):
        raise UsageError(f"build_args= of {where} must be a dict of KEY: value, not a {type(build_args).__name__}.")
    declared = {}
    for key, value in build_args.items():
        if not isinstance(key, str) or not BUILD_ARG_KEY.match(key):
            raise UsageError(f"build_args= of {where}: {key!r} is not a build arg name (letters, digits, _ . -).")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(f"build_args= of {where}: the value of {key} is a {type(value).__name__}; give a string.")
        declared[key] = str(value)
    return declared


def make_fixtures(prefix: str, spec_of: SpecFactory) -> ImageFixtures:
    REGISTRY[prefix] = spec_of

    def image_fixture(request: pytest.FixtureRequest, multiarch_platform: Platform) -> BuiltImage:
        from pytest_multiarch.plugin import multiarch_session, say

        return multiarch_session(request.config).image(spec_of(request.config), multiarch_platform, say(request.config))

    def container_fixture(request: pytest.FixtureRequest, multiarch_platform: Platform) -> MultiarchContainer:
        from pytest_multiarch.plugin import multiarch_session, release_when_finished, say

        spec = spec_of(request.config)
        container = multiarch_session(request.config).container(spec, multiarch_platform, say(request.config))
        release_when_finished(request, spec, multiarch_platform)
        return container

    def http_fixture(
        request: pytest.FixtureRequest, multiarch_platform: Platform
    ) -> Generator[ContainerHTTP, None, None]:
        # multiarch_platform is named so that pytest parametrizes tests using only this fixture.
        from pytest_multiarch.http import ContainerHTTP

        container: MultiarchContainer = request.getfixturevalue(f"{prefix}_container")
        with ContainerHTTP(container) as session:
            yield session

    for function in (image_fixture, container_fixture, http_fixture):
        # Which declaration a test really uses, when conftests of two folders declare one name.
        setattr(function, SPEC_OF_ATTRIBUTE, spec_of)
    return ImageFixtures(
        pytest.fixture(scope="session", name=f"{prefix}_image")(image_fixture),
        pytest.fixture(scope="session", name=f"{prefix}_container")(container_fixture),
        pytest.fixture(name=f"{prefix}_http")(http_fixture),
    )


def spec_of_item(item: pytest.Item, prefix: str) -> SpecFactory:
    """The spec factory of the ``prefix`` fixtures ``item`` uses: the declaration nearest to it,
    not the last one made (REGISTRY), should two folders' conftests declare the same name."""
    name2defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None) or {}
    for suffix in ("_container", "_image", "_http"):
        for definition in reversed(name2defs.get(prefix + suffix, ())):  # past a user's override
            found = getattr(definition.func, SPEC_OF_ATTRIBUTE, None)
            if found is not None:
                return cast(SpecFactory, found)
    return REGISTRY[prefix]
