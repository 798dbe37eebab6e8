"""Container lifetime: which collected test is the last to use each container, so that the
container is removed as soon as that test is done, overlapping the other platforms' tests
instead of adding to the end of the session.

A container that a fixture of wider scope than function uses is kept until pytest tears that
fixture down (its teardown may still use it): the container fixture's finalizer releases it.
An xdist worker runs what it is sent, in no order known beforehand: it keeps its containers.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import pytest

ContainerKey = Hashable  # (image spec, platform)


class Lifetimes:
    """Who uses which container, and what each finished test lets go."""

    def __init__(self) -> None:
        self._uses: dict[str, set[ContainerKey]] = {}  # nodeid → the containers it uses
        self._last_user: dict[str, list[ContainerKey]] = {}  # nodeid → containers free after it
        self._held: set[ContainerKey] = set()  # used by wider-scoped fixtures: released by their teardown

    def note(self, item: pytest.Item, key: ContainerKey, container_fixture: str) -> None:
        """At collection: ``item`` uses ``key``'s container through ``container_fixture``."""
        self._uses.setdefault(item.nodeid, set()).add(key)
        if held_beyond_the_test(item, container_fixture):
            self._held.add(key)

    def order_is_final(self, items: Sequence[pytest.Item]) -> None:
        """The run order is known: note each container's last user."""
        last: dict[ContainerKey, str] = {}
        for item in items:
            for key in self._uses.get(item.nodeid, ()):
                last[key] = item.nodeid
        for key, nodeid in last.items():
            if key not in self._held:
                self._last_user.setdefault(nodeid, []).append(key)

    def finished(self, nodeid: str) -> list[ContainerKey]:
        """The containers no test after ``nodeid`` needs."""
        return self._last_user.pop(nodeid, [])

    def held(self, key: ContainerKey) -> bool:
        """Released when the container fixture is finished, not after its last test."""
        return key in self._held


def held_beyond_the_test(item: pytest.Item, container_fixture: str) -> bool:
    """Does a fixture of yours with a scope wider than function, in ``item``'s closure, use the
    container (directly, through other fixtures, or by overriding the container fixture)?

    pytest has no public API for an item's fixture definitions and their scopes, so this reads
    ``item._fixtureinfo``; should pytest change it, the container is kept rather than guessed."""
    info = getattr(item, "_fixtureinfo", None)
    name2defs = getattr(info, "name2fixturedefs", None)
    if name2defs is None:
        return True
    users = {container_fixture}
    changed = True
    while changed:  # the fixtures that reach the container, through any chain of arguments
        changed = False
        for name, defs in name2defs.items():
            # every definition counts: an override may request the fixture it overrides
            if name not in users and any(users & set(d.argnames) for d in defs):
                users.add(name)
                changed = True
    return any(d.scope != "function" and not _is_own(d.func) for name in users for d in name2defs.get(name, ()))


def _is_own(func: Any) -> bool:
    module = getattr(func, "__module__", None) or ""
    return module == "pytest_multiarch" or module.startswith("pytest_multiarch.")
