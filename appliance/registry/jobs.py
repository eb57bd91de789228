"""Long work (garbage collection, fsck) run in a thread of a live server, one run at a time.

Plain threads, not Twisted: the admin API, the scheduler and tests all drive the same object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from twisted.logger import Logger

log = Logger()


class Worker(Protocol):
    progress: Any  # a dataclass the admin API shows while the work runs


class Job:
    """One kind of work: whether a run is going on, how far it is, how the last one ended.

    `expected`: failures that are an answer ("another GC holds the lock"), logged as a
    warning; anything else is logged with its traceback. Either way `error` says it.
    """

    def __init__(self, name: str, expected: tuple[type[Exception], ...] = ()) -> None:
        self.name = name
        self.expected = expected
        self.worker: Worker | None = None
        self.result: Any = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(
        self, worker: Worker, run: Callable[[], Any], finished: Callable[[Any], None] | None = None
    ) -> bool:
        """Call `run` in a thread, then `finished(result or None)`; False when a run is on."""
        if self.running:
            return False
        self.worker, self.result, self.error = worker, None, None
        self._thread = threading.Thread(
            target=self._run, args=(run, finished), name=self.name, daemon=True
        )
        self._thread.start()
        return True

    def _run(self, run: Callable[[], Any], finished: Callable[[Any], None] | None) -> None:
        try:
            self.result = run()
        except self.expected as error:
            self.error = str(error)
            log.warn("{job} did not run: {error}", job=self.name, error=error)
        except Exception as error:  # a thread must not die silently
            self.error = f"{self.name} failed: {error}"
            log.failure("{job} failed", job=self.name)
        if finished is not None:
            finished(self.result)

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        progress = asdict(self.worker.progress) if self.worker is not None else None
        return {"running": self.running, "progress": progress, "error": self.error}
