"""pytest-xdist roles, and what a worker tells the controller.

A worker is told apart by ``config.workerinput``, as pytest-xdist itself does: an environment
variable such as PYTEST_XDIST_WORKER is inherited by every pytest started from inside a worker
(pytester runs, subprocesses), which are not workers. A controller collects and runs nothing
itself: it builds early (early.py), gathers the workers' figures for its summary and prunes
once every worker is done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    from pytest_multiarch.session import MultiarchSession

Role = Literal["worker", "controller", "single"]
REPORT_KEY = "multiarch"


def role(config: pytest.Config) -> Role:
    """ "worker", "controller" (of pytest-xdist workers) or "single"."""
    if hasattr(config, "workerinput"):
        return "worker"
    return "controller" if config.pluginmanager.has_plugin("dsession") else "single"


def run_id(config: pytest.Config) -> str | None:
    """The id all workers of one xdist run share (their ``testrunuid``); None elsewhere."""
    worker_input = getattr(config, "workerinput", None)
    return str(worker_input["testrunuid"]) if worker_input else None


def worker_report(session: MultiarchSession) -> dict[str, Any]:
    """What the controller needs from a worker (sent with xdist's workeroutput): the summary's
    per-platform columns, and which builds to keep when it prunes older ones."""
    import dataclasses

    return {
        "stats": {platform: dataclasses.asdict(stats) for platform, stats in session.notes.stats.items()},
        "slots": {slot: sorted(keys) for slot, keys in session.images.built_slots().items()},
    }


class ControllerReports:
    """What the workers reported, folded together on the controller."""

    def __init__(self) -> None:
        self.slots: dict[str, set[str]] = {}

    def merge(self, session: MultiarchSession | None, report: dict[str, Any]) -> None:
        """A worker's report: its stats into the session's summary, its builds kept from pruning."""
        if session is not None:
            session.notes.merge(report.get("stats", {}))
        for slot, keys in report.get("slots", {}).items():
            self.slots.setdefault(slot, set()).update(keys)
