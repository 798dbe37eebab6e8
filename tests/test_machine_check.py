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

    def exec(self, command: list[str]) -> str:
        assert command == ["uname", "-m"]
        self.asked += 1
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
