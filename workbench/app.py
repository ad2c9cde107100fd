"""Start the workbench: logging, the QApplication, the stylesheet and the main window."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Callable, Sequence

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.errors import StoreError
from engine.logs import configure_logging
from engine.run_store import open_store
from resources import resource_path
from workbench.compute_threads import keep_openmp_threads_for_runs
from workbench.garbage_collection import GuiThreadGarbageCollector
from workbench.import_warmup import warm_run_imports
from workbench.launcher import StartUpInterrupt
from workbench.settings import APPLICATION_NAME, ORGANIZATION_NAME, WorkbenchSettings
from workbench.threads import thread_registry

log = logging.getLogger(__name__)

# How long the exit waits for worker threads after the window has closed, per thread.
EXIT_WAIT_MS = 300_000
# How long the exit waits for the import in progress on the warm-up thread. torch._dynamo, the
# slowest, took under a second on a 2-core machine.
WARMUP_EXIT_WAIT_S = 30.0


def load_stylesheet() -> str:
    """Return the workbench stylesheet, or an empty one (Qt's default look) when it cannot be read."""
    try:
        return resource_path("styles", "workbench.qss").read_text(encoding="utf-8")
    except OSError as error:
        log.warning("Cannot read the stylesheet: %s; using Qt's default look", error)
        return ""


def _parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lampreia gui", description="Open the Lampreia Workbench window.")
    parser.add_argument("--db", help="Run database file (default: runs.sqlite3 in the user data folder, or LAMPREIA_DATA_DIR).")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress details (INFO) to stderr.")
    known, qt_arguments = parser.parse_known_args(list(argv))
    known.qt_arguments = qt_arguments
    return known


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    # PySide prints exceptions raised in slots and carries on; this sends them to the log file too.
    log.critical("Uncaught exception in the GUI:\n%s", "".join(traceback.format_exception(kind, error, trace)))


def show_startup_error(title: str, text: str) -> None:
    """Show an error that prevents the window from opening (blocking, as nothing else is on screen)."""
    QMessageBox.critical(None, title, text)


def close_on_interrupt(app: QApplication, window) -> Callable[[], None]:
    """Close ``window`` on SIGINT (Ctrl-C in the terminal) through its ``close_on_interrupt``.

    Returns a function that restores the previous handling. Python runs a signal handler only when
    the interpreter next gets control, and Qt's event loop can wait in C++ for as long as nothing
    happens. So the signal also writes its number to a socket that a QSocketNotifier watches, which
    wakes the loop without a polling timer, and the window is closed from there. The Python
    handler itself does nothing: it could run before the window is shown, when closing it has no
    effect and the window then stays open.
    """
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_wakeup = signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:
        try:
            received = reader.recv(4096)
        except BlockingIOError:
            return
        if signal.SIGINT in received:
            window.close_on_interrupt()

    notifier.activated.connect(drain)
    previous_handler = signal.signal(signal.SIGINT, lambda _signal, _frame: None)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous_handler)
        signal.set_wakeup_fd(previous_wakeup)
        notifier.setEnabled(False)
        notifier.deleteLater()
        reader.close()
        writer.close()

    return restore


def prepare_gui_thread(app: QApplication) -> None:
    """Set up the GUI thread for runs on worker threads, as `lampreia gui` does.

    Call it before the GUI thread runs any torch operator. Start ``warm_run_imports`` once the
    window is on screen.
    """
    keep_openmp_threads_for_runs()
    if app.findChild(GuiThreadGarbageCollector) is None:
        GuiThreadGarbageCollector(app).start()


def run_app(argv: Sequence[str], start_up: StartUpInterrupt) -> int:
    """Open the main window and run the Qt event loop; return the process exit status.

    ``start_up`` records a Ctrl-C before the window is up; the start-up then ends with
    KeyboardInterrupt, which the caller reports.
    """
    arguments = _parse_arguments(argv)
    log_path = configure_logging(verbose=arguments.verbose)
    sys.excepthook = _log_uncaught

    app = QApplication.instance() or QApplication([sys.argv[0], *arguments.qt_arguments])
    app.setOrganizationName(ORGANIZATION_NAME)
    app.setApplicationName(APPLICATION_NAME)
    app.setWindowIcon(QIcon(str(resource_path("icons", "lampreia.svg"))))
    app.setStyleSheet(load_stylesheet())
    prepare_gui_thread(app)
    start_up.check()

    try:
        # A database this user cannot write (a copy from a cluster, a read-only share) opens read-only,
        # and the window then shows its runs without training or changing them.
        store = open_store(Path(arguments.db).expanduser() if arguments.db else None)
    except StoreError as error:
        log.error("Cannot open the run database: %s", error)
        show_startup_error("Cannot open the run database", str(error))
        return 1

    try:
        # Imported here so that the pyqtgraph options are set after the QApplication exists.
        from workbench.main_window import MainWindow

        start_up.check()
        window = MainWindow(store, WorkbenchSettings())
        start_up.check()
    except KeyboardInterrupt:
        store.close()
        raise
    app.aboutToQuit.connect(window.shutdown)
    restore_interrupt = close_on_interrupt(app, window)
    if start_up.received:
        # A Ctrl-C after the last check and before the handler of close_on_interrupt: close once the loop runs.
        QTimer.singleShot(0, window.close_on_interrupt)
    window.show()
    warmup = warm_run_imports()
    log.info("Workbench started; database %s, log %s", store.path, log_path)
    status = app.exec()
    restore_interrupt()

    # Stopping a teacher check or tokenizer lookup cancels its Hub download. A huggingface_hub
    # release that reports whole files only (2.4 reports bytes) still finishes the file in
    # progress first, for at most EXIT_WAIT_MS.
    stuck = thread_registry().stop_all(timeout_ms=EXIT_WAIT_MS)
    if stuck:
        log.error("%d worker threads are still running at exit: %s", len(stuck), [thread.objectName() for thread in stuck])
    if not warmup.stop(timeout=WARMUP_EXIT_WAIT_S):
        log.warning("The import warm-up thread did not end within %.0f s of exit", WARMUP_EXIT_WAIT_S)
    store.close()
    return int(status)
