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
import time

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 1000
# A full collection walks every object not frozen at start-up, which can take over 100 ms of the
# GUI thread during a run. So it runs at most this often, while generations 0 and 1 run when due.
FULL_COLLECTION_INTERVAL_S = 60.0
# The first collection after a run has read a GLUE file walks the new rows: about 35 ms of the
# GUI thread for 4,000 SST-2 rows (bench/gui_overhead.py).


class GuiThreadGarbageCollector(QObject):
    """Garbage collector driven by a timer on its own thread, with automatic collection off."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setObjectName("lampreia.garbage-collection")
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect_due)
        self._last_full = time.monotonic()

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
        full_allowed = time.monotonic() - self._last_full >= FULL_COLLECTION_INTERVAL_S
        for generation in (2, 1, 0):
            if counts[generation] <= thresholds[generation] or (generation == 2 and not full_allowed):
                continue
            if generation == 2:
                self._last_full = time.monotonic()
            return gc.collect(generation)
        return 0
