"""Fixtures of the GUI tests: an isolated store and settings file, the main window, and guards
that fail a test which leaves a worker thread or a repeating workbench timer running.

Real runs use the MiniLM teacher (installed with the package, works offline) and a few hundred
real SST-2 rows from the shared glue_data folder, so that the whole GUI suite stays within a few
minutes on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from engine.run_store import RunStore
from workbench.garbage_collection import GuiThreadGarbageCollector
from workbench.main_window import MainWindow
from workbench.settings import WorkbenchSettings
from workbench.threads import thread_registry

# Time a worker thread may take to end after the test's last step (a background check that is
# about to return) before the guard counts it as left running.
THREAD_GRACE_MS = 1000
RUN_TIMEOUT_MS = 240_000

SMALL_RUN = {
    "train_limit": "300",
    "dev_limit": "200",
    "epochs": "1",
    "batch_size": "32",
}


@pytest.fixture(scope="session", autouse=True)
def gui_thread_garbage_collection(qapp):
    """Collect garbage on the GUI thread only, as the application does."""
    collector = GuiThreadGarbageCollector(qapp)
    collector.start()
    yield
    collector.stop()


@pytest.fixture(autouse=True)
def no_thread_left(qtbot):
    """Fail the test if a worker thread is still running at its end (then stop and join it)."""
    yield
    registry = thread_registry()
    try:
        qtbot.waitUntil(lambda: not registry.running(), timeout=THREAD_GRACE_MS)
    except AssertionError:
        pass
    leftover = [thread.objectName() for thread in registry.running()]
    if leftover:
        stuck = registry.stop_all(timeout_ms=RUN_TIMEOUT_MS)
        qtbot.wait(200)  # deliver the queued end-of-run signals to the window
        pytest.fail(f"the test left worker threads running: {leftover}" + (f"; still running: {len(stuck)}" if stuck else ""))

    active_timers = [
        timer.objectName()
        for widget in QApplication.topLevelWidgets()
        for timer in widget.findChildren(QTimer)
        if timer.objectName().startswith("workbench.") and timer.isActive() and not timer.isSingleShot()
    ]
    if active_timers:
        pytest.fail(f"the test left workbench timers running: {active_timers}")


@pytest.fixture
def store(isolated_data_dir: Path):
    run_store = RunStore(isolated_data_dir / "runs.sqlite3")
    yield run_store
    run_store.close()


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "workbench.ini"


@pytest.fixture
def settings(settings_file: Path) -> WorkbenchSettings:
    return WorkbenchSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Messages the window showed, instead of message boxes; closing during a run is confirmed."""
    recorded: list[tuple[str, str]] = []

    def record(self: MainWindow, title: str, text: str) -> None:
        self.last_message = (title, text)
        recorded.append((title, text))

    monkeypatch.setattr(MainWindow, "show_message", record)
    monkeypatch.setattr(MainWindow, "confirm_close_during_run", lambda self: True)
    return recorded


@pytest.fixture
def window(qtbot, store: RunStore, settings: WorkbenchSettings, messages) -> MainWindow:
    main_window = MainWindow(store, settings)
    qtbot.addWidget(main_window)
    main_window.resize(1400, 900)
    main_window.show()
    qtbot.waitExposed(main_window)
    return main_window


def fill_small_run(qtbot, window: MainWindow, glue_dir: Path, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    """Fill the configuration panel through its widgets: SST-2 from glue_dir, MiniLM teacher, tiny student."""
    panel = window.config_panel
    values = {**SMALL_RUN, **overrides}

    panel.editors["task"].set_value("sst2")
    source = panel.editors["data.glue_dir"]
    source.folder_button.setChecked(True)
    monkeypatch.setattr(source, "choose_folder", lambda start: str(glue_dir))
    qtbot.mouseClick(source.browse_button, Qt.MouseButton.LeftButton)

    panel.teacher_list.set_teachers(["minilm"])
    panel.apply_size_preset("tiny")
    _type(qtbot, panel.editors["student.tokenizer"].line_edit, "minilm")
    _type(qtbot, panel.editors["data.train_limit"].line_edit, values["train_limit"])
    _type(qtbot, panel.editors["data.dev_limit"].line_edit, values["dev_limit"])
    _type(qtbot, panel.editors["training.epochs"].line_edit, values["epochs"])
    _type(qtbot, panel.editors["training.batch_size"].line_edit, values["batch_size"])
    panel.editors["training.device"].set_value("cpu")
    if "name" in overrides:
        _type(qtbot, panel.editors["name"].line_edit, overrides["name"])


def _type(qtbot, line_edit, text: str) -> None:
    line_edit.clear()
    qtbot.keyClicks(line_edit, text)
