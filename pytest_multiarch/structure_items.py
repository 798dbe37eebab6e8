"""Structure tests as pytest nodes: a file collects one collector per section and, in it, an
item per test and platform, ``<file>::commandTests::<name>[linux/arm64]``; the metadata test
is ``<file>::metadataTest[linux/arm64]``. An item's platform skips or fails as the
``multiarch_platform`` fixture makes other tests do; its image is the session's (built, or the
release gate's pulled manifest), waited for in setup so that a failed build errors the item."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import MultiarchError, UsageError
from pytest_multiarch.fixtures import resolved_platform, state
from pytest_multiarch.platforms import Platform
from pytest_multiarch.structure_schema import StructureConfig

if TYPE_CHECKING:
    from pytest_multiarch.build import BuiltImage

SpecOf = Callable[[pytest.Config], ImageSpec]
SECTIONS = (  # (YAML section, attribute of StructureConfig, StructureRun method)
    ("commandTests", "command_tests", "command"),
    ("fileExistenceTests", "file_existence_tests", "existence"),
    ("fileContentTests", "file_content_tests", "content"),
    ("licenseTests", "license_tests", "license"),
)


class StructureFailure(Exception):
    """A structure test's checks failed: CST's messages, one per line."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("\n".join(failures))
        self.failures = failures


class StructureFile(pytest.File):
    """A container-structure-test configuration file."""

    structure: StructureConfig
    spec_of: SpecOf

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        try:
            platforms = state(self.config).session.platforms()
        except UsageError as exc:
            raise pytest.UsageError(f"pytest-multiarch: {exc}") from None
        for section, attribute, method in SECTIONS:
            tests = getattr(self.structure, attribute)
            if tests:
                yield StructureSection.from_parent(self, name=section, tests=tests, method=method, platforms=platforms)
        if not self.structure.metadata.is_empty:
            for platform in platforms:
                yield StructureItem.from_parent(
                    self,
                    name=f"metadataTest[{platform}]",
                    test=self.structure.metadata,
                    method="metadata",
                    platform=platform,
                )


class StructureSection(pytest.Collector):
    """One section of a file (``commandTests``, ...): an item per test and platform."""

    def __init__(self, *, tests: tuple[Any, ...], method: str, platforms: list[Platform], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tests = tests
        self.method = method
        self.platforms = platforms

    def collect(self) -> Iterator[pytest.Item]:
        seen: dict[str, int] = {}
        for index, test in enumerate(self.tests):
            name = getattr(test, "name", None) or str(index)  # license tests have no name
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:  # CST allows repeated names; node ids may not repeat
                name = f"{name} ({seen[name]})"
            for platform in self.platforms:
                yield StructureItem.from_parent(
                    self, name=f"{name}[{platform}]", test=test, method=self.method, platform=platform, index=index
                )


class StructureItem(pytest.Item):
    """One structure test on one platform."""

    def __init__(self, *, test: Any, method: str, platform: Platform, index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test
        self.method = method
        self.multiarch_platform = platform  # plugin.platform_of_item reads it
        self.index = index  # its place in its section (CST reports in that order)
        self.image: BuiltImage | None = None
        file = self.getparent(StructureFile)
        assert file is not None
        self.structure_file = file

    def setup(self) -> None:
        plugin = state(self.config)
        platform = _resolved(self.config, self.multiarch_platform)
        spec = self.structure_file.spec_of(self.config)
        self.image = plugin.session.image(spec, platform, plugin.say)
        self.user_properties.append(("image", self.image.tag))

    def runtest(self) -> None:
        from pytest_multiarch.structure_checks import check_metadata
        from pytest_multiarch.structure_run import StructureRun

        assert self.image is not None
        plugin = state(self.config)
        run = StructureRun(plugin.session, self.image, self.structure_file.structure, self.config.rootpath)
        if self.method == "metadata":
            failures = check_metadata(self.test, run.image_config)
        else:
            failures = getattr(run, self.method)(self.test)
        if failures:
            raise StructureFailure(failures)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, StructureFailure):
            return f"[{self.multiarch_platform}] " + "\n".join(excinfo.value.failures)
        if isinstance(excinfo.value, MultiarchError):
            return f"[{self.multiarch_platform}] {type(excinfo.value).__name__}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # A line, not None: pytest places a skip mark's report at the item's line and needs one.
        return self.path, 0, self.nodeid.split("::", 1)[-1]


def _resolved(config: pytest.Config, platform: Platform) -> Platform:
    """As for any test of the platform: skips, or fails when it must run (fixtures.py)."""
    return resolved_platform(config, platform)
