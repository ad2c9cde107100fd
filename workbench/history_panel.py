"""The run history: a sortable, filterable table of every run in the store, with per-run actions.

Reads run on the GUI thread. The store runs SQLite in WAL mode, so a read does not wait for the
trainer's writes. The table is reloaded when a run starts or ends and on request, not on a timer.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.errors import StoreError
from engine.model_sources import short_model_name
from engine.run_comparison import primary_dev_metric
from engine.run_store import RunRecord, RunStore
from engine.store_schema import RUN_STATUSES
from engine.tasks import TASKS, task_title
from workbench.formatting import format_count, format_duration, format_metric, format_timestamp

log = logging.getLogger(__name__)

COLUMNS = ("Name", "Status", "Task", "Teachers", "Student", "Parameters", "Best dev", "Baseline", "Duration", "Date")
COLUMN_TIPS = {
    "Best dev": "The task's main dev metric at the best checkpoint. The held-out rows select that checkpoint, "
    "so the dev curve can peak higher elsewhere.",
    "Baseline": "The same metric for a constant prediction: the majority class, or the training mean for STS-B.",
}
MAX_COLUMN_WIDTH = 260
RESIZE_PRECISION_ROWS = 200
# Rows of the history table that stay in view when the window is small.
MIN_VISIBLE_ROWS = 4
SORT_ROLE = Qt.ItemDataRole.UserRole
RESUMABLE_STATUSES = ("interrupted", "cancelled", "failed")
RESUME_TIP = (
    "Continue an interrupted, cancelled or failed run from its last checkpoint, with its batch order and random state: "
    "on a CPU with the same thread count it reaches the numbers of a run that was never stopped."
)
RESUME_FINISHED_TIP = "This run finished, so there is nothing to resume. Run again trains its settings anew."
RESUME_NO_CHECKPOINT_TIP = "This run stopped before its first checkpoint, so it cannot be resumed. Run again trains its settings anew."
PREDICT_TIP = "Label the rows of a split or a TSV file with the selected run's trained student (a GLUE submission file)."
ACTIVE_STATUSES = ("queued", "running")


def is_resumable(record: RunRecord) -> bool:
    """Return whether Resume applies: a stopped or failed run with a checkpoint to continue from."""
    return record.status in RESUMABLE_STATUSES and record.checkpoint_step is not None


def best_dev_value(record: RunRecord) -> float | None:
    metric = primary_dev_metric(record)
    return record.best_metrics.get(metric) if metric else None


def baseline_value(record: RunRecord) -> float | None:
    metric = primary_dev_metric(record)
    return record.baseline.get(metric) if metric else None


class RunTableModel(QAbstractTableModel):
    """One row per stored run. Owned by the GUI thread."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._records: list[RunRecord] = []

    def set_records(self, records: list[RunRecord]) -> None:
        self.beginResetModel()
        self._records = list(records)
        self.endResetModel()

    def record(self, row: int) -> RunRecord:
        return self._records[row]

    def row_of(self, run_id: int) -> int | None:
        for row, record in enumerate(self._records):
            if record.id == run_id:
                return row
        return None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS.get(COLUMNS[section])
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self._records[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, column)
        if role == SORT_ROLE:
            return self._sort_key(record, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(record, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("Parameters", "Best dev", "Baseline", "Duration"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, record: RunRecord, column: str) -> str:
        if column == "Name":
            return f"#{record.id} {record.name}"
        if column == "Status":
            return record.status
        if column == "Task":
            task = TASKS.get(record.task)
            return task.title if task else record.task
        if column == "Teachers":
            return ", ".join(short_model_name(spec) for spec in record.teachers)
        if column == "Student":
            return record.student_size
        if column == "Parameters":
            return format_count(record.parameter_count)
        if column == "Best dev":
            value = best_dev_value(record)
            metric = (primary_dev_metric(record) or "").partition("/")[2]
            return f"{format_metric(value)} {metric}" if value is not None else ""
        if column == "Baseline":
            return format_metric(baseline_value(record))
        if column == "Duration":
            return format_duration(record.duration_seconds)
        return format_timestamp(record.created_at)

    def _sort_key(self, record: RunRecord, column: str) -> Any:
        if column == "Name":
            return record.name.lower()
        if column == "Parameters":
            return record.parameter_count if record.parameter_count is not None else -1
        if column in ("Best dev", "Baseline"):
            value = best_dev_value(record) if column == "Best dev" else baseline_value(record)
            # Grouped by task: an accuracy and a Matthews correlation do not rank against each other.
            return (task_title(record.task), value if value is not None and math.isfinite(value) else -math.inf)
        if column == "Duration":
            return record.duration_seconds if record.duration_seconds is not None else -1.0
        if column == "Date":
            return record.created_at
        if column == "Student":
            student = record.config.get("student", {})
            return (student.get("d_model", 0), student.get("n_layers", 0), student.get("n_heads", 0))
        return self._text(record, column).lower()

    def _tooltip(self, record: RunRecord, column: str) -> str | None:
        if column == "Status" and record.error:
            return record.error
        if column == "Name":
            lines = [record.name]
            if record.tags:
                lines.append("Tags: " + ", ".join(record.tags))
            if record.notes:
                lines.append(record.notes)
            return "\n".join(lines)
        if column == "Best dev":
            metric = primary_dev_metric(record)
            if metric is None or record.best_step is None:
                return metric
            return f"{metric} at step {record.best_step}, the checkpoint that the held-out rows selected."
        if column == "Teachers":
            return "\n".join(record.teachers)
        return None


class RunFilterProxy(QSortFilterProxyModel):
    """Filters rows by free text (name, task, teachers, tags, notes) and by status."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._status = ""
        self.setSortRole(SORT_ROLE)

    def set_text(self, text: str) -> None:
        self._change_filter("_text", text.strip().lower())

    def set_status(self, status: str) -> None:
        self._change_filter("_status", status)

    def _change_filter(self, attribute: str, value: str) -> None:
        # Qt 6.10 replaced invalidateRowsFilter() with the begin/endFilterChange pair.
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            setattr(self, attribute, value)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            setattr(self, attribute, value)
            self.invalidateRowsFilter()

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        # Sort keys include tuples, which Qt's own comparison of QVariants does not order.
        return left.data(SORT_ROLE) < right.data(SORT_ROLE)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        record = self.sourceModel().record(source_row)
        if self._status and record.status != self._status:
            return False
        if not self._text:
            return True
        haystack = " ".join([f"#{record.id}", record.name, record.task, record.status, record.student_size, *record.teachers, *record.tags, record.notes]).lower()
        return all(word in haystack for word in self._text.split())


class HistoryPanel(QWidget):
    """Table of stored runs with rename, notes, tags, delete, run again, resume and export. GUI thread.

    Dialogs go through ``ask_text``, ``ask_multiline_text``, ``confirm`` and ``show_problem`` so
    that tests can replace them.
    """

    selection_changed = Signal(list)  # run ids, in table order
    run_again_requested = Signal(int)  # the id of the run whose settings to load
    resume_requested = Signal(int)
    export_requested = Signal()
    predict_requested = Signal(int)  # the id of the run whose student predicts

    def __init__(self, store: RunStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._run_active = False

        self.model = RunTableModel(self)
        self.proxy = RunFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name, task, teacher, tag or note")
        self.filter_edit.setClearButtonEnabled(True)
        self.status_combo = QComboBox()
        self.status_combo.addItem("All statuses", "")
        for status in RUN_STATUSES:
            self.status_combo.addItem(status, status)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMNS.index("Date"), Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().hide()
        # The horizontal scroll bar counts too: a narrow window shows one below the rows.
        rows_height = MIN_VISIBLE_ROWS * self.table.verticalHeader().defaultSectionSize()
        chrome = self.table.horizontalHeader().sizeHint().height() + self.table.horizontalScrollBar().sizeHint().height() + 2 * self.table.frameWidth()
        self.table.setMinimumHeight(rows_height + chrome)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        # A re-run's name ends with what changed ("… (from #3: alpha 0.7)"), so long names lose their middle.
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # Fitting the columns reads the rows in view plus this many. Without a limit, a history of
        # thousands of runs would be read in full at every refresh, on the GUI thread.
        header.setResizeContentsPrecision(RESIZE_PRECISION_ROWS)

        self._create_actions()
        if store.read_only:
            for action in (self.run_again_action, self.resume_action, self.rename_action, self.notes_action, self.tags_action, self.delete_action):
                tip = f"{action.toolTip()} Not available: this run database is read-only."
                action.setToolTip(tip)
                action.setStatusTip(tip)
        # Export stays in the context menu: the compare view below has its own export buttons, and
        # without it the toolbar fits an 800-pixel-wide window.
        toolbar = QToolBar()
        self.toolbar = toolbar
        for action in (self.refresh_action, self.run_again_action, self.resume_action, self.rename_action,
                       self.notes_action, self.tags_action, self.delete_action):
            toolbar.addAction(action)

        filters = QHBoxLayout()
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.status_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(toolbar)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)

        self.filter_edit.textChanged.connect(self.proxy.set_text)
        self.status_combo.currentIndexChanged.connect(lambda _i: self.proxy.set_status(self.status_combo.currentData()))
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self._update_actions()

    def _create_actions(self) -> None:
        def action(text: str, slot, tip: str, shortcut: QKeySequence | None = None) -> QAction:
            created = QAction(text, self)
            created.setToolTip(tip)
            created.setStatusTip(tip)
            if shortcut is not None:
                created.setShortcut(shortcut)
                created.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            created.triggered.connect(slot)
            self.addAction(created)
            return created

        self.refresh_action = action("Refresh", self.refresh, "Reload the runs from the database.", QKeySequence(QKeySequence.StandardKey.Refresh))
        self.run_again_action = action("Run again", self._run_again, "Load this run's configuration into the configuration panel.")
        self.resume_action = action("Resume", self._resume, RESUME_TIP)
        self.rename_action = action("Rename…", self._rename, "Rename the selected run.")
        self.notes_action = action("Notes…", self._edit_notes, "Edit the notes of the selected run.")
        self.tags_action = action("Tags…", self._edit_tags, "Edit the tags of the selected run (comma-separated).")
        self.export_action = action("Export CSV…", self.export_requested, "Export the curves of the selected runs as CSV.")
        self.predict_action = action("Predictions…", self._predict, PREDICT_TIP)
        self.delete_action = action("Delete…", self._delete, "Delete the selected runs with their metrics and checkpoints.", QKeySequence(QKeySequence.StandardKey.Delete))

    # Data

    @Slot()
    def refresh(self) -> None:
        """Reload every run from the store, keeping the selection."""
        selected = self.selected_ids()
        try:
            records = self._store.list_runs()
        except StoreError as error:
            log.error("Could not read the run history: %s", error)
            self.show_problem("Could not read the run history", str(error))
            return
        self.table.selectionModel().blockSignals(True)
        self.model.set_records(records)
        self._fit_columns()
        self._select_ids(selected)
        self.table.selectionModel().blockSignals(False)
        self._on_selection_changed()

    def _fit_columns(self) -> None:
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.resizeSection(column, min(header.sectionSize(column), MAX_COLUMN_WIDTH))

    def _select_ids(self, run_ids: list[int]) -> None:
        selection = QItemSelection()
        for run_id in run_ids:
            row = self.model.row_of(run_id)
            if row is None:
                continue
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            if index.isValid():
                selection.select(index, index)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(selection, flags)

    def select_runs(self, run_ids: list[int]) -> None:
        self._select_ids(run_ids)

    def selected_records(self) -> list[RunRecord]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.model.record(self.proxy.mapToSource(self.proxy.index(row, 0)).row()) for row in rows]

    def selected_ids(self) -> list[int]:
        return [record.id for record in self.selected_records()]

    def visible_ids(self) -> list[int]:
        return [self.model.record(self.proxy.mapToSource(self.proxy.index(row, 0)).row()).id for row in range(self.proxy.rowCount())]

    def set_run_active(self, active: bool) -> None:
        """While a run is active, Resume is disabled (one run at a time)."""
        self._run_active = active
        self._update_actions()

    # Reactions

    def _on_selection_changed(self, *_args: Any) -> None:
        self._update_actions()
        self.selection_changed.emit(self.selected_ids())

    def _update_actions(self) -> None:
        records = self.selected_records() if self.table.selectionModel() is not None else []
        single = len(records) == 1
        writable = not self._store.read_only
        for action in (self.run_again_action, self.rename_action, self.notes_action, self.tags_action):
            action.setEnabled(single and writable)
        self.resume_action.setEnabled(single and writable and not self._run_active and is_resumable(records[0]))
        if writable:
            resume_tip = RESUME_TIP
            if single and records[0].status in RESUMABLE_STATUSES and records[0].checkpoint_step is None:
                resume_tip = RESUME_NO_CHECKPOINT_TIP
            elif single and records[0].status == "finished":
                resume_tip = RESUME_FINISHED_TIP
            self.resume_action.setToolTip(resume_tip)
            self.resume_action.setStatusTip(resume_tip)
        self.delete_action.setEnabled(bool(records) and writable)
        self.export_action.setEnabled(bool(records))
        # Enabled also for a run without a checkpoint, because the window then explains why it cannot
        # predict, which a greyed-out menu item cannot.
        self.predict_action.setEnabled(single)

    def _show_context_menu(self, position) -> None:
        menu = QMenu(self)
        for action in (self.run_again_action, self.resume_action, None, self.rename_action, self.notes_action,
                       self.tags_action, None, self.export_action, self.predict_action, None, self.delete_action):
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.popup(self.table.viewport().mapToGlobal(position))

    def _single(self) -> RunRecord | None:
        records = self.selected_records()
        return records[0] if len(records) == 1 else None

    def _run_again(self) -> None:
        record = self._single()
        if record is not None:
            self.run_again_requested.emit(record.id)

    def _predict(self) -> None:
        record = self._single()
        if record is not None:
            self.predict_requested.emit(record.id)

    def _resume(self) -> None:
        record = self._single()
        if record is not None:
            self.resume_requested.emit(record.id)

    def _rename(self) -> None:
        record = self._single()
        if record is None:
            return
        name = self.ask_text("Rename run", f"New name of run #{record.id}:", record.name)
        if name is None:
            return
        if not name.strip():
            self.show_problem(f"Run #{record.id} was not renamed", "The new name is empty. Enter a name with at least one visible character.")
            return
        self._write(f"rename run {record.id}", self._store.rename_run, record.id, name)

    def _edit_notes(self) -> None:
        record = self._single()
        if record is None:
            return
        notes = self.ask_multiline_text("Run notes", f"Notes of run #{record.id} ({record.name}):", record.notes)
        if notes is not None:
            self._write(f"save the notes of run {record.id}", self._store.set_notes, record.id, notes)

    def _edit_tags(self) -> None:
        record = self._single()
        if record is None:
            return
        text = self.ask_text("Run tags", f"Tags of run #{record.id}, separated by commas:", ", ".join(record.tags))
        if text is not None:
            self._write(f"save the tags of run {record.id}", self._store.set_tags, record.id, text.split(","))

    def _delete(self) -> None:
        records = self.selected_records()
        if not records:
            return
        active = [r for r in records if r.status in ACTIVE_STATUSES]
        if active:
            run = active[0]
            if run.owner_pid == os.getpid() and run.owner_host == socket.gethostname():
                where = "Stop it first, then delete it."
            else:
                # Another window or a terminal trains it, where only its own Stop or Ctrl-C ends it.
                where = f"Process {run.owner_pid} on {run.owner_host} trains it: stop it there (Ctrl-C in its terminal), then delete it."
            self.show_problem("Cannot delete a running run", f"Run #{run.id} is still running. {where}")
            return
        names = "\n".join(f"#{r.id} {r.name}" for r in records[:10]) + ("\n…" if len(records) > 10 else "")
        question = f"Delete {len(records)} run(s) with their metrics, attention maps and checkpoints? This cannot be undone.\n\n{names}"
        if not self.confirm("Delete runs", question):
            return
        for record in records:
            if not self._write(f"delete run {record.id}", self._store.delete_run, record.id, refresh=False):
                break
            log.info("Deleted run %d (%s)", record.id, record.name)
        self.refresh()

    def _write(self, action: str, function, *args: Any, refresh: bool = True) -> bool:
        try:
            function(*args)
        except StoreError as error:
            log.error("Could not %s: %s", action, error)
            self.show_problem(f"Could not {action}", str(error))
            return False
        if refresh:
            self.refresh()
        return True

    # Dialogs, replaceable in tests

    def ask_text(self, title: str, label: str, text: str) -> str | None:
        value, accepted = QInputDialog.getText(self, title, label, QLineEdit.EchoMode.Normal, text)
        return value if accepted else None

    def ask_multiline_text(self, title: str, label: str, text: str) -> str | None:
        value, accepted = QInputDialog.getMultiLineText(self, title, label, text)
        return value if accepted else None

    def confirm(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def show_problem(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
