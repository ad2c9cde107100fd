"""The ``lampreia gui`` command: it opens the window, closes on Ctrl-C, and reports a database it cannot open."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QApplication

from workbench import launcher
from workbench.main_window import MainWindow


def _use_temporary_settings(tmp_path: Path, monkeypatch) -> None:
    # run_app installs its own excepthook; pytest-qt's must be back after the test.
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def test_gui_command_opens_window(qtbot, tmp_path, monkeypatch):
    _use_temporary_settings(tmp_path, monkeypatch)
    database = tmp_path / "runs.sqlite3"
    seen: dict[str, str] = {}

    def inspect_and_quit() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["title"] = windows[0].windowTitle()
        seen["database"] = windows[0].database_label.text()
        seen["device"] = windows[0].device_label.text()
        windows[0].close()
        QApplication.quit()

    QTimer.singleShot(0, inspect_and_quit)
    assert launcher.main(["gui", "--db", str(database)]) == 0
    assert seen["title"] == "Lampreia Workbench"
    assert seen["database"] == f"Database: {database}"
    assert seen["device"].startswith("Device: ")
    assert seen["device"].endswith(f"({_run_threads()} threads)")  # a run thread's count, not the limited GUI thread's
    assert database.is_file()


def _run_threads() -> int:
    import threading

    import torch

    counts: list[int] = []
    worker = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return counts[0]


def test_ctrl_c_during_start_up_exits_quietly(tmp_path, monkeypatch, capsys):
    _use_temporary_settings(tmp_path, monkeypatch)

    def interrupted_import(argv, start_up):
        raise KeyboardInterrupt  # as Ctrl-C while the window's modules are still being imported

    monkeypatch.setattr("workbench.app.run_app", interrupted_import)

    assert launcher.main(["gui"]) == 130
    error = capsys.readouterr().err
    assert error == "lampreia: interrupted while the workbench was starting\n"


def test_ctrl_c_during_window_build(tmp_path, monkeypatch, capsys):
    _use_temporary_settings(tmp_path, monkeypatch)
    monkeypatch.setenv("LAMPREIA_DATA_DIR", str(tmp_path / "data"))
    previous_handler = signal.getsignal(signal.SIGINT)
    build = MainWindow.__init__
    built: list[MainWindow] = []

    class Relay(QObject):
        fired = Signal()

    def build_interrupted(self, *args, **kwargs):
        build(self, *args, **kwargs)
        # The signal arrives while Qt runs a Python slot, where a KeyboardInterrupt would be
        # printed and dropped, as in PySide's import hook during start-up.
        relay = Relay()
        relay.fired.connect(lambda: os.kill(os.getpid(), signal.SIGINT))
        relay.fired.emit()
        built.append(self)

    monkeypatch.setattr(MainWindow, "__init__", build_interrupted)
    # Ends the event loop if the signal were lost, so that a failure cannot hang the suite.
    QTimer.singleShot(20_000, QApplication.quit)

    assert launcher.main(["gui"]) == 130
    assert capsys.readouterr().err.endswith("lampreia: interrupted while the workbench was starting\n")
    assert len(built) == 1
    assert not built[0].isVisible()
    assert signal.getsignal(signal.SIGINT) is previous_handler


def test_unopenable_database_reported(qtbot, tmp_path, monkeypatch):
    _use_temporary_settings(tmp_path, monkeypatch)
    errors: list[tuple[str, str]] = []
    monkeypatch.setattr("workbench.app.show_startup_error", lambda title, text: errors.append((title, text)))
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("", encoding="utf-8")

    assert launcher.main(["gui", "--db", str(not_a_folder / "runs.sqlite3")]) == 1
    assert errors[0][0] == "Cannot open the run database"
    assert str(not_a_folder) in errors[0][1]


def test_verbose_flag_opens_window_ctrl_c_closes(qtbot, tmp_path, monkeypatch):
    _use_temporary_settings(tmp_path, monkeypatch)
    monkeypatch.setenv("LAMPREIA_DATA_DIR", str(tmp_path / "data"))
    previous_handler = signal.getsignal(signal.SIGINT)
    windows: list[MainWindow] = []

    def interrupt() -> None:
        windows.extend(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        os.kill(os.getpid(), signal.SIGINT)

    QTimer.singleShot(0, interrupt)
    # Ends the event loop if the signal did not, so that a failure cannot hang the suite.
    QTimer.singleShot(20_000, QApplication.quit)
    assert launcher.main(["-v"]) == 0

    assert len(windows) == 1
    assert not windows[0].isVisible()
    assert signal.getsignal(signal.SIGINT) is previous_handler


def test_database_on_read_only_mount_opens_read_only(qtbot, tmp_path, monkeypatch, read_only_mount):
    _use_temporary_settings(tmp_path, monkeypatch)
    seen: dict[str, object] = {}

    def inspect_and_quit() -> None:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        seen["database"] = window.database_label.text()
        seen["runs"] = [window.history.model.record(row).name for row in range(window.history.model.rowCount())]
        seen["run enabled"] = window.run_controls.run_button.isEnabled()
        window.close()
        QApplication.quit()

    QTimer.singleShot(0, inspect_and_quit)
    assert launcher.main(["gui", "--db", str(read_only_mount)]) == 0
    assert seen == {"database": f"Database (read-only): {read_only_mount}", "runs": ["on a share"], "run enabled": False}
    assert sorted(path.name for path in read_only_mount.parent.iterdir()) == ["runs.sqlite3"]


def test_no_display_is_named_before_qt_starts(monkeypatch, capsys):
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")

    # Qt would abort the process here, advising to reinstall it.
    assert launcher.main([]) == launcher.EXIT_NO_DISPLAY
    error = capsys.readouterr().err
    assert error.startswith("lampreia: cannot open the workbench window: no display was found (DISPLAY and WAYLAND_DISPLAY are unset).")
    assert "`lampreia run --help`" in error


def test_display_check_passes_where_qt_finds_one():
    assert launcher.missing_display({"DISPLAY": ":0"}, "linux") is None
    assert launcher.missing_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert launcher.missing_display({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert launcher.missing_display({}, "darwin") is None
    assert launcher.missing_display({}, "win32") is None
    assert launcher.missing_display({}, "linux") is not None


def test_unusable_display_is_named_not_aborted(monkeypatch, capsys):
    # No X server listens on display 987, so Qt's platform plugin cannot start there; without
    # the probe Qt aborts the process.
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.setattr(sys, "platform", "linux")

    assert launcher.main(["gui"]) == launcher.EXIT_NO_DISPLAY
    error = capsys.readouterr().err
    assert error.startswith("lampreia: cannot open the workbench window: Qt could not start its display platform (DISPLAY=':987'): qt.qpa")
    assert error.rstrip().endswith(launcher.WITHOUT_DISPLAY)
