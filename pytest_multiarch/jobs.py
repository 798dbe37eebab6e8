"""Background work of a session: keyed jobs on a bounded pool, and results computed once.

``Jobs`` runs at most one job per key (a build per image and platform, a container start per
image and platform), on a pool of a fixed size, and refuses new work once closed, cancelling
what is still queued. ``Once`` computes a value once, remembering the error too, so that a
failing preflight or hook is asked once and reported alike to every test that needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Closed(Exception):
    """The session is closing: no job is submitted any more."""


class Jobs(Generic[K, V]):
    """Futures by key: ``submit`` starts a job for a key at most once, on ``workers`` threads."""

    def __init__(self, name: str, workers: int) -> None:
        self._name = name
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # made on first use: most runs need no thread
        self._futures: dict[K, Future[V]] = {}
        self._closed = False

    def submit(self, key: K, job: Callable[[], V]) -> Future[V]:
        """The future of ``key``'s job, started now unless one exists; Closed once closed."""
        with self._lock:
            found = self._futures.get(key)
            if found is not None:
                return found
            if self._closed:
                raise Closed(self._name)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"multiarch-{self._name}")
            future = self._futures[key] = self._pool.submit(job)
            return future

    def get(self, key: K) -> Future[V] | None:
        with self._lock:
            return self._futures.get(key)

    def forget(self, key: K) -> Future[V] | None:
        """Take ``key``'s future out (a later submit starts a new job); the caller owns it."""
        with self._lock:
            return self._futures.pop(key, None)

    def items(self) -> list[tuple[K, Future[V]]]:
        with self._lock:
            return list(self._futures.items())

    def done(self) -> list[tuple[K, V]]:
        """The results of the jobs that finished without an error."""
        return [
            (key, future.result())
            for key, future in self.items()
            if future.done() and not future.cancelled() and future.exception() is None
        ]

    def close(self) -> None:
        """Refuse new jobs and cancel the queued ones. Running jobs go on: a container start
        gives up through its own ``cancelled`` check, and Images.close ends running buildx
        processes itself. Does not wait."""
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class Once(Generic[V]):
    """A value computed on first ``get``, or the error computing it raised, raised again on
    every later ``get``. Thread-safe: concurrent first calls compute it once."""

    def __init__(self, compute: Callable[[], V], remember: tuple[type[BaseException], ...] = (Exception,)) -> None:
        self._compute = compute
        self._remember = remember
        self._lock = threading.Lock()
        self._value: V | None = None
        self._error: BaseException | None = None
        self._known = False

    def get(self) -> V:
        with self._lock:
            if not self._known:
                try:
                    self._value = self._compute()
                except self._remember as exc:
                    self._error = exc
                self._known = True
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def peek(self) -> V | None:
        """The value if it is known and no error; never computes it."""
        with self._lock:
            return self._value if self._known and self._error is None else None
