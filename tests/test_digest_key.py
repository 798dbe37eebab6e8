"""The per-user key of keyed digests (secrets.keyed_digest) is the same for every thread and
process, also when two of them make it at once: the build key of each platform depends on it."""

from __future__ import annotations

import os
import threading

from pytest_multiarch import secrets


def test_two_builds_making_the_key_at_once_get_the_same_one(tmp_path, monkeypatch):
    """A session's first builds (amd64 and arm64, in parallel) both ask for the key in a fresh
    cache folder. One makes it; the other, asking while it is being written, must not read it
    half written (an empty key gave one platform another build key, rebuilt on the next run)."""
    writing, asked = threading.Event(), threading.Event()
    random_bytes = os.urandom

    def slow_urandom(size: int) -> bytes:
        if not writing.is_set():  # the first maker: the other thread asks meanwhile
            writing.set()
            asked.wait(timeout=5)
        return random_bytes(size)

    monkeypatch.setattr(secrets.os, "urandom", slow_urandom)
    keys: dict[str, bytes] = {}

    def first() -> None:
        keys["first"] = secrets._key(tmp_path)

    def second() -> None:
        writing.wait(timeout=5)
        keys["second"] = secrets._key(tmp_path)
        asked.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(keys["first"]) == 32 and keys["first"] == keys["second"] == (tmp_path / "digest.key").read_bytes()
    assert (tmp_path / "digest.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["digest.key"]  # nothing else left behind
