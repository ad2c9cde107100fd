"""Pay the run's one-off Python costs while the window is idle, not while a run is live.

Two costs held the GIL for up to 300 ms at a time during a run and froze the live plots by that
much (bench/gui_overhead.py):

- Lazy imports. The first run of a session imports ``torch._dynamo`` (with sympy and mpmath) when
  it builds its first optimizer, and transformers imports a tokenizer's module when the tokenizer
  is first loaded.
- Full garbage collections. torch, transformers and Qt leave about half a million objects that
  the cyclic collector walks at every generation-2 collection (about 0.2 s here), triggered by any
  thread that allocates many objects, such as the run reading a GLUE file.

Right after start-up a background thread imports those modules, then moves every object that
exists by then into the collector's permanent generation (``gc.freeze``), so later collections
walk only what the session creates. It does not collect first, because a collection on that
thread can destroy a Qt object, whose destructor then waits for the GIL while holding a Qt lock
that the GUI thread waits for (a GUI test hung so). The garbage frozen with the rest is small, about 2,000
objects at start-up, and stays in memory until the process ends.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
import time

from engine.transformers_imports import transformers_import_lock

log = logging.getLogger(__name__)

# The modules a run imports on first use, in the order a run needs them.
LAZY_RUN_MODULES = (
    "transformers.models.auto.tokenization_auto",
    "transformers.models.auto.modeling_auto",
    "transformers.models.bert.tokenization_bert",
    "torch._dynamo",
)


class ImportWarmup:
    """The background thread of ``warm_run_imports``, which can be stopped between two imports."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._import_all, name="import-warmup", daemon=True)

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def stop(self, timeout: float) -> bool:
        """Skip the imports not started yet, wait for the one in progress, and return whether the thread ended.

        Without this, a window closed within seconds of opening left the thread importing while
        the interpreter shut down, and the import failed with errors on the closed log stream.
        """
        self._stopping.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _import_all(self) -> None:
        started = time.perf_counter()
        for name in LAZY_RUN_MODULES:
            if self._stopping.is_set():
                return
            try:
                if name.startswith("transformers"):
                    # Under the engine's lock: transformers fails imports that run in two threads at once.
                    with transformers_import_lock():
                        importlib.import_module(name)
                else:
                    importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module that fails here fails again, with context, in the run
                log.warning("Could not import %s ahead of the first run", name, exc_info=True)

        gc.freeze()
        log.debug("Warmed the run's lazy imports and froze %d start-up objects in %.1f s", gc.get_freeze_count(), time.perf_counter() - started)


def warm_run_imports() -> ImportWarmup:
    """Start importing ``LAZY_RUN_MODULES`` and freezing the start-up objects on a background thread.

    A run that starts before the thread is done loses nothing. Python's import lock makes it wait
    for a module that is half imported, and the engine resolves transformers' names under the lock
    of ``engine.transformers_imports``, which this thread takes for each transformers import.
    """
    warmup = ImportWarmup()
    warmup.thread.start()
    return warmup
