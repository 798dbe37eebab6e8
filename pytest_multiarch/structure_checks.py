"""CST's checks on what a run found, pure: each returns CST's error messages (none: passed)."""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from typing import Any

from pytest_multiarch.structure_go import GoRegexError, file_mode_string, go_regex
from pytest_multiarch.structure_schema import CommandTest, EnvVar, FileExistenceTest, MetadataTest

LICENSE_REFUSED = ("AGPL", "WTFPL")
_EXECUTABLE_BITS = {"any": 0o111, "owner": 0o100, "group": 0o010, "other": 0o001}


def regex_matches(pattern: str, text: str) -> bool | None:
    """Go's ``MatchString``; None when Go cannot compile ``pattern`` (CST then fails the check
    whether the pattern was expected or excluded)."""
    try:
        return go_regex(pattern).search(text) is not None
    except GoRegexError:
        return None


def check_regex_list(expected: tuple[str, ...], excluded: tuple[str, ...], text: str, what: str) -> list[str]:
    failures: list[str] = []
    for pattern in expected:
        if not regex_matches(pattern, text):
            failures.append(f"Expected string '{pattern}' not found in {what} '{text}'" + _invalid(pattern))
    for pattern in excluded:
        if regex_matches(pattern, text) is not False:
            failures.append(f"Excluded string '{pattern}' found in {what} '{text}'" + _invalid(pattern))
    return failures


def _invalid(pattern: str) -> str:
    try:
        go_regex(pattern)
    except GoRegexError as exc:
        return f" ({exc}: Go refuses it, so CST fails this check)"
    return ""


def check_command_output(test: CommandTest, stdout: str, stderr: str, exit_code: int) -> list[str]:
    failures = check_regex_list(test.expected_error, test.excluded_error, stderr, "error")
    failures += check_regex_list(test.expected_output, test.excluded_output, stdout, "output")
    if test.exit_code != exit_code:
        failures.append(
            f"Test '{test.name}' exited with incorrect error code. Expected: {test.exit_code}, Actual: {exit_code}"
        )
    return failures


def check_existence(test: FileExistenceTest, member: tarfile.TarInfo) -> list[str]:
    """The checks of a path that exists."""
    if not test.should_exist:
        return [f"File {test.path} should not exist but does"]
    failures: list[str] = []
    mode = file_mode_string(member)
    if test.permissions and mode != test.permissions:
        failures.append(f"{test.path} has incorrect permissions. Expected: {test.permissions}, Actual: {mode}")
    if test.executable_by and not member.mode & _EXECUTABLE_BITS[test.executable_by]:
        failures.append(
            f"{test.path} has incorrect executable bit. Expected to be executable by {test.executable_by}, "
            f"Actual: {mode}"
        )
    if test.uid != -1 and member.uid != test.uid:
        failures.append(f"{test.path} has incorrect user ownership. Expected: {test.uid}, Actual: {member.uid}")
    if test.gid != -1 and member.gid != test.gid:
        failures.append(f"{test.path} has incorrect group ownership. Expected: {test.gid}, Actual: {member.gid}")
    return failures


def check_license_text(path: str, text: str) -> list[str]:
    upper = text.upper()
    for word in LICENSE_REFUSED:
        if word in upper:
            return [f"Invalid license for {path}, license contains {word}"]
    return []


def _pairs(entries: tuple[EnvVar, ...], found: Mapping[str, str], what: str, missing: str) -> list[str]:
    failures: list[str] = []
    for entry in entries:
        if entry.key not in found:
            failures.append(missing.format(key=entry.key))
            continue
        value = found[entry.key]
        match = regex_matches(entry.value, value) if entry.is_regex else entry.value == value
        if not match:
            failures.append(f"{what} {entry.key} value {value} does not match expected value: {entry.value}")
    return failures


def check_metadata(test: MetadataTest, config: Mapping[str, Any]) -> list[str]:
    """``config``: the ``Config`` of ``docker image inspect``."""
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in config.get("Env") or [])
    labels: dict[str, str] = dict(config.get("Labels") or {})
    failures = _pairs(test.env_vars, env, "env var", "variable {key} not found in image env")
    failures += [
        f"env variable {e.key} should not be present in image metadata" for e in test.unbound_env_vars if e.key in env
    ]
    failures += _pairs(test.labels, labels, "label", "label {key} not found in image metadata")
    for field, name, actual in (
        ("Cmd", "cmd", config.get("Cmd")),
        ("Entrypoint", "entrypoint", config.get("Entrypoint")),
    ):
        expected = test.cmd if name == "cmd" else test.entrypoint
        actual = list(actual or [])
        if expected is not None and list(expected) != actual:
            failures.append(f"Image {field} {_go_list(actual)} does not match expected {field}: {_go_list(expected)}")
    if test.workdir and test.workdir != (config.get("WorkingDir") or ""):
        failures.append(f"Image workdir {config.get('WorkingDir') or ''} does not match config workdir: {test.workdir}")
    if test.user and test.user != (config.get("User") or ""):
        failures.append(f"Image user {config.get('User') or ''} does not match config user: {test.user}")
    # CST compares port numbers only: "8080" matches 8080/tcp, "8080/tcp" never matches.
    ports = [str(p).split("/", 1)[0] for p in config.get("ExposedPorts") or {}]
    failures += [f"Port {p} not found in config" for p in test.exposed_ports if p not in ports]
    failures += [f"Port {p} should not be exposed" for p in test.unexposed_ports if p in ports]
    volumes = list(config.get("Volumes") or {})
    failures += [f"Volume {v} not found in config" for v in test.volumes if v not in volumes]
    failures += [f"Volume {v} should not be mounted" for v in test.unmounted_volumes if v in volumes]
    return failures


def _go_list(values: Any) -> str:
    return "[" + " ".join(str(v) for v in values) + "]"
