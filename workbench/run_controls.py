"""Run and Stop buttons, with the reason when Run is blocked."""

from __future__ import annotations

import re

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class RunControls(QWidget):
    """Run and Stop buttons. Owned by the GUI thread; the main window sets their state."""

    run_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.reason_label = QLabel()
        self.reason_label.setObjectName("fieldError")
        self.reason_label.setWordWrap(True)
        self.reason_label.hide()
        # The reason no run can start with any config is a fact about the setup, not an error, so it is grey.
        self.notice_label = QLabel()
        self.notice_label.setObjectName("fieldHint")
        self.notice_label.setWordWrap(True)
        self.notice_label.hide()

        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.stop_button, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.reason_label)
        layout.addLayout(buttons)

        self.run_button.clicked.connect(self.run_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        self.set_state(valid=True, reason="", running=False, stopping=False)

    def set_state(self, *, valid: bool, reason: str, running: bool, stopping: bool, unavailable: str = "") -> None:
        """Enable the buttons. ``unavailable`` is the reason no run can start with any config (a read-only database)."""
        self.run_button.setEnabled(valid and not running and not unavailable)
        self.stop_button.setEnabled(running and not stopping)
        self.notice_label.setText(unavailable)
        self.notice_label.setVisible(bool(unavailable))
        if unavailable:
            self.run_button.setToolTip(unavailable)
        elif not valid:
            self.run_button.setToolTip("Fix these values first:\n" + reason)
            first = reason.splitlines()[0] if reason else ""
            more = len(reason.splitlines()) - 1
            # The field shows the whole message; here its first sentence keeps the summary short.
            # A sentence ends at a period before a capital letter, so "e.g. 16" does not end one.
            summary = re.split(r"(?<=\.)\s+(?=[A-Z])", first, maxsplit=1)[0]
            if more > 0:
                summary += f" (and {more} more; see the fields marked in red)"
            elif summary != first:
                summary += " See the field marked in red."
            self.reason_label.setText(summary)
        elif running:
            self.run_button.setToolTip("A run is active. Stop it or wait for it to end first.")
        else:
            self.run_button.setToolTip("Start a run with this configuration.")
        self.reason_label.setVisible(not unavailable and not valid)
        self.stop_button.setToolTip("Stopping… the run ends when its current step or batch is done." if stopping else "Stop the run; everything logged so far is kept.")
