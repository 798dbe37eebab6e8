"""Errors the plugin reports as a message of one screen instead of a traceback.

Every ``MultiarchError`` raised while setting up a test is shown as its message alone (see
``plugin.pytest_runtest_makereport``); each message says what happened and what to do.
"""

from __future__ import annotations

from pytest_multiarch import enginefaults

DOCTOR_HINT = "Run `python -m pytest_multiarch doctor` to check this machine's Docker setup."


class MultiarchError(Exception):
    """Base class: the message is complete and is shown without a traceback."""


class UsageError(MultiarchError):
    """Bad configuration (a platform string, a build arg, a path); raised before any build."""


class EngineError(MultiarchError):
    """The Docker engine or buildx cannot be used at all."""


class PlatformUnavailable(MultiarchError):
    """This engine cannot run the platform (no emulator); its tests skip, or fail when strict."""


class BuildError(MultiarchError):
    """``docker buildx build`` failed for one platform."""


class ImageMismatch(MultiarchError):
    """The loaded image, or ``uname -m`` inside it, is not of the requested platform."""


class ContainerError(MultiarchError):
    """The container exited during start, or never became ready. When it exited: its
    ``exit_code`` and the tail of its ``logs``."""

    def __init__(self, message: str, exit_code: int | None = None, logs: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.logs = logs


class HookSkipped(MultiarchError):
    """``pytest.skip`` in ``pytest_multiarch_container_started``: that platform's tests skip."""


class EngineGone(EngineError):
    """The engine stopped answering while a test used it (engine.Engine.call)."""


class EngineRefused(MultiarchError):
    """The engine answered a call with an error (engine.Engine.call), e.g. no such container."""


class EmulatorCrash(MultiarchError):
    """A container, run or command of an emulated platform died with QEMU's crash report."""


class CommandTimeout(MultiarchError):
    """A command run with ``container.exec`` did not finish within its timeout."""


class ExecError(MultiarchError):
    """A command run with ``container.exec`` exited non-zero."""

    def __init__(self, cmd: str | list[str], exit_code: int, output: str) -> None:
        self.cmd = cmd
        self.exit_code = exit_code
        self.output = output
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        super().__init__(f"command {shown!r} exited with code {exit_code}; output:\n{output.rstrip()}")


def docker_said(exc: BaseException) -> str:
    """The first meaningful line of what docker printed for ``exc``.

    Never the text of an exception from the docker CLI wrapper (python-on-whales): it holds the
    whole command line, build args included.
    """
    from_cli = enginefaults.from_cli(exc)
    text = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or ("" if from_cli else str(exc))
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    for prefix in ("ERROR: ", "Error response from daemon: "):
        line = line.removeprefix(prefix)
    return line.rstrip(".") or (type(exc).__name__ if not from_cli else "no output")


def install_emulator_command(arch: str) -> str:
    """The distribution-independent way to register the QEMU emulator for ``arch`` (F flag)."""
    return f"docker run --privileged --rm tonistiigi/binfmt --install {arch}"
