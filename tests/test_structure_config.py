"""Structure test files without running them (no Docker): each mistake is one usage error naming
the file, the test and the field; items are named <file>::<section>::<name>[<platform>]."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_multiarch.errors import UsageError
from pytest_multiarch.structure_fields import parse_text
from pytest_multiarch.structure_schema import StructureConfig

GOOD = """\
schemaVersion: "2.0.0"
commandTests:
  - name: version
    command: app
    args: ["--version"]
  - name: version
    command: app
fileExistenceTests:
  - name: binary
    path: /usr/bin/app
licenseTests:
  - debian: true
metadataTest:
  user: "1000"
"""


def parse(text: str) -> object:
    return parse_text(text, "structure.yaml", Path("structure.yaml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("commandTests: []\n", "structure.yaml: the file: no schemaVersion"),
        ('schemaVersion: "3.0.0"\n', "schemaVersion: unsupported version '3.0.0'"),
        (
            'schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    comand: x\n',
            "commandTests[0] 'a': unknown field comand",
        ),
        (
            'schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    command: x\n    exitCode: "1"\n',
            "commandTests[0] 'a', field exitCode: expected an integer, got the quoted string '1' (line 5)",
        ),
        ('schemaVersion: "2.0.0"\ncommandTests:\n  - command: x\n', "commandTests[0]: a test without a name"),
        ('schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n', "commandTests[0] 'a': field command is missing"),
        (
            'schemaVersion: "2.0.0"\nfileExistenceTests:\n  - name: f\n    path: /x\n    isExecutableBy: all\n',
            "fileExistenceTests[0] 'f', field isExecutableBy: 'all' is not one of any, owner, group, other",
        ),
        (
            'schemaVersion: "2.0.0"\nfileExistenceTests:\n  - name: f\n    path: /x\n    shouldExist: "no"\n',
            "field shouldExist: expected true or false",
        ),
        (
            'schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    name: b\n    command: x\n',
            "field name is given twice (line 4)",
        ),
        (
            'schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    command: x\n    expectedOutput: ["\\\\pL"]\n',
            "commandTests[0] 'a', field expectedOutput: Unicode classes",
        ),
        ('schemaVersion: "2.0.0"\ncommandTests: [\n', "structure.yaml: not valid YAML"),
        ('schemaVersion: "1.0.0"\nmetadataTest:\n  user: x\n', "unknown field metadataTest"),
        (
            'schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    command: x\n    envVars:\n      - key: K\n',
            "every entry needs a non-empty key and value",
        ),
    ],
)
def test_a_mistake_is_one_usage_error_naming_file_test_and_field(text: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(text)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_defaults_are_csts() -> None:
    config = parse(
        'schemaVersion: "2.0.0"\nfileExistenceTests:\n  - name: f\n    path: /x\n    uid: 0755\n'
        "commandTests:\n  - name: c\n    command: x\n    args: [a, 1.10, yes]\n"
    )
    existence = config.file_existence_tests[0]  # type: ignore[attr-defined]
    assert (existence.should_exist, existence.uid, existence.gid) == (True, 0o755, -1)
    command = config.command_tests[0]  # type: ignore[attr-defined]
    assert command.command == ("x", "a", "1.10", "yes")  # scalars keep their text, as go-yaml's strings
    assert command.exit_code == 0


def test_schema_1_commands_are_lists() -> None:
    config = parse('schemaVersion: "1.0.0"\ncommandTests:\n  - name: c\n    command: [sh, -c, "echo hi"]\n')
    assert config.command_tests[0].command == ("sh", "-c", "echo hi")  # type: ignore[attr-defined]


INI = """
[pytest]
multiarch_platforms = linux/amd64, linux/arm64
{extra}
"""


def test_items_are_named_per_section_test_and_platform(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", structure=GOOD)
    pytester.makeini(INI.format(extra="multiarch_structure_tests = structure.yaml"))
    result = pytester.runpytest("--co", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    expected = [
        f"structure.yaml::{name}[{platform}]"
        for platform in ("linux/amd64", "linux/arm64")
        for name in (
            "commandTests::version",
            "commandTests::version (2)",
            "fileExistenceTests::binary",
            "licenseTests::0",
            "metadataTest",
        )
    ]
    assert sorted(ids) == sorted(expected), result.stdout.str()
    assert "structure.yaml::commandTests::version (2)[linux/arm64]" in ids
    assert "structure.yaml::metadataTest[linux/amd64]" in ids
    assert "structure.yaml::licenseTests::0[linux/arm64]" in ids
    selected = pytester.runpytest("--co", "-q", "-k", "binary and arm64")
    assert [line for line in selected.stdout.lines if "::" in line] == [
        "structure.yaml::fileExistenceTests::binary[linux/arm64]"
    ]


def test_ini_files_outside_the_test_paths_are_collected(pytester: pytest.Pytester) -> None:
    pytester.mkdir("structure")
    (pytester.path / "structure" / "app.yaml").write_text(GOOD)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    pytester.makeini(INI.format(extra="testpaths = tests\nmultiarch_structure_tests = structure/*.yaml"))
    result = pytester.runpytest("--co", "-q")
    assert "structure/app.yaml::metadataTest[linux/arm64]" in result.stdout.lines, result.stdout.str()
    assert "tests/test_x.py::test_x" in result.stdout.lines
    named = pytester.runpytest("--co", "-q", "tests")  # paths given: only those
    assert not [line for line in named.stdout.lines if "structure/" in line]
    from_cli = pytester.runpytest("--co", "-q", "tests", "--multiarch-structure-tests", "structure/app.yaml")
    assert "structure/app.yaml::metadataTest[linux/arm64]" in from_cli.stdout.lines


def test_a_bad_file_stops_pytest_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml", structure='schemaVersion: "2.0.0"\ncommandTests:\n  - name: a\n    command: x\n    x: 1\n'
    )
    pytester.makeini(INI.format(extra="multiarch_structure_tests = structure.yaml"))
    result = pytester.runpytest_subprocess("--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0].startswith(
        "ERROR: pytest-multiarch: structure test file structure.yaml: commandTests[0] 'a': unknown field x"
    ), result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    missing = pytester.runpytest_subprocess("--co", "-o", "multiarch_structure_tests=nope/*.yaml")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini multiarch_structure_tests: 'nope/*.yaml' names no file" in missing.stderr.str()


def test_a_declared_image_has_its_own_files(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", api=GOOD)
    pytester.makeconftest(
        "from pytest_multiarch import multiarch_fixtures\n"
        "api_image, api_container, api_http = multiarch_fixtures('api', structure_tests=['api.yaml'])\n"
    )
    pytester.makeini(INI.format(extra=""))
    result = pytester.runpytest("--co", "-q")
    assert "api.yaml::metadataTest[linux/amd64]" in result.stdout.lines, result.stdout.str()
    bad = pytester.makeconftest(
        "from pytest_multiarch import multiarch_fixtures\n"
        "api_image, api_container, api_http = multiarch_fixtures('api', structure_tests='api.yaml')\n"
    )
    assert bad.exists()
    refused = pytester.runpytest_subprocess("--co")
    assert (
        'structure_tests= of multiarch_fixtures("api", ...) must be a list'
        in refused.stdout.str() + refused.stderr.str()
    )


def parse_json(text: str) -> StructureConfig:
    return parse_text(text, "structure.json", Path("structure.json"))


def test_a_json_file_is_read_as_gos_encoding_json_reads_it_into_csts_types() -> None:
    """Field names matched ignoring case (allocateTty's Go name is TTY), unknown keys ignored, a
    repeated key's last value kept, tabs allowed, and shouldExist false unless given."""
    config = parse_json(
        '{"SchemaVersion": "2.0.0", "comment": "ignored",\n'
        '\t"containerRunOptions": {"tty": true, "Capabilities": ["sys_admin"], "allocateTty": false},\n'
        '\t"fileExistenceTests": [{"name": "a", "path": "/a", "path": "/b", "UID": 5}],\n'
        '\t"COMMANDTESTS": [{"name": "c", "command": "echo", "args": ["x"], "exitCode": 0}]}'
    )
    assert config.version == "2.0.0"
    assert config.run_options.tty and config.run_options.capabilities == ("sys_admin",)
    (existence,) = config.file_existence_tests
    assert (existence.path, existence.should_exist, existence.uid, existence.gid) == ("/b", False, 5, -1)
    assert config.command_tests[0].command == ("echo", "x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schemaVersion": "2.0.0",}', "structure.json: not valid JSON: Expecting property name"),
        (
            '{"schemaVersion": "2.0.0", "metadataTest": {"user": 1000}}',
            "metadataTest, field user: expected a string, got '1000' (line 1)",
        ),
        (
            '{"schemaVersion": "2.0.0", "commandTests": [{"name": "c", "command": "x", "exitCode": "1"}]}',
            "field exitCode: expected an integer, got the quoted string '1'",
        ),
    ],
)
def test_json_that_go_refuses_is_one_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_json(text)
