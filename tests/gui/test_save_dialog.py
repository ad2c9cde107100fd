"""The exports' save dialog adds the suffix that a typed name lacks."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QWidget

from workbench import save_dialog


def _answer_dialog(typed_name: str) -> None:
    """Type ``typed_name`` into the open save dialog and press Save, once the dialog is up."""

    def answer() -> None:
        dialog = next((widget for widget in QApplication.topLevelWidgets() if isinstance(widget, QFileDialog) and widget.isVisible()), None)
        if dialog is None:
            QTimer.singleShot(20, answer)
            return
        # As a user types into the dialog's name field; selectFile would set the whole path.
        dialog.findChild(QLineEdit, "fileNameEdit").setText(typed_name)
        dialog.accept()

    QTimer.singleShot(20, answer)


def test_typed_name_gets_default_suffix(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(save_dialog, "_last_folder", tmp_path)
    parent = QWidget()
    qtbot.addWidget(parent)

    _answer_dialog("loss-curve")
    chosen = save_dialog.ask_save_path(parent, "Export plot as PNG", "run-losses.png", "PNG images (*.png)")

    assert chosen == str(tmp_path / "loss-curve.png")
    assert save_dialog._last_folder == tmp_path
