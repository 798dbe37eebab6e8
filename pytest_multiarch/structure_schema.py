"""container-structure-test configuration files (schema 2.0.0, and 1.0.0 as CST 1.19 reads it),
read as CST reads them: go-yaml v2's strict decoding (an unknown or repeated field is an error,
a quoted number is not an integer, a missing ``shouldExist`` is true, ``uid: -1`` is "any").

Every mistake is one ``UsageError`` naming the file, the test and the field, with its line.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_multiarch.errors import UsageError
from pytest_multiarch.structure_go import GoRegexError, go_regex

VERSIONS = ("1.0.0", "2.0.0")
EXECUTABLE_BY = ("any", "owner", "group", "other")
_NULL = "tag:yaml.org,2002:null"
_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}


@dataclasses.dataclass(frozen=True)
class EnvVar:
    key: str = ""
    value: str = ""
    is_regex: bool = False


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """``containerRunOptions``: how every container of the file runs."""

    user: str = ""
    privileged: bool = False
    tty: bool = False
    env_vars: tuple[str, ...] = ()  # names of variables passed from this process's environment
    env_file: str = ""
    capabilities: tuple[str, ...] = ()
    bind_mounts: tuple[str, ...] = ()

    @property
    def is_set(self) -> bool:
        return self != RunOptions()


@dataclasses.dataclass(frozen=True)
class CommandTest:
    name: str
    command: tuple[str, ...]  # the command and its args
    setup: tuple[tuple[str, ...], ...] = ()
    teardown: tuple[tuple[str, ...], ...] = ()  # read, and not run: CST's docker driver skips them
    env_vars: tuple[EnvVar, ...] = ()
    exit_code: int = 0
    expected_output: tuple[str, ...] = ()
    excluded_output: tuple[str, ...] = ()
    expected_error: tuple[str, ...] = ()
    excluded_error: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FileExistenceTest:
    name: str
    path: str
    should_exist: bool = True
    permissions: str = ""
    uid: int = -1
    gid: int = -1
    executable_by: str = ""


@dataclasses.dataclass(frozen=True)
class FileContentTest:
    name: str
    path: str
    expected: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class LicenseTest:
    debian: bool = False
    files: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class MetadataTest:
    env_vars: tuple[EnvVar, ...] = ()
    unbound_env_vars: tuple[EnvVar, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    unexposed_ports: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    workdir: str = ""
    volumes: tuple[str, ...] = ()
    unmounted_volumes: tuple[str, ...] = ()
    labels: tuple[EnvVar, ...] = ()
    user: str = ""

    @property
    def is_empty(self) -> bool:
        return self == MetadataTest()


@dataclasses.dataclass(frozen=True)
class StructureConfig:
    path: Path
    shown: str  # as the user named it, for messages and node ids
    version: str
    global_env: tuple[EnvVar, ...] = ()
    run_options: RunOptions = RunOptions()
    command_tests: tuple[CommandTest, ...] = ()
    file_existence_tests: tuple[FileExistenceTest, ...] = ()
    file_content_tests: tuple[FileContentTest, ...] = ()
    license_tests: tuple[LicenseTest, ...] = ()
    metadata: MetadataTest = MetadataTest()


# -- decoding --------------------------------------------------------------------------------------


Decoder = Callable[..., Any]


class Reader:
    """Decodes one file's nodes; ``fail`` makes the one-line message."""

    def __init__(self, shown: str, *, go_json: bool = False) -> None:
        self.shown = shown
        # A .json file, read as Go's encoding/json reads it into CST's types: field names matched
        # case-insensitively (to the Go names), unknown ones ignored, a repeated one's last value
        # kept, strings only as strings, and none of the YAML reading's defaults.
        self.go_json = go_json

    def fail(self, node: yaml.Node | None, where: str, problem: str) -> UsageError:
        line = f" (line {node.start_mark.line + 1})" if node is not None else ""
        return UsageError(f"structure test file {self.shown}: {where}: {problem}{line}.")

    def struct(
        self, node: yaml.Node, where: str, fields: Mapping[str, tuple[str, Callable[..., Any]]]
    ) -> dict[str, Any]:
        if _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, f"expected a mapping, got {_kind(node)}")
        if not self.go_json:
            yaml.SafeLoader("").flatten_mapping(node)  # << merge keys, as go-yaml reads them
        found: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:  # a test's name first, for the messages
            if key_node.value == "name" and isinstance(value_node, yaml.ScalarNode) and value_node.value:
                where = f"{where} {value_node.value!r}"
                break
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if self.go_json:
                matched = go_json_field(key, fields)
                if matched is None:
                    continue  # encoding/json ignores a key no field has
                key = matched
            elif key in seen:
                raise self.fail(key_node, where, f"field {key} is given twice")
            seen.add(key)
            if key not in fields:
                known = ", ".join(fields)
                raise self.fail(key_node, where, f"unknown field {key} (this schema's fields: {known})")
            attribute, decode = fields[key]
            found[attribute] = decode(value_node, f"{where}, field {key}" if where else key)
        return found

    def text(self, node: yaml.Node, where: str) -> str:
        if _is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode) or (self.go_json and node.style is None):
            raise self.fail(node, where, f"expected a string, got {_kind(node)}")
        return str(node.value)

    def flag(self, node: yaml.Node, where: str) -> bool:
        if _is_null(node):
            return False
        if isinstance(node, yaml.ScalarNode) and node.style is None and node.value in _BOOLS:
            return _BOOLS[node.value]
        raise self.fail(node, where, f"expected true or false, got {_shown(node)}")

    def number(self, node: yaml.Node, where: str) -> int:
        if _is_null(node):
            return 0
        if isinstance(node, yaml.ScalarNode) and node.style is None:
            plain = str(node.value).replace("_", "")
            try:
                return int(plain, 0) if not re.fullmatch(r"[-+]?0[0-7]+", plain) else int(plain, 8)
            except ValueError:
                pass
        raise self.fail(node, where, f"expected an integer, got {_shown(node)}")

    def texts(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, where, f"expected a list of strings, got {_kind(node)}")
        return tuple(self.text(item, f"{where}[{i}]") for i, item in enumerate(node.value))

    def optional_texts(self, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        return None if _is_null(node) else self.texts(node, where)

    def commands(self, node: yaml.Node, where: str) -> tuple[tuple[str, ...], ...]:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, where, f"expected a list of commands (each a list of strings), got {_kind(node)}")
        found = tuple(self.texts(item, f"{where}[{i}]") for i, item in enumerate(node.value))
        for i, command in enumerate(found):
            if not command:
                raise self.fail(node.value[i], f"{where}[{i}]", "an empty command; remove it")
        return found

    def envs(self, node: yaml.Node, where: str) -> tuple[EnvVar, ...]:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, where, f"expected a list of key/value entries, got {_kind(node)}")
        fields = {"key": ("key", self.text), "value": ("value", self.text), "isRegex": ("is_regex", self.flag)}
        return tuple(EnvVar(**self.struct(item, f"{where}[{i}]", fields)) for i, item in enumerate(node.value))

    def listed(self, node: yaml.Node, where: str, one: Callable[[yaml.Node, str], Any]) -> tuple[Any, ...]:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, where, f"expected a list of tests, got {_kind(node)}")
        return tuple(one(item, f"{where}[{i}]") for i, item in enumerate(node.value))


_GO_NAMES = {"allocateTty": "TTY"}  # where a Go field's name is not its YAML name


def go_json_field(key: str, fields: Iterable[str]) -> str | None:
    """The field (by its YAML name) a JSON key sets, as encoding/json matches a key to a Go
    field's name: exactly, else ignoring case; None when no field matches."""
    names = {_GO_NAMES.get(field, field): field for field in fields}
    if key in names:
        return names[key]
    return next((field for name, field in names.items() if name.lower() == key.lower()), None)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return _shown(node)


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(str(node.value)) if node.style is None else f"the quoted string {str(node.value)!r}"
    return _kind(node)


def check_regexes(reader: Reader, node: yaml.Node | None, where: str, patterns: tuple[str, ...]) -> None:
    """A pattern Go accepts but this reading cannot express is a usage error here; one Go refuses
    fails its check at run time, as in CST."""
    for pattern in patterns:
        try:
            go_regex(pattern)
        except GoRegexError as exc:
            if not exc.invalid:
                raise reader.fail(node, where, str(exc)) from None
