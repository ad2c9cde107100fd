"""Training speed of the student on the main thread against a QThread, as the workbench runs it.

The workbench trains on a QThread while the main thread waits in Qt's event loop; ``lampreia
run`` trains on the main thread. bench/gui_overhead.py compares the two across processes, where
this machine's speed varies by 10-30% from one process to the next. This script times the same
training passes in one process, interleaved:

- **main thread**: the student's training steps on the main thread, as the CLI runs them;
- **QThread**: the same steps on a QThread (one thread for all passes, as a run has), while the
  main thread waits in a QEventLoop with no window and no timers;
- **QThread, GUI garbage collection**: the same, with the workbench's garbage-collection policy
  (automatic collection off, a 1 s timer on the main thread collecting what is due).

Each pass trains the default student on 24 length-bucketed batches of 32 real SST-2 rows, in the
trainer's default precision (bf16 autocast on CPUs with native bf16, else fp32). The minor page
faults of the training thread during each pass are printed as a detail. glibc's malloc serves
threads other than the main one from arenas of their own (mallopt(3), M_ARENA_MAX), so the two
threads may reuse freed memory differently.

    python bench/run_thread.py [--quick] [--data DIR] [--threads N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench.common import (  # noqa: E402
    add_common_arguments,
    add_data_argument,
    apply_threads,
    data_folder,
    describe_environment,
    detail,
    interleaved_medians,
    median,
    summary,
    warn_if_busy,
)
from bench.student_throughput import StudentTrainer, passes, real_batches  # noqa: E402

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThread, Signal, Slot  # noqa: E402

from engine.devices import cpu_has_native_bf16  # noqa: E402
from workbench.garbage_collection import GuiThreadGarbageCollector  # noqa: E402


class PassWorker(QObject):
    """Runs one training pass per ``requested`` signal on its QThread and reports the page faults."""

    requested = Signal()
    finished = Signal(int)

    def __init__(self, run_pass) -> None:
        super().__init__()
        self._run_pass = run_pass
        self.requested.connect(self._run)

    @Slot()
    def _run(self) -> None:
        self.finished.emit(faulted(self._run_pass))


def faulted(call) -> int:
    """Run ``call`` and return the minor page faults of the calling thread meanwhile."""
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    call()
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


class QThreadRunner:
    """Runs passes on one QThread while the main thread waits in a QEventLoop."""

    def __init__(self, run_pass) -> None:
        self.thread = QThread()
        self.thread.setObjectName("bench.run_thread")
        self.worker = PassWorker(run_pass)
        self.worker.moveToThread(self.thread)
        self.faults: list[int] = []
        self.thread.start()

    def run(self) -> None:
        loop = QEventLoop()

        def done(faults: int) -> None:
            self.faults.append(faults)
            loop.quit()

        self.worker.finished.connect(done)
        self.worker.requested.emit()
        loop.exec()
        self.worker.finished.disconnect(done)

    def close(self) -> None:
        self.thread.quit()
        self.thread.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    add_data_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)
    data = data_folder(args.data)
    detail(describe_environment())
    warn_if_busy()

    repeats = args.repeats or (1 if args.quick else 8)
    batches, vocab_size = real_batches(data, 2 if args.quick else 24, rows=2000)
    bf16 = cpu_has_native_bf16()
    run_pass = passes(StudentTrainer(vocab_size, bf16=bf16), batches)

    application = QCoreApplication.instance() or QCoreApplication(sys.argv)
    collector = GuiThreadGarbageCollector(application)
    qthread = QThreadRunner(run_pass)
    main_faults: list[int] = []

    def with_gui_collection() -> None:
        collector.start()
        try:
            qthread.run()
        finally:
            collector.stop()

    variants = {
        "main thread": lambda: main_faults.append(faulted(run_pass)),
        "QThread": qthread.run,
        "QThread, GUI garbage collection": with_gui_collection,
    }
    try:
        seconds = {name: median(times) for name, times in interleaved_medians(variants, repeats=repeats).items()}
    finally:
        qthread.close()

    detail(f"  minor page faults per pass (medians): main thread {median(main_faults):,.0f}, QThread (both variants) {median(qthread.faults):,.0f}")
    precision = "bf16 autocast" if bf16 else "fp32"
    summary(
        f"run thread (SST-2 bucketed, default student, {precision}, {repeats} passes each): main thread {seconds['main thread']:.2f} s, "
        f"QThread {seconds['QThread']:.2f} s, QThread with the GUI's garbage collection {seconds['QThread, GUI garbage collection']:.2f} s "
        f"per pass; speed on the QThread / on the main thread = {seconds['main thread'] / seconds['QThread']:.2f}x, "
        f"with the GUI's garbage collection {seconds['main thread'] / seconds['QThread, GUI garbage collection']:.2f}x (1.0 = no cost)"
    )


if __name__ == "__main__":
    main()
