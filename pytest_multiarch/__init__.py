"""pytest-multiarch: build a container image per CPU platform and run your tests against each.

Public API: the fixtures ``multiarch_platform``, ``multiarch_image``, ``multiarch_container``,
``multiarch_http``, the marker ``@pytest.mark.multiarch(platforms=[...])``, the hooks in
``newhooks``, and the names exported here.
"""

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import (
    BuildError,
    ContainerError,
    EngineError,
    ExecError,
    ImageMismatch,
    MultiarchError,
    PlatformUnavailable,
    UsageError,
)
from pytest_multiarch.fixtures import ContainerHTTP, ImageFixtures, multiarch_fixtures
from pytest_multiarch.platforms import Platform
from pytest_multiarch.run import MultiarchContainer

__all__ = [
    "BuildError",
    "BuiltImage",
    "ContainerError",
    "ContainerHTTP",
    "EngineError",
    "ExecError",
    "ImageFixtures",
    "ImageMismatch",
    "ImageSpec",
    "MultiarchContainer",
    "MultiarchError",
    "Platform",
    "PlatformUnavailable",
    "UsageError",
    "multiarch_fixtures",
]
__version__ = "0.1.0"
