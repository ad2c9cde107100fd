"""The Predictions dialog: a run's trained student labels the rows of a split or a TSV file.

It writes what `lampreia predict` writes: a GLUE submission file (``index``, ``prediction``),
with the gold label, the class probabilities and the text of each row when asked, for error
analysis. The GUI thread finds the checkpoint in the store. A worker thread loads the student and
predicts, so the window stays responsive.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import LampreiaError
from engine.events import CancellationToken
from engine.prediction import find_checkpoint, load_prediction_rows, predict_to_file, reject_output_over_input, split_names
from engine.run_store import RunRecord, RunStore
from engine.tasks import TASKS
from workbench.background import BackgroundCall
from workbench.save_dialog import ask_save_path

log = logging.getLogger(__name__)

CHECKPOINT_CHOICES = (
    ("best", "best: selected on the held-out training rows"),
    ("last", "last: the weights of the last checkpoint"),
)


class PredictionDialog(QDialog):
    """Asks which rows to predict and where to save them, then predicts off the GUI thread. GUI thread.

    The dialog stays open after a prediction and shows its report (rows, scores, the run's own
    scores on the same rows), so that several splits can be written one after another.
    """

    def __init__(self, store: RunStore, record: RunRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._record = record
        self._task = TASKS[record.task]
        self._call: BackgroundCall | None = None
        self.setWindowTitle(f"Predictions of run {record.id}")

        intro = QLabel(
            f"Run {record.id} ({record.name}), {self._task.title}. Its student predicts each row's label. The file has the "
            "columns of a GLUE submission, index and prediction; rows with a gold label are scored."
        )
        intro.setWordWrap(True)
        self.split_button = QRadioButton("Split of the run's data")
        self.split_combo = QComboBox()
        self.split_combo.addItems(split_names(self._task))
        glue_dir = record.config.get("data", {}).get("glue_dir")
        self.folder_edit = QLineEdit(glue_dir or "")
        self.folder_edit.setPlaceholderText("the Hugging Face Hub")
        self.folder_edit.setToolTip("The glue_data folder to read the split from: the run's own, or its new place if it moved (empty: the Hub).")
        self.folder_button = QPushButton("Folder…")
        self.file_button = QRadioButton(f"TSV file in the {self._task.title} glue_data layout")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("test.tsv, dev.tsv, or your own rows under the same header")
        self.browse_button = QPushButton("Browse…")
        self.split_button.setChecked(True)
        self.checkpoint_combo = QComboBox()
        for key, text in CHECKPOINT_CHOICES:
            self.checkpoint_combo.addItem(text, key)
        self.limit_box = QSpinBox()
        self.limit_box.setRange(0, 10_000_000)
        self.limit_box.setSpecialValueText("all")
        dev_limit = record.config.get("data", {}).get("dev_limit")
        self.limit_box.setToolTip(
            "Predict only the first rows of the split or file."
            + (f" The run scored the first {dev_limit} dev rows, so {dev_limit} repeats its recorded dev metrics." if dev_limit else "")
        )
        self.details_box = QCheckBox("Add the gold label, the class probabilities and the text")
        self.details_box.setChecked(True)
        self.details_box.setToolTip("For error analysis. Without them the file is exactly a GLUE submission file.")
        self.skip_box = QCheckBox("Skip malformed rows")
        self.skip_box.setToolTip("Skip TSV rows that do not parse (each one is logged with its line) instead of stopping.")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # A long message (a file with many malformed rows) scrolls instead of hiding its fix.
        status_area = QScrollArea()
        status_area.setWidget(self.status_label)
        status_area.setWidgetResizable(True)
        status_area.setFrameShape(QScrollArea.Shape.NoFrame)
        status_area.setMinimumHeight(70)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.predict_button = self.buttons.addButton("Predict and save…", QDialogButtonBox.ButtonRole.ActionRole)

        split_row = QHBoxLayout()
        split_row.addWidget(self.split_button)
        split_row.addWidget(self.split_combo, 1)
        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("from"))
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.folder_button)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_button)
        options = QFormLayout()
        options.addRow("Checkpoint", self.checkpoint_combo)
        options.addRow("First rows only", self.limit_box)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(split_row)
        layout.addLayout(folder_row)
        layout.addWidget(self.file_button)
        layout.addLayout(file_row)
        layout.addLayout(options)
        layout.addWidget(self.details_box)
        layout.addWidget(self.skip_box)
        layout.addWidget(status_area, 1)
        layout.addWidget(self.buttons)
        self.resize(580, 430)
        # A word-wrapped label reports too small a height, so the layout alone would cut the intro.
        self.setMinimumSize(480, 400)

        self.file_button.toggled.connect(self._on_mode_changed)
        self.browse_button.clicked.connect(self._browse)
        self.folder_button.clicked.connect(self._choose_folder)
        self.predict_button.clicked.connect(self.predict)
        self.buttons.rejected.connect(self.reject)
        self._on_mode_changed(False)

    def _on_mode_changed(self, use_file: bool) -> None:
        self.split_combo.setEnabled(not use_file)
        self.folder_edit.setEnabled(not use_file)
        self.folder_button.setEnabled(not use_file)
        self.file_edit.setEnabled(use_file)
        self.browse_button.setEnabled(use_file)

    def _browse(self) -> None:
        chosen = self.choose_input_file()
        if chosen:
            self.file_edit.setText(chosen)
            self.file_button.setChecked(True)

    def _choose_folder(self) -> None:
        chosen = self.choose_glue_folder()
        if chosen:
            self.folder_edit.setText(chosen)

    def choose_glue_folder(self) -> str:
        """Ask for a glue_data folder; a separate method so that tests can replace the dialog."""
        return QFileDialog.getExistingDirectory(self, "Choose the glue_data folder", self.folder_edit.text())

    def choose_input_file(self) -> str:
        """Ask for the TSV file to predict; a separate method so that tests can replace the dialog."""
        chosen, _filter = QFileDialog.getOpenFileName(self, "Choose a TSV file", "", "TSV files (*.tsv);;All files (*)")
        return chosen

    def choose_output_file(self, suggested_name: str) -> str:
        """Ask where to save; a separate method so that tests can replace the dialog."""
        return ask_save_path(self, "Save predictions", suggested_name, "TSV files (*.tsv)")

    @Slot()
    def predict(self) -> None:
        if self._call is not None and self._call.is_running():
            return
        input_file = None
        if self.file_button.isChecked():
            text = self.file_edit.text().strip()
            if not text:
                self._show_problem("Choose the TSV file to predict first (Browse…), or predict a split of the run's data.")
                return
            input_file = Path(text).expanduser()
            if not input_file.is_file():
                self._show_problem(f"The input file {input_file} does not exist or is not a file. Choose a TSV file in the {self._task.title} glue_data layout.")
                return
        checkpoint = self.checkpoint_combo.currentData()
        split = None if input_file is not None else self.split_combo.currentText()
        limit = self.limit_box.value() or None
        glue_dir = self.folder_edit.text().strip() or None
        try:
            record, checkpoint_path = find_checkpoint(self._store, self._record.id, checkpoint)
            # The first row, read before the save dialog: a missing folder or another task's file
            # is reported at once. The Hub is not asked, since that could mean a download.
            if input_file is not None or glue_dir is not None:
                load_prediction_rows(self._task, glue_dir, split=split, input_file=input_file, limit=1, skip_malformed_rows=self.skip_box.isChecked())
        except LampreiaError as error:
            self._show_problem(str(error))
            return
        # Each choice of rows and checkpoint gets its own name, so one prediction does not replace another.
        rows_name = input_file.stem if input_file is not None else split
        suffix = f"-first{limit}" if limit else ""
        if checkpoint == "last":
            suffix += "-last"
        output = self.choose_output_file(f"{self._task.folder}-run{record.id}-{rows_name}{suffix}.tsv")
        if not output:
            return
        try:
            reject_output_over_input(input_file, Path(output))
        except LampreiaError as error:
            self._show_problem(str(error))
            return

        self._set_busy(True)
        self._show_status(f"Predicting with run {record.id}'s {checkpoint} checkpoint …")
        cancel = CancellationToken()
        call = BackgroundCall(
            partial(
                predict_to_file,
                record,
                checkpoint_path,
                Path(output),
                checkpoint=checkpoint,
                glue_dir=glue_dir,
                split=split,
                input_file=input_file,
                limit=limit,
                details=self.details_box.isChecked(),
                skip_malformed_rows=self.skip_box.isChecked(),
                cancel=cancel,
            ),
            f"Predictions of run {record.id}",
            self,
            cancel=cancel,
        )
        call.succeeded.connect(self._on_predicted)
        call.failed.connect(self._on_failed)
        self._call = call
        call.start()

    @Slot(object)
    def _on_predicted(self, lines: list[str]) -> None:
        # Its thread may still be ending, so is_running() could refuse the next press for a moment.
        self._call = None
        self._set_busy(False)
        log.info("Predictions of run %d: %s", self._record.id, " ".join(lines))
        self._show_status("\n".join(lines))

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._call = None
        self._set_busy(False)
        self._show_problem(message)

    def _show_status(self, text: str) -> None:
        self.status_label.setObjectName("")
        self._restyle(text)

    def _show_problem(self, message: str) -> None:
        self.status_label.setObjectName("fieldError")
        self._restyle(message)

    def _restyle(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.style().unpolish(self.status_label)
        self.status_label.style().polish(self.status_label)

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.predict_button, self.split_button, self.file_button, self.checkpoint_combo, self.limit_box, self.details_box, self.skip_box):
            widget.setEnabled(not busy)
        self._on_mode_changed(self.file_button.isChecked() and not busy)
        if busy:
            for widget in (self.split_combo, self.folder_edit, self.folder_button):
                widget.setEnabled(False)

    def done(self, result: int) -> None:
        # A prediction still running when the dialog closes is cancelled and writes no file.
        if self._call is not None and self._call.is_running():
            self._call.cancel()
        super().done(result)

    @property
    def message(self) -> str:
        return self.status_label.text()
