"""Worker threads are tracked until they end, so none is destroyed while still running."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread

from engine.errors import TeacherLoadError
from workbench.background import BackgroundCall
from workbench.threads import thread_registry


def test_background_call_tracked_until_done(qtbot):
    release = threading.Event()
    call = BackgroundCall(lambda: release.wait(10) and 42, "Waiting for the test")
    call.start()
    assert call.is_running()
    assert any(t.objectName() == "workbench.call: Waiting for the test" for t in thread_registry().running())

    with qtbot.waitSignal(call.succeeded, timeout=10_000) as done:
        release.set()
    assert done.args == [42]
    qtbot.waitUntil(lambda: thread_registry().running() == [], timeout=5000)


def test_background_call_reports_domain_error(qtbot):
    def fail():
        raise TeacherLoadError("The teacher 'x' was not found.", "Check the spelling.")

    call = BackgroundCall(fail, "Checking teacher 'x'")
    with qtbot.waitSignal(call.failed, timeout=10_000) as failed:
        call.start()
    assert failed.args == ["The teacher 'x' was not found. Check the spelling."]


def test_background_call_reports_unexpected_error(qtbot):
    call = BackgroundCall(lambda: 1 / 0, "Dividing")
    with qtbot.waitSignal(call.failed, timeout=10_000) as failed:
        call.start()
    assert failed.args[0].startswith("Dividing failed: ZeroDivisionError")


def test_stop_all_joins_and_reports_stuck(qtbot):
    release = threading.Event()
    stopped: list[bool] = []
    registry = thread_registry()

    class BlockingThread(QThread):
        def run(self) -> None:
            release.wait(10)

    thread = BlockingThread()
    registry.track(thread, stop=lambda: stopped.append(True))
    thread.start()

    stuck = registry.stop_all(timeout_ms=100)
    assert stopped == [True]
    assert len(stuck) == 1

    release.set()
    assert registry.stop_all(timeout_ms=10_000) == []
    assert registry.running() == []
