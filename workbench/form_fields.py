"""Editors for single config fields, built from the field metadata that the engine validates with.

Each editor returns its value in the form ``RunConfig.from_dict`` accepts: numbers stay the text
the user typed, so that the engine's own checks produce the message ("'abc' is not a whole
number", "out of range"). Every editor has an error label that the configuration panel fills.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from engine.config import DEVICES
from engine.glue_data import rows_offline_variable
from engine.tasks import TASKS

_EMPTY_MEANING = re.compile(r"\(empty: ([^)]*)\)")


def _allowed_text(meta: dict[str, Any]) -> str:
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is None and high is None:
        return ""
    low_op = ">" if meta.get("exclusive_minimum") else "≥"
    parts = []
    if low is not None:
        parts.append(f"{low_op} {low:g}")
    if high is not None:
        parts.append(f"≤ {high:g}")
    return "Allowed: " + " and ".join(parts) + "."


def restyle(widget: QWidget, invalid: bool) -> None:
    """Set the ``invalid`` property that the stylesheet draws as a red border."""
    if widget.property("invalid") == invalid:
        return
    widget.setProperty("invalid", invalid)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class FieldEditor(QObject):
    """Widget, label and error text of one config field. Owned by the GUI thread."""

    changed = Signal()

    def __init__(self, path: str, label: str, help_text: str, widget: QWidget) -> None:
        super().__init__(widget)
        self.path = path
        self.label = label
        self.widget = widget
        self.error_label = QLabel()
        self.error_label.setObjectName("fieldError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.container = QWidget()
        layout = QVBoxLayout(self.container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(widget)
        layout.addWidget(self.error_label)
        self.container.setToolTip(help_text)
        widget.setToolTip(help_text)

    def raw(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def set_error(self, message: str | None) -> None:
        self.error_label.setText(message or "")
        self.error_label.setVisible(bool(message))
        restyle(self.widget, bool(message))

    @property
    def error(self) -> str:
        return self.error_label.text()


class TextField(FieldEditor):
    """Free text, e.g. the student tokenizer or the run name."""

    def __init__(self, path: str, label: str, help_text: str, placeholder: str = "") -> None:
        self.line_edit = QLineEdit()
        self.line_edit.setPlaceholderText(placeholder)
        # About 12 characters stay visible. In a narrow panel the form then puts the field under its
        # label instead of squeezing it (a QLineEdit alone would shrink to a few characters).
        self.line_edit.setMinimumWidth(self.line_edit.fontMetrics().horizontalAdvance("x" * 12))
        super().__init__(path, label, help_text, self.line_edit)
        self.line_edit.textChanged.connect(self.changed)

    def raw(self) -> Any:
        return self.line_edit.text()

    def set_value(self, value: Any) -> None:
        self.line_edit.setText("" if value is None else str(value))


class EscapedTextField(TextField):
    """Text that may contain a newline or tab, shown as ``\\n`` and ``\\t`` (the pair separator)."""

    _ESCAPES = (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"))

    def raw(self) -> Any:
        text = self.line_edit.text()
        result, index = [], 0
        while index < len(text):
            pair = text[index : index + 2]
            unescaped = {"\\\\": "\\", "\\n": "\n", "\\t": "\t"}.get(pair)
            if unescaped is not None:
                result.append(unescaped)
                index += 2
            else:
                result.append(text[index])
                index += 1
        return "".join(result)

    def set_value(self, value: Any) -> None:
        text = "" if value is None else str(value)
        for plain, escaped in self._ESCAPES:
            text = text.replace(plain, escaped)
        self.line_edit.setText(text)


class NumberField(TextField):
    """A number typed as text; empty means None for optional fields, whose placeholder describes that default."""

    def raw(self) -> Any:
        text = self.line_edit.text().strip()
        return text if text else None

    def set_value(self, value: Any) -> None:
        if value is None:
            self.line_edit.setText("")
        elif isinstance(value, float):
            self.line_edit.setText(repr(value))
        else:
            self.line_edit.setText(str(value))


class NumberListField(TextField):
    """Comma-separated numbers, e.g. one fixed weight per teacher."""

    def raw(self) -> Any:
        return [item.strip() for item in self.line_edit.text().split(",") if item.strip()]

    def set_value(self, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            items = list(value)
        elif value in (None, ""):
            items = []
        else:
            items = [value]
        self.line_edit.setText(", ".join(str(item) for item in items))


class ChoiceField(FieldEditor):
    """One value out of the field's ``choices``."""

    def __init__(self, path: str, label: str, help_text: str, choices: tuple[Any, ...], editable: bool = False) -> None:
        self.combo = QComboBox()
        self.combo.addItems([str(choice) for choice in choices])
        self.combo.setEditable(editable)
        super().__init__(path, label, help_text, self.combo)
        self.combo.currentTextChanged.connect(self.changed)

    def raw(self) -> Any:
        return self.combo.currentText()

    def set_value(self, value: Any) -> None:
        text = str(value)
        index = self.combo.findText(text)
        if index >= 0:
            self.combo.setCurrentIndex(index)
        elif self.combo.isEditable():
            self.combo.setEditText(text)


class BoolField(FieldEditor):
    def __init__(self, path: str, label: str, help_text: str) -> None:
        self.check_box = QCheckBox()
        super().__init__(path, label, help_text, self.check_box)
        self.check_box.toggled.connect(self.changed)

    def raw(self) -> Any:
        return self.check_box.isChecked()

    def set_value(self, value: Any) -> None:
        self.check_box.setChecked(bool(value))


