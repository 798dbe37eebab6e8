"""The machine check after a container starts (run.check_machine): an empty answer from ``uname
-m`` (podman's compatible API sometimes loses a short command's output) is asked again, never
taken for an image of another CPU; a wrong answer still fails."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_multiarch.errors import ImageMismatch
from pytest_multiarch.platforms import Platform
from pytest_multiarch.run import check_machine


class Answers:
    """A container stand-in whose exec answers ``uname -m`` from a list, in turn."""

    def __init__(self, platform: str, answers: list[str]) -> None:
        self.platform = Platform.parse(platform)
        self.answers = answers
        self.asked = 0
        self.command_timeout = 1.0
        self.timeouts: list[float | None] = []

    def exec(self, command: list[str], *, timeout: float | None = None) -> str:
        assert command == ["uname", "-m"]
        self.asked += 1
        self.timeouts.append(timeout)
        return self.answers.pop(0)


def test_an_empty_answer_is_asked_again() -> None:
    container = Answers("linux/arm64", ["", "aarch64\n"])
    check_machine(container)  # type: ignore[arg-type]
    assert container.asked == 2


@pytest.mark.parametrize(("answers", "shown"), [(["x86_64\n"], "'x86_64'"), (["", "", ""], "''")])
def test_a_wrong_or_lasting_empty_answer_is_an_image_of_another_cpu(answers: list[str], shown: str) -> None:
    container: Any = Answers("linux/arm64", answers)
    with pytest.raises(ImageMismatch, match=f"reports `uname -m` = {shown}, expected 'aarch64'"):
        check_machine(container)
    assert container.answers == []


def test_the_start_checks_the_machine_within_its_own_timeout_not_a_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start's ``uname -m`` is part of starting: a short --multiarch-request-timeout (1 s, say)
    must not fail a start on a loaded machine or under QEMU, where the start timeout is met."""
    from pytest_multiarch import start

    monkeypatch.setattr(start.ReadyWhenServing, "wait_until_ready", lambda self, inner: None)
    container: Any = Answers("linux/arm64", ["aarch64\n"])
    container.base_url = None
    plan = start.ContainerPlan({}, None, (), {}, {}, None, None, "the container", "")
    start._check_then_wait(container, inner=None, plan=plan, timeout=30.0, cancelled=lambda: False)  # type: ignore[arg-type]
    assert container.timeouts == [30.0]


def test_a_checks_timeout_is_given_to_each_uname() -> None:
    container: Any = Answers("linux/arm64", ["", "aarch64\n"])
    check_machine(container, timeout=12.5)
    assert container.timeouts == [12.5, 12.5]
