"""Run the engine's blocking trainer on a worker thread and re-emit its events as Qt signals.

The trainer calls its event sink on the worker thread, and the sink emits
``RunWorker.events_emitted`` with a list of events. The receiver lives on the GUI thread, so Qt
queues the list there. Step and progress events, which come many times a second, are sent at most
every 250 ms, because each queued signal wakes the GUI thread. On a machine with few cores every
wake-up takes a core from torch's worker threads in the middle of a step.
Events are the engine's frozen dataclasses (built-in types and NumPy arrays), so no torch object
or engine state crosses threads.

Stop sets the engine's ``CancellationToken``, which the trainer polls between steps. The run then
ends as ``cancelled``, and everything it logged so far stays in the store.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.config import RunConfig
from engine.errors import LampreiaError, StoreError
from engine.events import CancellationToken, Event, Progress, RunFailed, RunStarted, StepLogged
from engine.run_store import RunStore
from engine.trainer import resume_distillation, run_distillation
from workbench.threads import thread_registry

log = logging.getLogger(__name__)

# Maximum delay of a step or progress event on its way to the GUI thread.
BATCH_INTERVAL_S = 0.25


class RunWorker(QObject):
    """One distillation run. Created on the GUI thread, then moved to its own QThread, where ``run`` executes."""

    events_emitted = Signal(object)  # list of engine events, in order
    done = Signal(str)  # final status: finished, cancelled or failed

    def __init__(self, store: RunStore, cancel: CancellationToken, config: RunConfig | None = None, resume_run_id: int | None = None) -> None:
        super().__init__()
        if (config is None) == (resume_run_id is None):
            raise ValueError("give either a config to run or the id of a run to resume")
        self._store = store
        self._cancel = cancel
        self._config = config
        self._resume_run_id = resume_run_id
        self._run_id: int | None = resume_run_id
        self._pending: list[Event] = []
        self._last_sent = 0.0

    @Slot()
    def run(self) -> None:
        status = "failed"
        try:
            if self._config is not None:
                result = run_distillation(self._config, self._store, self._send, self._cancel)
            else:
                result = resume_distillation(self._resume_run_id, self._store, self._send, self._cancel)
            status = result.status
        except LampreiaError as error:
            # resume_distillation raises before the trainer starts (no checkpoint, run finished), so
            # the stored run did not change and the event names no failed run.
            log.warning("Run %s could not start: %s", self._run_id, error)
            self._send(RunFailed(None, str(error), type(error).__name__))
        except Exception as error:  # the trainer reports run failures itself; this is a bug, and must not kill the thread silently
            log.exception("Run %s stopped on an unexpected error in the worker", self._run_id)
            message = f"The run stopped on an unexpected error: {type(error).__name__}: {error}. The full traceback is in the log."
            self._record_failure(message)
            self._send(RunFailed(self._run_id, message, type(error).__name__))
        finally:
            self._flush()
            self.done.emit(status)

    def _send(self, event: Event) -> None:
        """Event sink handed to the trainer; runs on the worker thread."""
        if isinstance(event, RunStarted):
            self._run_id = event.run_id
        self._pending.append(event)
        frequent = isinstance(event, (StepLogged, Progress))
        if not frequent or time.monotonic() - self._last_sent >= BATCH_INTERVAL_S:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            events, self._pending = self._pending, []
            self._last_sent = time.monotonic()
            self.events_emitted.emit(events)

    def _record_failure(self, message: str) -> None:
        """Mark the run failed if the trainer left it running (it records its own failures otherwise)."""
        if self._run_id is None:
            return
        try:
            if self._store.get_run(self._run_id).status == "running":
                self._store.finish_run(self._run_id, "failed", error=message)
        except StoreError as error:
            log.error("Could not record the failure of run %s: %s", self._run_id, error)


class RunController(QObject):
    """Starts, stops and joins the worker thread of the one active run. Owned by the GUI thread."""

    events_received = Signal(object)  # list of engine events, in order, one signal per batch
    running_changed = Signal(bool)
    run_ended = Signal(str)  # final status, after the worker thread has ended

    def __init__(self, store: RunStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._thread: QThread | None = None
        self._worker: RunWorker | None = None
        self._cancel: CancellationToken | None = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None

    @property
    def is_stopping(self) -> bool:
        return self._cancel is not None and self._cancel.cancelled

    def start(self, config: RunConfig) -> None:
        cancel = CancellationToken()
        self._launch(RunWorker(self._store, cancel, config=config), cancel, "new run")

    def resume(self, run_id: int) -> None:
        cancel = CancellationToken()
        self._launch(RunWorker(self._store, cancel, resume_run_id=run_id), cancel, f"resume of run {run_id}")

    def stop(self) -> None:
        """Ask the trainer to stop at its next check; ``run_ended`` follows when it has."""
        if self._cancel is not None and not self._cancel.cancelled:
            log.info("Stop requested by the user")
            self._cancel.cancel()

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop the run and block until its thread has ended; return False if it did not end in time.

        For application exit only: the GUI thread is blocked for as long as the trainer takes to
        reach its next cancellation check.
        """
        if self._thread is None:
            return True
        self.stop()
        if not self._thread.wait(timeout_ms):
            log.error("The run thread did not stop within %d ms", timeout_ms)
            return False
        self._release("cancelled")
        return True

    def _launch(self, worker: RunWorker, cancel: CancellationToken, description: str) -> None:
        if self._thread is not None:
            raise RuntimeError("a run is already active")
        thread = QThread()
        thread.setObjectName(f"workbench.run: {description}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.events_emitted.connect(self._relay)
        worker.done.connect(self._on_worker_done)
        thread_registry().track(thread, stop=cancel.cancel)

        self._thread, self._worker, self._cancel = thread, worker, cancel
        log.info("Starting %s", description)
        thread.start()
        self.running_changed.emit(True)

    @Slot(object)
    def _relay(self, events: list[Event]) -> None:
        # One signal per batch: a Python slot costs the GUI thread tens of microseconds per call,
        # and a run sends dozens of events a second.
        self.events_received.emit(events)

    @Slot(str)
    def _on_worker_done(self, status: str) -> None:
        if self._thread is None:  # shutdown() already joined the thread
            return
        self._release(status)

    def _release(self, status: str) -> None:
        thread = self._thread
        thread.quit()
        thread.wait()
        self._thread = self._worker = self._cancel = None
        self.running_changed.emit(False)
        self.run_ended.emit(status)
