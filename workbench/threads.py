"""A registry of the worker threads the workbench starts, so none outlives its window.

PySide deletes a ``QThread`` whose last Python reference goes away, and deleting a running thread
aborts the process ("QThread: Destroyed while thread is still running"). The registry therefore
holds a strong reference to every started thread until the thread has finished, and keeps a
stop callback for each, so that shutdown code and tests can stop and join whatever is left.
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QObject, QThread, Slot

log = logging.getLogger(__name__)


class ThreadRegistry(QObject):
    """Strong references to running worker threads. Owned by the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self._threads: dict[QThread, Callable[[], None] | None] = {}

    def track(self, thread: QThread, stop: Callable[[], None] | None = None) -> None:
        """Hold ``thread`` until it finishes; ``stop`` requests an early end and must be thread-safe."""
        self._threads[thread] = stop
        thread.finished.connect(self._forget_finished)

    @Slot()
    def _forget_finished(self) -> None:
        for thread in [t for t in self._threads if t.isFinished()]:
            # finished is emitted just before run() returns; wait() makes sure it has returned.
            thread.wait()
            del self._threads[thread]

    def running(self) -> list[QThread]:
        return [thread for thread in self._threads if thread.isRunning()]

    def stop_all(self, timeout_ms: int) -> list[QThread]:
        """Ask every tracked thread to stop and join it; return those still running after ``timeout_ms`` each."""
        stuck = []
        for thread, stop in list(self._threads.items()):
            if stop is not None and thread.isRunning():
                stop()
            if not thread.wait(timeout_ms):
                log.error("Worker thread %s did not stop within %d ms", thread.objectName(), timeout_ms)
                stuck.append(thread)
        self._forget_finished()
        return stuck


_registry: ThreadRegistry | None = None


def thread_registry() -> ThreadRegistry:
    """Return the process-wide registry, creating it on first use (call from the GUI thread)."""
    global _registry
    if _registry is None:
        _registry = ThreadRegistry()
    return _registry
