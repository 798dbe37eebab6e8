"""Build secrets and SSH forwarding, on linux/amd64 and linux/arm64, and nowhere a secret leaks:
not in output at any verbosity, JUnit XML, the cache, the image (history, labels, config), the
container, or a process's command line while the build runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PYTHON

TOKEN = "s3cr3t-T0KEN-value"
NPM = "npm-s3cr3t-from-env"

SECRETS_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG FRESH
RUN --mount=type=secret,id=token --mount=type=secret,id=npm echo "$FRESH" && \\
    sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha \\
    && sha256sum /run/secrets/npm | cut -d' ' -f1 > /npm.sha
CMD ["sleep", "600"]
"""

SSH_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY agent.py fresh.txt /
RUN --mount=type=ssh python3 /agent.py > /fingerprint
CMD ["sleep", "600"]
"""

# Asks the forwarded agent for its keys (the protocol's REQUEST_IDENTITIES) and prints the first
# key's fingerprint as ssh-keygen -l does: the image needs no ssh client.
AGENT_PY = """\
import base64, hashlib, os, socket, struct
agent = socket.socket(socket.AF_UNIX)
agent.connect(os.environ["SSH_AUTH_SOCK"])
agent.sendall(struct.pack(">IB", 1, 11))
size = struct.unpack(">I", agent.recv(4))[0]
data = b""
while len(data) < size:
    data += agent.recv(size - len(data))
blob_size = struct.unpack(">I", data[5:9])[0]
blob = data[9:9 + blob_size]
print("SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="))
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def everything_written(project: Path, text: str) -> str:
    """What the run printed, and every file it left in the project (JUnit XML, the cache)."""
    found = [text]
    for path in project.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            found.append(path.read_bytes().decode(errors="replace"))
    return "\n".join(found)


@pytest.mark.usefixtures("docker_engine")
def test_secrets_from_a_file_and_a_variable_reach_the_build_and_nothing_else(busybox_project, tmp_path, monkeypatch):
    secret_file = tmp_path / "outside" / "token.txt"
    secret_file.parent.mkdir()
    secret_file.write_text(TOKEN)
    monkeypatch.setenv("NPM_SECRET", NPM)
    busybox_project.makefile("", Dockerfile=SECRETS_DOCKERFILE)
    busybox_project.makepyfile(
        test_app=f"""
        from pathlib import Path

        def test_secrets(multiarch_container, multiarch_image, multiarch_platform):
            assert multiarch_container.read_file("/token.sha").decode().strip() == {sha(TOKEN)!r}
            assert multiarch_container.read_file("/npm.sha").decode().strip() == {sha(NPM)!r}
            Path(f"ids-{{multiarch_platform.slug}}").write_text(multiarch_image.id + " " + multiarch_container.id)
            import subprocess
            inspected = subprocess.run(["docker", "inspect", multiarch_container.id], capture_output=True, text=True)
            Path(f"container-{{multiarch_platform.slug}}.json").write_text(inspected.stdout)
            assert multiarch_container.exec(["sleep", "1"]) == ""
        """
    )
    result = busybox_project.runpytest_subprocess(
        "-vv",
        f"--multiarch-secret=id=token,src={secret_file}",
        "--multiarch-secret",
        "id=npm,env=NPM_SECRET",
        "--junitxml=report.xml",
        f"--multiarch-build-arg=FRESH={time.time()}",  # BuildKit's cache of the RUN ignores secrets
    )
    result.assert_outcomes(passed=2)
    written = everything_written(busybox_project.path, result.stdout.str() + result.stderr.str())
    # What was searched holds the JUnit report and the plugin's caches, not only the output.
    assert (busybox_project.path / "report.xml").read_text() in written
    assert any((busybox_project.path / ".cache" / "pytest-multiarch").rglob("*.json"))
    assert TOKEN not in written and NPM not in written
    for marker in busybox_project.path.glob("ids-*"):
        image = marker.read_text().split()[0]
        history = subprocess.run(["docker", "history", "--no-trunc", image], capture_output=True, text=True).stdout
        inspected = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True).stdout
        assert history and inspected
        assert TOKEN not in history + inspected and NPM not in history + inspected
    assert len(list(busybox_project.path.glob("ids-*"))) == 2
    assert len(list(busybox_project.path.glob("container-*.json"))) == 2  # its inspect: part of what was searched


