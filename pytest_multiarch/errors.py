"""Errors the plugin reports as a message of one screen instead of a traceback.

Every ``MultiarchError`` raised while setting up a test is shown as its message alone (see
``plugin.pytest_runtest_makereport``); each message says what happened and what to do.
"""

from __future__ import annotations

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
    """The container exited during start, or never became ready."""


class ExecError(MultiarchError):
    """A command run with ``container.exec`` exited non-zero."""

    def __init__(self, cmd: str | list[str], exit_code: int, output: str) -> None:
        self.cmd = cmd
        self.exit_code = exit_code
        self.output = output
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        super().__init__(f"command {shown!r} exited with code {exit_code}; output:\n{output.rstrip()}")
