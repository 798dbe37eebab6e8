"""The ssh:// bridge's master connection (dialbridge.SshMaster): which ssh arguments name the
engine's host, the channel command when a master serves, and the fallback (one
``docker -H ssh://… system dial-stdio`` per connection) when none comes up. Against a fake
``ssh``; the real one is tested by test_remote_engines.py's ssh:// route."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_multiarch import dialbridge
from pytest_multiarch.dialbridge import SshMaster, ssh_target


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("ssh://me@arm-host:2222", ["-p", "2222", "me@arm-host"]),
        ("ssh://arm-host", ["arm-host"]),
        ("ssh://arm-host/", ["arm-host"]),
        ("ssh://[fd00::1]:22", ["-p", "22", "fd00::1"]),
        ("ssh://arm-host/var/run/docker.sock", None),  # a path: the docker CLI refuses it too
        ("ssh://-oProxyCommand=evil", None),  # would read as an option
        ("ssh://-me@arm-host", None),
        ("tcp://arm-host:2375", None),
        ("ssh://arm-host:notaport", None),
    ],
)
def test_the_ssh_arguments_that_name_the_engines_host(url: str, target: list[str] | None) -> None:
    assert ssh_target(url) == target


def fake_ssh(tmp_path: Path, master: str) -> Path:
    """An ``ssh`` that, run with -M, does what ``master`` says: "serve" (makes the control
    socket, as a master that is up does, and waits), "fail" (exits at once) or "hang"."""
    script = tmp_path / "ssh"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {tmp_path}/calls\n'
        '[ "$1" = "-M" ] || exit 0\n'
        f'case "{master}" in\n'
        '  serve) touch "$4"; exec sleep 60 ;;\n'
        "  fail) exit 255 ;;\n"
        "  hang) exec sleep 60 ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return script


def test_a_master_that_comes_up_carries_every_connection_and_ends_with_stop(tmp_path: Path) -> None:
    master = SshMaster("ssh://me@arm-host:2222", str(tmp_path / "ctl"), str(fake_ssh(tmp_path, "serve")))
    master.start()
    ssh = str(tmp_path / "ssh")
    assert master.channel_command() == [
        *[ssh, "-S", str(tmp_path / "ctl"), "-o", "ControlMaster=no", "-p", "2222", "me@arm-host"],
        *["--", "docker", "system", "dial-stdio"],
    ]
    process = master._process
    assert process is not None and process.poll() is None
    master.stop()
    assert process.poll() is not None  # ended by its pid, not left running
    assert master.channel_command() is None


@pytest.mark.parametrize("how", ["fail", "missing"])
def test_without_a_master_each_connection_is_its_own(tmp_path: Path, how: str) -> None:
    ssh = str(fake_ssh(tmp_path, "fail")) if how == "fail" else str(tmp_path / "no-such-ssh")
    master = SshMaster("ssh://arm-host", str(tmp_path / "ctl"), ssh)
    started = time.monotonic()
    master.start()
    assert master.channel_command() is None
    assert time.monotonic() - started < 5  # a failed master is known at once, not after MASTER_SECONDS


def test_a_master_that_never_comes_up_is_given_up_and_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialbridge, "MASTER_SECONDS", 0.5)
    master = SshMaster("ssh://arm-host", str(tmp_path / "ctl"), str(fake_ssh(tmp_path, "hang")))
    master.start()
    assert master.channel_command() is None
    assert master._process is None
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("-M -N -S ") and "BatchMode=yes" in calls[0]  # never waits on a prompt


def test_a_bridge_to_a_host_without_a_master_falls_back_to_the_docker_cli(tmp_path: Path) -> None:
    bridge = dialbridge.DialBridge("ssh://arm-host", ssh=str(fake_ssh(tmp_path, "fail")))
    try:
        assert not bridge.multiplexed
        assert os.path.exists(bridge.path)
    finally:
        bridge.close()
    assert not os.path.exists(bridge.path)
