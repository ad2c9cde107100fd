"""Run one short blocking call (a teacher check, a tokenizer lookup) off the GUI thread."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import LampreiaError, RunCancelled
from engine.events import CancellationToken
from workbench.threads import thread_registry

log = logging.getLogger(__name__)


class _CallThread(QThread):
    """Thread that runs one function; created and owned by the GUI thread, runs the call in its own."""

    completed = Signal(object, object)  # (result, error message or None)

    def __init__(self, function: Callable[[], Any], description: str) -> None:
        super().__init__()
        self._function = function
        self._description = description
        self.setObjectName(f"workbench.call: {description}")

    def run(self) -> None:
        try:
            result = self._function()
        except RunCancelled:
            log.info("%s cancelled", self._description)
            self.completed.emit(None, f"{self._description} was cancelled.")
            return
        except LampreiaError as error:
            log.info("%s failed: %s", self._description, error)
            self.completed.emit(None, str(error))
            return
        except Exception as error:  # any failure must reach the dialog that waits for it
            log.exception("%s failed unexpectedly", self._description)
            self.completed.emit(None, f"{self._description} failed: {type(error).__name__}: {error}. The traceback is in the log.")
            return
        self.completed.emit(result, None)


class BackgroundCall(QObject):
    """Call ``function`` on a worker thread and report on the GUI thread.

    Owned by the GUI thread. ``succeeded(result)`` or ``failed(message)`` is emitted once, where
    ``message`` is the user-facing text of a ``LampreiaError`` (or a generic text for other
    exceptions, whose traceback goes to the log). A call that takes a ``CancellationToken`` (a Hub
    download, for one) gets ``cancel``; ``cancel()`` and the thread registry's shutdown set it,
    and the call then ends with ``failed``. Other calls run to their end, and cancelling only
    discards their result.
    """

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        function: Callable[[], Any],
        description: str,
        parent: QObject | None = None,
        cancel: CancellationToken | None = None,
    ) -> None:
        super().__init__(parent)
        self.cancel_token = cancel or CancellationToken()
        self._thread = _CallThread(function, description)
        self._thread.completed.connect(self._on_completed)

    def start(self) -> None:
        thread_registry().track(self._thread, stop=self.cancel_token.cancel)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the call to stop (thread-safe); its result, if any still comes, is dropped."""
        self.cancel_token.cancel()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    @Slot(object, object)
    def _on_completed(self, result: Any, error: str | None) -> None:
        if self.cancel_token.cancelled and error is None:
            return
        if error is None:
            self.succeeded.emit(result)
        else:
            self.failed.emit(error)