@pytest.mark.usefixtures("docker_engine")
def test_an_ssh_agent_is_forwarded_to_the_build_on_both_platforms(busybox_project, tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    agent = subprocess.run(["ssh-agent", "-s", "-a", str(tmp_path / "agent.sock")], capture_output=True, text=True)
    pid = next(line.split("=")[1].split(";")[0] for line in agent.stdout.split() if line.startswith("SSH_AGENT_PID="))
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(tmp_path / "agent.sock")}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        busybox_project.makefile("", Dockerfile=SSH_DOCKERFILE)
        (busybox_project.path / "agent.py").write_text(AGENT_PY)
        (busybox_project.path / "fresh.txt").write_text(fingerprint)  # BuildKit's cache of the RUN ignores the agent
        busybox_project.makepyfile(
            test_app=f"""
            def test_fingerprint(multiarch_container):
                assert multiarch_container.read_file("/fingerprint").decode().strip() == {fingerprint!r}
            """
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--multiarch-ssh=default",
                f"--multiarch-build-arg=BASE_IMAGE={PYTHON}",
                "--multiarch-rebuild",
            ],
            cwd=busybox_project.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(r"^=+ 2 passed in ", done.stdout, re.M), done.stdout
    finally:
        subprocess.run(["kill", pid], capture_output=True)


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--multiarch-secret=id=token,src=/nowhere/token.txt"],
            "secret 'token' reads file /nowhere/token.txt, which does not exist",
        ),
        (
            ["--multiarch-secret=id=token,env=UNSET_FOR_SURE"],
            "secret 'token' reads variable UNSET_FOR_SURE, which is not set",
        ),
        (
            ["--multiarch-secret=token=abc"],
            "an entry (its text is not shown: it may hold a secret given the wrong way)",
        ),
        (["--multiarch-ssh=default"], "SSH_AUTH_SOCK is not set"),
        (
            ["--multiarch-ssh=deploy=/nowhere/agent.sock"],
            "ssh 'deploy' names /nowhere/agent.sock, which does not exist",
        ),
    ],
)
def test_bad_secret_or_ssh_input_is_a_usage_error_before_any_build(busybox_project, monkeypatch, args, message):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("UNSET_FOR_SURE", raising=False)
    busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
    result = busybox_project.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "building" not in result.stdout.str() and "abc" not in result.stdout.str() + result.stderr.str()


@pytest.mark.usefixtures("docker_engine")
def test_a_secret_build_arg_never_reaches_a_command_line_and_is_warned_about(busybox_project):
    value = f"arg-s3cr3t-{time.time()}"
    busybox_project.makefile(
        "",
        Dockerfile="""\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        ARG API_TOKEN
        RUN sleep 3 && echo "token length ${#API_TOKEN}"
        CMD ["sleep", "600"]
        """,
    )
    busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", f"--multiarch-build-arg=API_TOKEN={value}"],
        cwd=busybox_project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen_buildx = False
    # A child between fork and exec still shows pytest's own command line (which holds the value,
    # as the user typed it): not a leak.
    own = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    while process.poll() is None:  # poll every process's command line while the build runs
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                raw = cmdline.read_bytes()
            except OSError:
                continue
            if raw == own:
                continue
            text = raw.replace(b"\0", b" ").decode(errors="replace")
            if "buildx" in text and "build" in text:
                seen_buildx = True
            if str(process.pid) != cmdline.parent.name:
                assert value not in text, f"{value} on the command line of {cmdline.parent.name}: {text}"
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else ""
    assert process.returncode == 0, output
    assert seen_buildx, "the build was never seen running"
    assert "SecretInBuildArgWarning: build arg API_TOKEN looks like a secret" in output
    assert "--multiarch-secret id=API_TOKEN,env=API_TOKEN" in output
    assert value not in output
    # The image's key label and the early-start record are keyed: a guess cannot be confirmed offline.
    key_file = busybox_project.path / ".cache" / "pytest-multiarch" / "digest.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    records = list((busybox_project.path / ".cache" / "pytest-multiarch" / "early").glob("*.json"))
    plain = hashlib.sha256(json.dumps([["API_TOKEN", value]]).encode()).hexdigest()
    for record in records:
        assert value not in record.read_text() and plain not in record.read_text()
