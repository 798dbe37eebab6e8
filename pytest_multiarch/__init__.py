"""pytest-multiarch: build a container image per CPU platform and run your tests against each.

Public API: the fixtures ``multiarch_platform``, ``multiarch_image``, ``multiarch_container``,
``multiarch_http``, ``multiarch_index``, the marker ``@pytest.mark.multiarch(platforms=[...])``,
the hooks in ``newhooks``, and the names exported here. They are loaded on first use, so that
merely having the plugin installed costs a pytest run next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_multiarch.build import BuiltImage, ImageConfig
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.declare import multiarch_fixtures
    from pytest_multiarch.errors import (
        BuildError,
        CommandTimeout,
        ContainerError,
        EngineError,
        EngineGone,
        EngineRefused,
        ExecError,
        ImageMismatch,
        MultiarchError,
        PlatformUnavailable,
        UsageError,
    )
    from pytest_multiarch.fixtures import ImageFixtures
    from pytest_multiarch.gate import GateError, PublishedIndex
    from pytest_multiarch.http import ContainerHTTP, RequestTimeout
    from pytest_multiarch.networks import ServiceNetwork
    from pytest_multiarch.oneshot import RunResult, RunTimeout
    from pytest_multiarch.platforms import Platform
    from pytest_multiarch.run import FileInfo, MultiarchContainer

_EXPORTS = {
    "BuildError": "errors",
    "BuiltImage": "build",
    "ContainerError": "errors",
    "ContainerHTTP": "http",
    "EngineError": "errors",
    "ExecError": "errors",
    "GateError": "gate",
    "ImageFixtures": "fixtures",
    "ImageMismatch": "errors",
    "ImageSpec": "config",
    "MultiarchContainer": "run",
    "MultiarchError": "errors",
    "Platform": "platforms",
    "PlatformUnavailable": "errors",
    "PublishedIndex": "gate",
    "UsageError": "errors",
    "multiarch_fixtures": "declare",
    "FileInfo": "run",
    "RunResult": "oneshot",
    "RunTimeout": "oneshot",
    "ServiceNetwork": "networks",
    "ImageConfig": "build",
    "CommandTimeout": "errors",
    "EngineGone": "errors",
    "EngineRefused": "errors",
    "RequestTimeout": "http",
}
__all__ = [
    "BuildError",
    "BuiltImage",
    "CommandTimeout",
    "ContainerError",
    "ContainerHTTP",
    "EngineError",
    "EngineGone",
    "EngineRefused",
    "ExecError",
    "FileInfo",
    "GateError",
    "ImageConfig",
    "ImageFixtures",
    "ImageMismatch",
    "ImageSpec",
    "MultiarchContainer",
    "MultiarchError",
    "Platform",
    "PlatformUnavailable",
    "PublishedIndex",
    "RequestTimeout",
    "RunResult",
    "RunTimeout",
    "ServiceNetwork",
    "UsageError",
    "multiarch_fixtures",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_multiarch' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pytest_multiarch.{module}"), name)