class _DescribedItemDelegate(QStyledItemDelegate):
    """Popup item delegate that writes each item's tooltip (its description) after its text."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        description = index.data(Qt.ItemDataRole.ToolTipRole)
        if description:
            option.text = f"{option.text} — {description}"


class TaskField(FieldEditor):
    """The nine GLUE tasks, each with its one-line description."""

    def __init__(self, path: str, label: str, help_text: str) -> None:
        self.combo = QComboBox()
        for name, task in TASKS.items():
            self.combo.addItem(task.title, name)
            self.combo.setItemData(self.combo.count() - 1, task.description, Qt.ItemDataRole.ToolTipRole)
        # The closed box shows the task's name, and the label below it the description. The popup
        # lists every task with its description.
        self.combo.setItemDelegate(_DescribedItemDelegate(self.combo))
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)
        metrics = self.combo.view().fontMetrics()
        widest = max(metrics.horizontalAdvance(f"{task.title} — {task.description}") for task in TASKS.values())
        # The margin covers the item's padding and a scroll bar.
        self.combo.view().setMinimumWidth(widest + 40)
        super().__init__(path, label, help_text, self.combo)
        self.description = QLabel()
        self.description.setObjectName("fieldHint")
        self.description.setWordWrap(True)
        self.container.layout().insertWidget(1, self.description)
        self.combo.currentIndexChanged.connect(self._on_index_changed)
        self._on_index_changed()

    def _on_index_changed(self) -> None:
        name = self.combo.currentData()
        self.description.setText(TASKS[name].description if name in TASKS else "")
        self.changed.emit()

    def raw(self) -> Any:
        return self.combo.currentData()

    def set_value(self, value: Any) -> None:
        index = self.combo.findData(str(value).strip().lower().replace("-", ""))
        if index >= 0:
            self.combo.setCurrentIndex(index)


class DataSourceField(FieldEditor):
    """The Hugging Face Hub (None) or a glue_data folder chosen with a folder dialog."""

    def __init__(self, path: str, label: str, help_text: str) -> None:
        box = QWidget()
        self.hub_button = QRadioButton("Hugging Face Hub (nyu-mll/glue)")
        self.folder_button = QRadioButton("glue_data folder:")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder with SST-2/, MRPC/, …")
        self.browse_button = QPushButton("Browse…")
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(0, 0, 0, 0)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        # Offline, the Hub source reads only the local datasets cache, which a first start lacks.
        self.offline_note = QLabel()
        self.offline_note.setObjectName("fieldHint")
        self.offline_note.setWordWrap(True)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hub_button)
        layout.addWidget(self.offline_note)
        layout.addWidget(self.folder_button)
        layout.addLayout(folder_row)
        super().__init__(path, label, help_text, box)

        self.hub_button.setChecked(True)
        self._sync_enabled()
        self.hub_button.toggled.connect(self._on_mode_changed)
        self.folder_edit.textChanged.connect(self.changed)
        self.browse_button.clicked.connect(self._browse)

    def _on_mode_changed(self) -> None:
        self._sync_enabled()
        self.changed.emit()

    def _sync_enabled(self) -> None:
        use_folder = self.folder_button.isChecked()
        self.folder_edit.setEnabled(use_folder)
        self.browse_button.setEnabled(use_folder)
        variable = rows_offline_variable()
        if variable:
            self.offline_note.setText(
                f"{variable} is set, so the Hub rows come from the local datasets cache only. Without a cached copy, choose a glue_data folder."
            )
        self.offline_note.setVisible(bool(variable) and not use_folder)

    def _browse(self) -> None:
        folder = self.choose_folder(self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def choose_folder(self, start: str) -> str:
        """Ask for the glue_data folder; a separate method so that tests can replace the dialog."""
        return QFileDialog.getExistingDirectory(self.widget, "Choose the glue_data folder", start)

    @property
    def uses_folder(self) -> bool:
        return self.folder_button.isChecked()

    def raw(self) -> Any:
        return self.folder_edit.text().strip() if self.uses_folder else None

    def set_value(self, value: Any) -> None:
        if value:
            self.folder_edit.setText(str(value))
            self.folder_button.setChecked(True)
        else:
            self.hub_button.setChecked(True)


def editor_for(path: str, spec: dataclasses.Field) -> FieldEditor:
    """Create the editor that fits a config field's type and metadata."""
    meta = spec.metadata
    kind = str(spec.type)
    label = meta["label"] + (f" ({meta['unit']})" if meta.get("unit") else "")
    help_text = " ".join(part for part in (meta["help"], _allowed_text(meta)) if part)
    empty_meaning = _EMPTY_MEANING.search(meta["help"])
    placeholder = f"empty: {empty_meaning.group(1)}" if empty_meaning else ""

    if path == "training.device":
        return ChoiceField(path, label, help_text, DEVICES, editable=True)
    if path == "student.pair_separator":
        return EscapedTextField(path, label, help_text)
    if meta.get("choices"):
        return ChoiceField(path, label, help_text, meta["choices"])
    if kind.startswith("bool"):
        return BoolField(path, label, help_text)
    if kind.startswith("tuple"):
        return NumberListField(path, label, help_text, placeholder="e.g. 0.5, 0.3, 0.2")
    if kind.startswith(("int", "float")):
        return NumberField(path, label, help_text, placeholder)
    return TextField(path, label, help_text, placeholder)
