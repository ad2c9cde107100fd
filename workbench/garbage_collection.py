"""Collect cyclic garbage on the GUI thread only.

Python's cyclic collector runs on whichever thread happens to allocate when a threshold is
crossed. When that is the run's worker thread and the garbage contains a Qt widget (a closed dialog,
a menu, a window of an earlier session), PySide destroys the widget on the worker thread. That
deadlocked the application: the worker held a Qt object mutex and waited for the GIL, while the
GUI thread held the GIL and waited for that mutex (seen in the GUI tests, with native stacks
from py-spy). Automatic collection is therefore switched off, and a timer on the GUI thread runs
the collections that the thresholds call for.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 1000


class GuiThreadGarbageCollector(QObject):
    """Garbage collector driven by a timer on its own thread, with automatic collection off."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setObjectName("lampreia.garbage-collection")
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect_due)

    def start(self) -> None:
        gc.disable()
        self.timer.start()
        log.debug("Automatic garbage collection off; collecting on the GUI thread every %d ms", self.timer.interval())

    def stop(self) -> None:
        """Stop the timer and give collection back to Python."""
        self.timer.stop()
        gc.enable()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count has passed its threshold and return the objects freed."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                return gc.collect(generation)
        return 0
