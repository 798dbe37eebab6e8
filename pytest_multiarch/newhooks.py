"""Hookspecs of pytest-multiarch, registered through ``pytest_addhooks``.

Implement them in a conftest.py or a plugin, like any pytest hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.platforms import Platform
    from pytest_multiarch.run import MultiarchContainer


@pytest.hookspec
def pytest_multiarch_modify_platforms(config: pytest.Config, platforms: list[Platform]) -> None:
    """Change the platform list in place, before tests are parametrized. It holds ``Platform``
    objects (``native`` already replaced by each engine's own platform); you may add strings
    (``"arm64"``), which are normalized, and duplicates are dropped.

    Example: test arm/v7 only on nightly runs::

        def pytest_multiarch_modify_platforms(config, platforms):
            if not os.environ.get("NIGHTLY"):
                platforms[:] = [p for p in platforms if p.arch != "arm"]
    """


@pytest.hookspec
def pytest_multiarch_build_args(config: pytest.Config, image: ImageSpec, platform: Platform) -> dict[str, str] | None:
    """Return extra build args for building ``image`` for ``platform`` (merged over the
    configured ones; they are part of the build key). Keep it free of side effects: it may be
    called more than once, and from a background thread when the session starts.

    Example::

        def pytest_multiarch_build_args(config, image, platform):
            return {"TARGET_ARCH": platform.arch}
    """


@pytest.hookspec
def pytest_multiarch_container_started(config: pytest.Config, container: MultiarchContainer) -> None:
    """Called once per container after it is ready and before the first test gets it, e.g. to
    seed data. An exception raised here (or ``pytest.fail``) errors that platform's tests,
    ``pytest.skip`` skips them; either way the container is removed at once.

    Example::

        def pytest_multiarch_container_started(config, container):
            container.exec(["sh", "-c", "echo seeded > /tmp/seed"])
    """
