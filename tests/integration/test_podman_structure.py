"""container-structure-test YAML on podman: a command test, a file existence test and a metadata
test, run against podman's build of each platform, and what each checks failing where it should."""

from __future__ import annotations

import os

from conftest import BUSYBOX
from tests.integration import podman_helpers
from tests.integration.podman_helpers import podman_containers, services_of, untag_gate_images

podman_engine = podman_helpers.podman_engine  # the fixtures, for this module
podman_project = podman_helpers.podman_project

MACHINE = """\
schemaVersion: 2.0.0
commandTests:
  - name: machine
    command: uname
    args: ["-m"]
    expectedOutput: ["^(x86_64|aarch64)\\\\n$"]
"""

STRUCTURE = (
    MACHINE
    + """\
  - name: greeting
    command: sh
    args: ["-c", "cat /greeting; set | grep GREETING_SEEN"]
    envVars:
      - key: GREETING_SEEN
        value: seen
    expectedOutput: ["hello from podman\\\\nGREETING_SEEN='seen'"]
fileExistenceTests:
  - name: built-on
    path: /www/built-on
    shouldExist: true
    permissions: "-rw-r--r--"
    uid: 0
  - name: no such file
    path: /www/missing
    shouldExist: false
metadataTest:
  exposedPorts: ["8080"]
  cmd: ['sh', '-c', 'echo "CPU Architecture: $(uname -m)" > /www/index.html && exec httpd -f -p 8080 -h /www']
"""
)

ARGS = ["--multiarch-runtime", "podman", "--multiarch-secret", "id=tok,env=HOME", "-v"]


def test_structure_tests_pass_on_both_platforms_with_podman(podman_project):
    podman_project.makefile(".yaml", structure=STRUCTURE)
    result = podman_project.runpytest_subprocess(*ARGS, "--multiarch-structure-tests", "structure.yaml")
    result.assert_outcomes(passed=10)
    for platform in ("linux/amd64", "linux/arm64"):
        result.stdout.fnmatch_lines_random(
            [
                f"structure.yaml::commandTests::machine[[]{platform}[]] PASSED*",
                f"structure.yaml::commandTests::greeting[[]{platform}[]] PASSED*",
                f"structure.yaml::fileExistenceTests::built-on[[]{platform}[]] PASSED*",
                f"structure.yaml::fileExistenceTests::no such file[[]{platform}[]] PASSED*",
                f"structure.yaml::metadataTest[[]{platform}[]] PASSED*",
            ]
        )
    assert podman_containers(os.getpid()) == [] and services_of(os.getpid()) == []


def test_structure_tests_fail_on_podman_where_the_image_differs(podman_project):
    """The same checks, each made wrong: each fails on each platform, with CST's message."""
    wrong = (
        STRUCTURE.replace("x86_64|aarch64", "riscv64")
        .replace("hello from podman", "hello from docker")
        .replace('"-rw-r--r--"', '"-rwxrwxrwx"')
        .replace('["8080"]', '["9090"]')
    )
    podman_project.makefile(".yaml", structure=wrong)
    result = podman_project.runpytest_subprocess(*ARGS, "--multiarch-structure-tests", "structure.yaml")
    result.assert_outcomes(passed=2, failed=8)  # "no such file" still passes
    out = result.stdout.str()
    machines = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
    for platform, machine in machines.items():  # each check read podman's build of that platform
        for said in (
            f"[{platform}] Expected string '^(riscv64)\\n$' not found in output '{machine}\n'",
            f"[{platform}] Expected string 'hello from docker\\nGREETING_SEEN='seen'' not found in output "
            "'hello from podman\nGREETING_SEEN='seen'\n'",
            f"[{platform}] /www/built-on has incorrect permissions. Expected: -rwxrwxrwx, Actual: -rw-r--r--",
            f"[{platform}] Port 9090 not found in config",
        ):
            assert said in out, f"{said!r} not in:\n{out}"
    assert podman_containers(os.getpid()) == []


GATE_STRUCTURE = (
    MACHINE
    + """\
fileExistenceTests:
  - name: busybox
    path: /bin/busybox
    isExecutableBy: any
metadataTest:
  unexposedPorts: ["8080"]
"""
)


def test_structure_tests_on_a_podman_release_gate_test_each_pulled_platform(pytester, podman_engine):
    """--multiarch-image: the registry's busybox, each platform pulled by digest into podman."""
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n")
    pytester.makefile(".yaml", structure=GATE_STRUCTURE)
    gate = ["--multiarch-runtime", "podman", f"--multiarch-image={BUSYBOX}", "-v"]
    try:
        result = pytester.runpytest_subprocess(*gate, "--multiarch-structure-tests", "structure.yaml")
    finally:
        untag_gate_images()
    result.assert_outcomes(passed=6)
    for platform in ("linux/amd64", "linux/arm64"):
        result.stdout.fnmatch_lines_random([f"structure.yaml::commandTests::machine[[]{platform}[]] PASSED*"])
        result.stdout.fnmatch_lines_random([f"*{platform}: testing manifest sha256:* of {BUSYBOX}"])
    assert podman_containers(os.getpid()) == []
