"""The fields of each CST schema version and the checks CST's ``Validate`` makes, as usage
errors (CST reports those as a failed test; a YAML that cannot run is a usage error here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pytest_multiarch.errors import UsageError
from pytest_multiarch.structure_schema import (
    EXECUTABLE_BY,
    VERSIONS,
    CommandTest,
    FileContentTest,
    FileExistenceTest,
    LicenseTest,
    MetadataTest,
    Reader,
    RunOptions,
    StructureConfig,
    check_regexes,
    go_json_field,
)


def decode_config(reader: Reader, root: yaml.MappingNode, path: Path) -> StructureConfig:
    version = _version(reader, root)
    v2 = version == "2.0.0"
    fields: dict[str, tuple[str, Any]] = {
        "schemaVersion": ("version", reader.text),
        "globalEnvVars": ("global_env", reader.envs),
        "commandTests": ("command_tests", lambda n, w: reader.listed(n, w, lambda i, x: _command(reader, i, x, v2))),
        "fileExistenceTests": (
            "file_existence_tests",
            lambda n, w: reader.listed(n, w, lambda i, x: _existence(reader, i, x, v2)),
        ),
        "fileContentTests": (
            "file_content_tests",
            lambda n, w: reader.listed(n, w, lambda i, x: _content(reader, i, x)),
        ),
        "licenseTests": ("license_tests", lambda n, w: reader.listed(n, w, lambda i, x: _license(reader, i, x))),
    }
    if v2:
        fields["metadataTest"] = ("metadata", lambda n, w: _metadata(reader, n, w))
        fields["containerRunOptions"] = ("run_options", lambda n, w: _run_options(reader, n, w))
    found = reader.struct(root, "", fields)
    for entry in found.get("global_env", ()):
        if not entry.key:
            raise reader.fail(root, "globalEnvVars", "an entry without a key")
    return StructureConfig(path=path, shown=reader.shown, **found)


def _version(reader: Reader, root: yaml.MappingNode) -> str:
    for key, value in root.value:
        if key.value == "schemaVersion" or (reader.go_json and go_json_field(key.value, ["schemaVersion"])):
            version = reader.text(value, "schemaVersion")
            if version not in VERSIONS:
                raise reader.fail(value, "schemaVersion", f"unsupported version {version!r}; CST reads 1.0.0 and 2.0.0")
            return version
    raise reader.fail(root, "the file", 'no schemaVersion: add schemaVersion: "2.0.0"')


def _named(reader: Reader, node: yaml.Node, where: str, found: dict[str, Any]) -> str:
    name = found.get("name", "")
    if not name:
        raise reader.fail(node, where, "a test without a name; CST needs one for every test")
    return f"{where} {name!r}"


def _command(reader: Reader, node: yaml.Node, where: str, v2: bool) -> CommandTest:
    regexes = ("expectedOutput", "excludedOutput", "expectedError", "excludedError")
    fields: dict[str, tuple[str, Any]] = {
        "name": ("name", reader.text),
        "setup": ("setup", reader.commands),
        "teardown": ("teardown", reader.commands),
        "envVars": ("env_vars", reader.envs),
        "exitCode": ("exit_code", reader.number),
        "command": ("command", reader.text if v2 else reader.texts),
        **{field: (_snake(field), reader.texts) for field in regexes},
    }
    if v2:
        fields["args"] = ("args", reader.texts)
    found = reader.struct(node, where, fields)
    where = _named(reader, node, where, found)
    command = found.pop("command", "" if v2 else ())
    args = found.pop("args", ())
    if not command:
        raise reader.fail(node, where, "field command is missing or empty")
    for env in found.get("env_vars", ()):
        if not env.key or not env.value:
            raise reader.fail(node, f"{where}, field envVars", "every entry needs a non-empty key and value")
    for field in regexes:
        check_regexes(reader, node, f"{where}, field {field}", found.get(_snake(field), ()))
    argv = (command, *args) if v2 else tuple(command)
    return CommandTest(command=argv, **found)


def _existence(reader: Reader, node: yaml.Node, where: str, v2: bool) -> FileExistenceTest:
    fields: dict[str, tuple[str, Any]] = {
        "name": ("name", reader.text),
        "path": ("path", reader.text),
        "shouldExist": ("should_exist", reader.flag),
        "permissions": ("permissions", reader.text),
    }
    if v2:
        fields |= {
            "uid": ("uid", reader.number),
            "gid": ("gid", reader.number),
            "isExecutableBy": ("executable_by", reader.text),
        }
    found = reader.struct(node, where, fields)
    if reader.go_json:  # no UnmarshalYAML: shouldExist false unless given (uid and gid: see the docs)
        found.setdefault("should_exist", False)
    where = _named(reader, node, where, found)
    if not found.get("path"):
        raise reader.fail(node, where, "field path is missing or empty")
    if found.get("executable_by", "") not in ("", *EXECUTABLE_BY):
        raise reader.fail(
            node,
            f"{where}, field isExecutableBy",
            f"{found['executable_by']!r} is not one of {', '.join(EXECUTABLE_BY)}",
        )
    return FileExistenceTest(**found)


def _content(reader: Reader, node: yaml.Node, where: str) -> FileContentTest:
    fields = {
        "name": ("name", reader.text),
        "path": ("path", reader.text),
        "expectedContents": ("expected", reader.texts),
        "excludedContents": ("excluded", reader.texts),
    }
    found = reader.struct(node, where, fields)
    where = _named(reader, node, where, found)
    if not found.get("path"):
        raise reader.fail(node, where, "field path is missing or empty")
    check_regexes(reader, node, f"{where}, field expectedContents", found.get("expected", ()))
    check_regexes(reader, node, f"{where}, field excludedContents", found.get("excluded", ()))
    return FileContentTest(**found)


def _license(reader: Reader, node: yaml.Node, where: str) -> LicenseTest:
    fields = {"debian": ("debian", reader.flag), "files": ("files", reader.texts)}
    return LicenseTest(**reader.struct(node, where, fields))


def _metadata(reader: Reader, node: yaml.Node, where: str) -> MetadataTest:
    fields = {
        "envVars": ("env_vars", reader.envs),
        "unboundEnvVars": ("unbound_env_vars", reader.envs),
        "exposedPorts": ("exposed_ports", reader.texts),
        "unexposedPorts": ("unexposed_ports", reader.texts),
        "entrypoint": ("entrypoint", reader.optional_texts),
        "cmd": ("cmd", reader.optional_texts),
        "workdir": ("workdir", reader.text),
        "volumes": ("volumes", reader.texts),
        "unmountedVolumes": ("unmounted_volumes", reader.texts),
        "labels": ("labels", reader.envs),
        "user": ("user", reader.text),
    }
    found = reader.struct(node, "metadataTest", fields)
    for field in ("env_vars", "labels", "unbound_env_vars"):
        for entry in found.get(field, ()):
            if not entry.key and field != "unbound_env_vars":
                raise reader.fail(node, "metadataTest", f"an entry of {field} without a key")
            if entry.is_regex:
                check_regexes(reader, node, f"metadataTest, {field} {entry.key}", (entry.value,))
    for field in ("exposed_ports", "unexposed_ports", "volumes", "unmounted_volumes"):
        if "" in found.get(field, ()):
            raise reader.fail(node, "metadataTest", f"an empty entry in {field}")
    return MetadataTest(**found)


def _run_options(reader: Reader, node: yaml.Node, where: str) -> RunOptions:
    fields = {
        "user": ("user", reader.text),
        "privileged": ("privileged", reader.flag),
        "allocateTty": ("tty", reader.flag),
        "envVars": ("env_vars", reader.texts),
        "envFile": ("env_file", reader.text),
        "capabilities": ("capabilities", reader.texts),
        "bindMounts": ("bind_mounts", reader.texts),
    }
    return RunOptions(**reader.struct(node, "containerRunOptions", fields))


def _snake(field: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in field)


def parse_text(text: str, shown: str, path: Path) -> StructureConfig:
    """The configuration in ``text`` (the file ``shown``), or one UsageError."""
    reader = Reader(shown, go_json=shown.endswith(".json"))
    if not shown.endswith((".yaml", ".yml", ".json")):
        raise reader.fail(None, "the file", "CST reads only .yaml, .yml and .json files; rename it")
    try:
        if reader.go_json:
            text = _json_text(text, shown)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"structure test file {shown}: not valid YAML: {problem}{line}.") from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise reader.fail(root, "the file", "expected a mapping with schemaVersion and tests")
    return decode_config(reader, root, path)


def _json_text(text: str, shown: str) -> str:
    """JSON as YAML can read it: as written when YAML reads it alike (line numbers stay right),
    else written out again (tabs, say, which YAML refuses)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"structure test file {shown}: not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return json.dumps(value, indent=1)
    return text


def parse_file(path: Path, shown: str) -> StructureConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"structure test file {shown}: cannot be read: {exc.strerror or exc}.") from None
    return parse_text(text, shown, path)
