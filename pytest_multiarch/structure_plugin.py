"""``multiarch_structure_tests`` (ini, paths or globs relative to the rootdir, one per line) and
``--multiarch-structure-tests PATH``: existing container-structure-test files run on every
platform as pytest items (structure_items.py). The files are read when pytest configures, so a
mistake in one is a usage error before anything builds. Files named by the command line are
always collected; the ini's are collected when pytest is not given paths of its own (or
when the paths it is given contain them)."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_multiarch.config import ImageSpec, runs_tests
from pytest_multiarch.errors import UsageError
from pytest_multiarch.values import split_lines

if TYPE_CHECKING:
    from pytest_multiarch.plugin import MultiarchPlugin
    from pytest_multiarch.structure_items import SpecOf, StructureFile
    from pytest_multiarch.structure_schema import StructureConfig

INI = "multiarch_structure_tests"
NAME = "multiarch-structure"
STRUCTURE_ATTRIBUTE = "_multiarch_structure_tests"  # on a declared image's fixtures (declare.py)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("multiarch")
    group.addoption(
        "--multiarch-structure-tests",
        dest=INI,
        action="append",
        metavar="PATH",
        help="a container-structure-test YAML file to run against the default image on every platform, "
        "repeatable (ini: paths or globs relative to the rootdir, one per line)",
    )
    parser.addini(
        INI, help="container-structure-test files (globs, relative to the rootdir), one per line", default=None
    )


def register(config: pytest.Config, plugin: MultiarchPlugin) -> None:
    """Read the configured files (a UsageError names the file, the test and the field) and add
    the hooks that collect them."""
    rootdir = Path(config.rootpath)
    from_cli = list(config.getoption(INI) or [])
    from_ini = split_lines(config.getini(INI) or "")
    if not from_cli and not from_ini:
        config.pluginmanager.register(StructurePlugin(config, plugin, {}, []), NAME)
        return
    files: dict[Path, tuple[StructureConfig, SpecOf]] = {}
    for pattern in from_ini:
        for path in _matching(rootdir, pattern, f"ini {INI}"):
            files[path] = (_parse(path, rootdir), _default_image)
    cli: list[Path] = []
    for given in from_cli:
        path = (Path(config.invocation_params.dir) / given).resolve()
        if not path.is_file():
            raise UsageError(f"--multiarch-structure-tests {given}: no such file.")
        files[path] = (_parse(path, rootdir), _default_image)
        cli.append(path)
    config.pluginmanager.register(StructurePlugin(config, plugin, files, cli), NAME)


def _matching(rootdir: Path, pattern: str, source: str) -> list[Path]:
    found = sorted(Path(p).resolve() for p in glob.glob(str(rootdir / pattern), recursive=True))
    found = [p for p in found if p.is_file()]
    if not found:
        raise UsageError(
            f"{source}: {pattern!r} names no file (paths and globs are relative to the rootdir {rootdir})."
        )
    return found


def _parse(path: Path, rootdir: Path) -> StructureConfig:
    from pytest_multiarch.structure_fields import parse_file

    try:
        shown = str(path.relative_to(rootdir))
    except ValueError:
        shown = str(path)
    return parse_file(path, shown)


def _default_image(config: pytest.Config) -> ImageSpec:
    from pytest_multiarch.fixtures import state

    return state(config).settings.image


class StructurePlugin:
    """Collects the structure test files and starts the builds their items need."""

    def __init__(
        self,
        config: pytest.Config,
        plugin: MultiarchPlugin,
        files: dict[Path, tuple[StructureConfig, SpecOf]],
        cli: list[Path],
    ) -> None:
        self.config = config
        self.plugin = plugin
        self.files = files
        self.cli = cli

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """Declared images' files (their conftests are loaded now), and the files pytest's own
        paths do not reach: added to the paths it collects."""
        self._declared()
        explicit = self.config.args_source == pytest.Config.ArgsSource.ARGS
        roots = [(Path(self.config.invocation_params.dir) / a.split("::")[0]).resolve() for a in self.config.args]
        for path in self.files:
            if explicit and path not in self.cli:
                continue
            if not any(path == root or root in path.parents for root in roots):
                self.config.args.append(str(path))

    def _declared(self) -> None:
        rootdir = Path(self.config.rootpath)
        for module in self.config.pluginmanager.get_plugins():
            for value in list(getattr(module, "__dict__", {}).values()):
                # Only our fixtures: other plugins hold objects that answer any attribute
                # (pytest-xdist's execnet Producer), so check what came back.
                patterns = getattr(value, STRUCTURE_ATTRIBUTE, None)
                spec_of = getattr(value, "_multiarch_spec_of", None)
                if not isinstance(patterns, (list, tuple)) or not patterns or not callable(spec_of):
                    continue
                name = getattr(value, "_multiarch_prefix", "?")
                for pattern in patterns:
                    for path in _matching(rootdir, pattern, f'structure_tests= of multiarch_fixtures("{name}", ...)'):
                        self.files.setdefault(path, (_parse(path, rootdir), spec_of))

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> StructureFile | None:
        found = self.files.get(file_path.resolve())
        if found is None:
            return None
        from pytest_multiarch.structure_items import StructureFile

        node = StructureFile.from_parent(parent, path=file_path)
        node.structure, node.spec_of = found
        return node

    @pytest.hookimpl(trylast=True)  # after the project's own hooks added their marks
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """``@pytest.mark.multiarch`` rules for structure items, whose markers a conftest's
        hook adds (a YAML has no decorators): each item gets its platform's xfail or skip, and
        those of a platform that platforms= leaves out are deselected."""
        from pytest_multiarch import marker
        from pytest_multiarch.structure_items import StructureItem

        ours = [item for item in items if isinstance(item, StructureItem)]
        if not ours:
            return
        try:
            platforms, known, native = marker.context(self.plugin.session, self.plugin.settings.named_platforms)
            dropped = marker.apply_to_items(ours, platforms, known, native)  # type: ignore[arg-type]
        except UsageError as exc:
            raise pytest.UsageError(f"pytest-multiarch: {exc}") from None
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            gone = set(map(id, dropped))
            items[:] = [item for item in items if id(item) not in gone]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Start the builds (or pulls) the structure items need, as for other tests."""
        from pytest_multiarch.structure_items import StructureItem

        wanted: list[tuple[ImageSpec, object, bool]] = []
        for item in session.items:
            if isinstance(item, StructureItem):
                entry = (item.structure_file.spec_of(self.config), item.multiarch_platform, False)
                if entry not in wanted:
                    wanted.append(entry)
        if wanted and runs_tests(self.config):
            self.plugin.session.prefetch(wanted)  # type: ignore[arg-type]
