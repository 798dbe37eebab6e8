"""The project's pytest configuration as ``python -m pytest_multiarch doctor`` reads it: the
``multiarch_*`` keys of the first configuration file pytest would use in a directory (pytest's
order: pytest.toml, .pytest.toml, pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg),
so that the doctor checks the platforms, engines and builder the project's runs use."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli there
    import tomli as tomllib

PREFIX = "multiarch_"


def _toml(path: Path, *tables: str) -> dict[str, Any] | None:
    data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    for name in tables:
        data = data.get(name) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else None


def _ini(path: Path, section: str) -> dict[str, Any] | None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return dict(parser[section]) if parser.has_section(section) else None


def _text(value: Any) -> str:
    """A TOML list is one item per line, as an ini value would be."""
    if isinstance(value, list):
        return "\n".join(str(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _candidates(folder: Path) -> list[tuple[Path, Any]]:
    """(file, loader) in pytest's order; a loader returns the pytest table, or None when the
    file holds no pytest configuration (pytest.ini counts even without a [pytest] section)."""
    return [
        (folder / "pytest.toml", lambda p: _toml(p, "pytest") or {}),
        (folder / ".pytest.toml", lambda p: _toml(p, "pytest") or {}),
        (folder / "pytest.ini", lambda p: _ini(p, "pytest") or {}),
        (folder / ".pytest.ini", lambda p: _ini(p, "pytest") or {}),
        (folder / "pyproject.toml", lambda p: _toml(p, "tool", "pytest", "ini_options") or _toml(p, "tool", "pytest")),
        (folder / "tox.ini", lambda p: _ini(p, "pytest")),
        (folder / "setup.cfg", lambda p: _ini(p, "tool:pytest")),
    ]


def read(folder: Path) -> tuple[Path | None, dict[str, str]]:
    """The configuration file pytest would use in ``folder`` and its ``multiarch_*`` values
    (None, {} when there is none). An unreadable file is a ValueError naming it."""
    for path, load in _candidates(folder):
        if not path.is_file():
            continue
        try:
            table = load(path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error) as exc:
            raise ValueError(f"{path} cannot be read: {exc}") from None
        if table is not None:
            return path, {k: _text(v) for k, v in table.items() if k.startswith(PREFIX)}
    return None, {}
