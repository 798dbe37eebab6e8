"""The release gate reads a published index again when its registry answers with a transient
error (a 5xx, 429), and fails at once, naming the reference, on any other (pure logic: the
docker CLI is a stand-in)."""

from __future__ import annotations

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from pytest_multiarch import gate
from pytest_multiarch.gate import GateError

REF = "127.0.0.1:5000/app:1.0"
INDEX = '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}'
SERVER_ERROR = (
    b"ERROR: httpReadSeeker: failed open: unexpected status code http://127.0.0.1:5000/v2/app/manifests/"
    b"sha256:a53a: 500 Internal Server Error - Server message: unknown: unknown error\n"
)


def answering(monkeypatch: pytest.MonkeyPatch, *answers: bytes | str) -> list[list[str]]:
    """``run`` answers in turn: bytes are a failure's stderr, a str is the output."""
    calls: list[list[str]] = []
    pending = list(answers)

    def run(cmd: list[str], capture_stderr: bool = True) -> str:
        calls.append(cmd)
        answer = pending.pop(0)
        if isinstance(answer, bytes):
            raise DockerException([str(part) for part in cmd], 1, stderr=answer)
        return answer

    monkeypatch.setattr(gate, "run", run)
    monkeypatch.setattr(gate, "REGISTRY_RETRY_SECONDS", (0.0, 0.0, 0.0))
    return calls


@pytest.mark.parametrize(
    "transient", [SERVER_ERROR, b"ERROR: unexpected status from GET request: 503 Service Unavailable\n",
                  b"ERROR: unexpected status from HEAD request: 429 Too Many Requests\n"],
)  # fmt: skip
def test_a_transient_registry_error_is_asked_again(monkeypatch: pytest.MonkeyPatch, transient: bytes) -> None:
    calls = answering(monkeypatch, transient, transient, INDEX)
    assert gate._imagetools(DockerClient(), REF, "{{json .Manifest}}") == INDEX
    assert len(calls) == 3


def test_a_registry_that_keeps_failing_is_a_gate_error_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = answering(monkeypatch, *[SERVER_ERROR] * 4)
    with pytest.raises(GateError, match=rf"cannot read {REF} from its registry: .*500 Internal Server Error"):
        gate._imagetools(DockerClient(), REF, "{{json .Manifest}}")
    assert len(calls) == 4


def test_any_other_error_is_a_gate_error_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = answering(monkeypatch, b"ERROR: 127.0.0.1:5000/app:1.0: not found\n", INDEX)
    with pytest.raises(GateError, match=r"not found\. Check the reference"):
        gate._imagetools(DockerClient(), REF, "{{json .Manifest}}")
    assert len(calls) == 1
