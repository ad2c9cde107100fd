"""The exports' save dialog, which adds the file type's suffix before Qt checks whether the file exists."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

# The folder of the last export in this session, where the next save dialog opens.
_last_folder: Path | None = None


def ask_save_path(parent: QWidget, caption: str, suggested_name: str, file_filter: str) -> str:
    """Ask where to save; return the chosen path, or "" when the dialog was cancelled.

    The suggested name's suffix (".png", ".csv") is the dialog's default suffix. Qt adds it to a
    typed name without one before it checks whether the file exists, so replacing "plot.png" is
    confirmed also when "plot" was typed.
    """
    global _last_folder
    folder = _last_folder if _last_folder is not None and _last_folder.is_dir() else Path.home()
    dialog = QFileDialog(parent, caption, str(folder / suggested_name), file_filter)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setDefaultSuffix(Path(suggested_name).suffix.lstrip("."))
    if not dialog.exec():
        return ""
    chosen = dialog.selectedFiles()
    if not chosen:
        return ""
    _last_folder = Path(chosen[0]).parent
    return chosen[0]
