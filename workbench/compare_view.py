"""Compare stored runs: overlaid curves, the config keys that differ, and best/final metrics."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import LampreiaError, StoreError
from engine.paths import replaced_text_file, safe_file_name
from engine.run_comparison import (
    REPEAT_KEYS,
    comparison_csv,
    comparison_notes,
    config_diff,
    drop_seed_repeats,
    environment_diff,
    format_config_value,
    group_label,
    metric_rows,
    pool,
    pooled_csv,
    pooled_metric_rows,
    primary_dev_metric,
    repeats_note,
    run_seed,
    seed_groups,
)
from engine.run_store import AttentionSnapshot, RunRecord, RunStore
from engine.tasks import baseline_name, task_title
from workbench.attention_view import AttentionView
from workbench.background import BackgroundCall
from workbench.curve_plot import CurvePlot
from workbench.formatting import clip_middle, format_count, format_metric
from workbench.plot_style import curve_pen, export_plot_png
from workbench.save_dialog import ask_save_path

log = logging.getLogger(__name__)

LOSS_SERIES = "train/loss_total"
# More overlaid runs would repeat the palette's colours and make each selection change slow to read.
MAX_COMPARED_RUNS = 10
WEIGHT_PREFIX = "train/weight/"
MAX_DIFF_COLUMN_WIDTH = 320
# A legend with more entries than this is laid out in two columns, so it covers less of the curves.
LEGEND_ROWS = 8
# Characters of a run's name in legends and column headers. The header tooltips give the whole name.
MAX_RUN_LABEL = 36
# More compared runs than this are named by id alone in the info line, which would otherwise fill the view.
MAX_NAMED_RUNS = 3
SHARED_BASELINE_COLOUR = "#555555"
# Most runs whose records the metrics table and its export read. Curves are read for the
# MAX_COMPARED_RUNS oldest only, but a sweep's pooled values need all of its runs.
MAX_TABLE_RUNS = 500
PAIRED_TIP = (
    "For two selected runs of one task: both students predict the dev rows the runs were scored on, and each metric's "
    "difference gets a 95% paired bootstrap interval over the rows, and accuracy McNemar's exact test "
    "(`lampreia compare A B --paired`). It shows whether the difference exceeds the sampling noise of the dev rows."
)
POOL_SEEDS_TIP = (
    "One pair of columns per group of runs whose settings differ only in the seed: each metric's mean "
    "and sample standard deviation over the group's runs, as `lampreia compare --pool-seeds` prints them."
)


@dataclass(frozen=True)
class ComparedRun:
    """A stored run and the curves read for it: {metric name: (steps, values)}."""

    record: RunRecord
    series: dict[str, tuple[np.ndarray, np.ndarray]]
    attention: AttentionSnapshot | None = None

    @property
    def label(self) -> str:
        return f"#{self.record.id} {self.record.name}"


class CompareView(QWidget):
    """Overlays the curves of the runs selected in the history. Owned by the GUI thread.

    File dialogs and messages go through ``choose_save_path`` and ``show_problem`` so that tests
    can replace them.
    """

    def __init__(self, store: RunStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.runs: list[ComparedRun] = []
        # Every selected run (up to MAX_TABLE_RUNS), for the metrics table and its export.
        self.table_records: list[RunRecord] = []

        self.info_label = QLabel("Select runs in the history to compare them.")
        self.info_label.setObjectName("fieldHint")
        # Wrapped, the line does not set the narrowest width of the window.
        self.info_label.setWordWrap(True)
        self.csv_button = QPushButton("Export curves as CSV…")
        self.csv_button.setToolTip(
            "Write the plotted curves of the compared runs, one row per point: run_id, run_name, step, epoch, name, value, "
            "wall_time (Unix seconds), the columns of `lampreia export --csv` with the run's name added."
        )
        self.png_button = QPushButton("Export plot as PNG…")

        self.loss_plot = CurvePlot("Training loss (total)", "loss", smoothing_control=True)
        self.metric_plot = CurvePlot("Primary dev metric", "score", legend_corner="bottom right")
        self.weight_plot = CurvePlot("Teacher weights (batch mean)", "weight", smoothing_control=True)
        self.attention_view = AttentionView(editable_probe=False)
        # Maps are read from the store when their run is chosen; None: the run has none.
        self._attention: dict[int, AttentionSnapshot | None] = {}
        self.attention_run_combo = QComboBox()
        self.attention_run_combo.setToolTip("Run whose last recorded attention map is shown.")
        self.attention_view.controls_row.insertWidget(0, QLabel("Run"))
        self.attention_view.controls_row.insertWidget(1, self.attention_run_combo, 1)
        self.attention_run_combo.currentIndexChanged.connect(self._show_attention)
        self.diff_table = QTableWidget()
        self.metrics_table = QTableWidget()
        for table in (self.diff_table, self.metrics_table):
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.setWordWrap(False)
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            table.horizontalHeader().setStretchLastSection(True)
        # Short tab names, so that the six tabs fit an 800-pixel-wide window; tooltips give the long ones.
        self.tabs = QTabWidget()
        for widget, name, tip in (
            (self.loss_plot, "Loss", "Training loss (total) of each run"),
            (self.metric_plot, "Dev metric", "Primary dev metric of each run, with the majority baseline"),
            (self.weight_plot, "Weights", "Teacher weights (batch mean) of each run"),
            (self.diff_table, "Config diff", "The settings, device and library versions that differ between the runs"),
        ):
            self.tabs.setTabToolTip(self.tabs.addTab(widget, name), tip)
        self.pool_seeds_box = QCheckBox("Pool seeds")
        self.pool_seeds_box.setToolTip(POOL_SEEDS_TIP)
        self.table_csv_button = QPushButton("Export table as CSV…")
        self.table_csv_button.setToolTip(
            "Write this table with one row per run, or per group of runs with Pool seeds, as `lampreia compare --csv` "
            "(with --pool-seeds) writes it: the seed, the settings that differ, and the best, last and baseline metrics."
        )
        self.pool_note = QLabel()
        self.pool_note.setObjectName("fieldHint")
        self.pool_note.setWordWrap(True)
        self.pool_note.hide()
        self.paired_button = QPushButton("Paired test")
        self.paired_button.setToolTip(PAIRED_TIP)
        self.paired_note = QLabel()
        self.paired_note.setWordWrap(True)
        self.paired_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.paired_note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # The result and the table share the page in a splitter; the result scrolls when it is cut.
        self.paired_area = QScrollArea()
        self.paired_area.setWidget(self.paired_note)
        self.paired_area.setWidgetResizable(True)
        self.paired_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.paired_area.hide()
        self.metrics_splitter = QSplitter(Qt.Orientation.Vertical)
        self.metrics_splitter.setChildrenCollapsible(False)
        self._paired_call: BackgroundCall | None = None
        self._moved_folders: dict[str, str] = {}  # a missing glue_data folder → the folder the user chose in its place
        self._paired_folder_key: str | None = None  # the missing folder that the running test replaced
        metrics_page = QWidget()
        metrics_layout = QVBoxLayout(metrics_page)
        metrics_layout.setContentsMargins(0, 0, 0, 0)
        metrics_controls = QHBoxLayout()
        metrics_controls.addWidget(self.pool_seeds_box)
        metrics_controls.addWidget(self.paired_button)
        metrics_controls.addStretch(1)
        metrics_controls.addWidget(self.table_csv_button)
        metrics_layout.addLayout(metrics_controls)
        metrics_layout.addWidget(self.pool_note)
        self.metrics_splitter.addWidget(self.paired_area)
        self.metrics_splitter.addWidget(self.metrics_table)
        self.metrics_splitter.setStretchFactor(1, 1)
        metrics_layout.addWidget(self.metrics_splitter, 1)
        self.pool_seeds_box.toggled.connect(self._fill_metrics)
        self.table_csv_button.clicked.connect(self.export_table_csv)
        self.paired_button.clicked.connect(self.run_paired_test)
        self.tabs.setTabToolTip(self.tabs.addTab(metrics_page, "Metrics"), "Best and final metrics of each run, or pooled over seeds")
        self.tabs.setTabToolTip(self.tabs.addTab(self.attention_view, "Attention"), "The last recorded attention map of a run")

        top = QHBoxLayout()
        top.addWidget(self.info_label, 1)
        top.addWidget(self.csv_button)
        top.addWidget(self.png_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

        self.csv_button.clicked.connect(self.export_csv)
        self.png_button.clicked.connect(self.export_png)
        self.tabs.currentChanged.connect(self._update_buttons)
        self._update_buttons()

    # Loading

    @Slot(list)
    def show_run_ids(self, run_ids: list[int]) -> None:
        """Read the runs and their curves from the store and show them, oldest run first."""
        runs = []
        ordered = sorted(run_ids)
        try:
            for run_id in ordered[:MAX_COMPARED_RUNS]:
                runs.append(ComparedRun(self._store.get_run(run_id), self._store.metric_series(run_id)))
            records = [run.record for run in runs] + [self._store.get_run(run_id) for run_id in ordered[MAX_COMPARED_RUNS:MAX_TABLE_RUNS]]
        except StoreError as error:
            log.error("Could not read runs %s for comparison: %s", run_ids, error)
            self.show_problem("Could not read the runs", str(error))
            return
        self.show_runs(runs, records)
        if len(run_ids) > MAX_COMPARED_RUNS:
            self.info_label.setText(
                f"Comparing the {MAX_COMPARED_RUNS} oldest of {len(run_ids)} selected runs: "
                + ", ".join(f"#{run.record.id}" for run in runs)
                + f". The metrics table lists all {len(records)} of them."
                + self._task_note()
            )

    @staticmethod
    def _run_list(runs: list[ComparedRun]) -> str:
        """Return "run #3 name" or "4 runs: #1 a, #2 b, …", with ids alone for more than MAX_NAMED_RUNS runs."""
        if len(runs) == 1:
            return f"run {runs[0].label}"
        if len(runs) <= MAX_NAMED_RUNS:
            return f"{len(runs)} runs: " + ", ".join(run.label for run in runs)
        return f"{len(runs)} runs: " + ", ".join(f"#{run.record.id}" for run in runs) + " (their names are in the legends and tables)"

    def _task_note(self) -> str:
        """Return a warning when the compared runs are of different tasks, whose metrics share one axis."""
        tasks = sorted({run.record.task for run in self.runs})
        if len(tasks) < 2:
            return ""
        titles = ", ".join(task_title(task) for task in tasks)
        return f" Note: these runs are of different tasks ({titles}), so their metrics do not compare."

    def show_runs(self, runs: list[ComparedRun], table_records: list[RunRecord] | None = None) -> None:
        """Show the curves of ``runs``. The metrics table pools ``table_records`` (default: the records of ``runs``)."""
        self.runs = list(runs)
        self.table_records = list(table_records) if table_records is not None else [run.record for run in runs]
        self._show_paired("")
        self._fill_curves()
        self._fill_diff()
        self._fill_metrics()
        self._fill_attention()
        if not runs:
            self.info_label.setText("Select runs in the history to compare them.")
        else:
            records = [run.record for run in runs]
            differing = {key for key, _values in config_diff([record.config for record in records])}
            notes = "".join(f" Note: {note}" for note in comparison_notes(records, differing))
            self.info_label.setText(f"Comparing {self._run_list(runs)}.{self._task_note()}{notes}")
        self._update_buttons()

    def _fill_curves(self) -> None:
        plots = (self.loss_plot, self.metric_plot, self.weight_plot)
        for plot in plots:
            plot.clear()
        # The metric names the axis when all runs share it, instead of ending every legend entry.
        metrics = {primary_dev_metric(run.record) for run in self.runs}
        shared_metric = metrics.pop() if len(metrics) == 1 else None
        self.metric_plot.plot_item.setLabel("left", shared_metric or "score")
        for index, run in enumerate(self.runs):
            self._draw_run(index, run, name_metric=shared_metric is None)
        self._draw_baselines()
        for plot in plots:
            plot.refresh()
            legend = plot.plot_item.legend
            if legend is not None:
                legend.setColumnCount(2 if len(plot.legend_labels()) > LEGEND_ROWS else 1)

    def _draw_run(self, index: int, run: ComparedRun, *, name_metric: bool) -> None:
        label = run.label
        if LOSS_SERIES in run.series:
            self._set(self.loss_plot, label, run.series[LOSS_SERIES], curve_pen(index))

        metric = primary_dev_metric(run.record)
        if metric and metric in run.series:
            self._set(self.metric_plot, f"{label}: {metric}" if name_metric else label, run.series[metric], curve_pen(index))

        # In the order the run logged them, which is its teacher order.
        teachers = [name.removeprefix(WEIGHT_PREFIX) for name in run.series if name.startswith(WEIGHT_PREFIX)]
        for teacher_index, teacher in enumerate(teachers):
            pen = curve_pen(index)
            pen.setStyle((Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)[teacher_index % 4])
            self._set(self.weight_plot, f"{label}: {teacher}", run.series[WEIGHT_PREFIX + teacher], pen)

    def _draw_baselines(self) -> None:
        """Draw each run's baseline as a dashed line, or one grey line when all runs share it."""
        lines = []
        for index, run in enumerate(self.runs):
            metric = primary_dev_metric(run.record)
            baseline = run.record.baseline.get(metric) if metric else None
            if baseline is not None and metric in run.series and len(run.series[metric][0]):
                lines.append((index, run, baseline, max(float(run.series[metric][0].max()), 1.0)))
        if not lines:
            return

        # Runs of one task on the same dev rows have the same baseline, and one legend entry per
        # run would double the legend.
        shared = len(lines) > 1 and len({(run.record.task, round(value, 9)) for _, run, value, _ in lines}) == 1
        grey = pg.mkPen(SHARED_BASELINE_COLOUR, width=1, style=Qt.PenStyle.DashLine)
        if shared:
            _, run, value, _ = lines[0]
            end = max(line_end for *_, line_end in lines)
            self._set(self.metric_plot, f"{baseline_name(run.record.task)} (all runs)", ([0.0, end], [value, value]), grey)
            return
        # One legend entry per kind of baseline explains the dashed line of every run.
        for index, run, value, end in lines:
            self.metric_plot.set_series(
                f"{run.label}: {baseline_name(run.record.task)}", [0.0, end], [value, value], pen=curve_pen(index, dashed=True), listed=False
            )
        for name in dict.fromkeys(baseline_name(run.record.task) for _, run, _, _ in lines):
            self.metric_plot.add_legend_entry(f"{name} of each run (dashed, in its colour)", grey)

    @staticmethod
    def _set(plot: CurvePlot, name: str, series: tuple[Any, Any], pen) -> None:
        # A long name would widen the legend over the curves. The header tooltips of the tables give it whole.
        plot.set_series(name, series[0], series[1], pen=pen, label=clip_middle(name, MAX_RUN_LABEL))

    def _fill_diff(self) -> None:
        table = self.diff_table
        table.clear()
        if len(self.runs) < 2:
            table.setRowCount(0)
            table.setColumnCount(1)
            table.setHorizontalHeaderLabels(["Select two or more runs to list the configuration keys that differ."])
            return
        # The column headers give each run's current name. The config keeps the name a run was
        # started with, which a rename does not change, so it is left out, as `lampreia compare` does.
        rows = [(key, values) for key, values in config_diff([run.record.config for run in self.runs]) if key != "name"]
        # The same settings and seed can give other numbers on another device, thread count or library version.
        rows += environment_diff([run.record for run in self.runs])
        table.setColumnCount(len(self.runs))
        _set_column_headers(table, [run.label for run in self.runs])
        table.setRowCount(len(rows))
        table.setVerticalHeaderLabels([key for key, _ in rows])
        for row, (key, values) in enumerate(rows):
            for column, value in enumerate(values):
                text = format_config_value(value, key)
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                table.setItem(row, column, item)
        if not rows:
            table.setColumnCount(1)
            table.setHorizontalHeaderLabels(["The selected runs have the same configuration, device and library versions."])
        table.resizeColumnsToContents()
        if rows:
            # A long value (a probe sentence, a folder path) would push the other runs off screen.
            # So its cell is cut, and its tooltip gives it whole.
            header = table.horizontalHeader()
            for column in range(table.columnCount()):
                header.resizeSection(column, min(header.sectionSize(column), MAX_DIFF_COLUMN_WIDTH))

    def _fill_attention(self) -> None:
        """List the compared runs for the attention tab and show the first one's map."""
        self._attention = {run.record.id: run.attention for run in self.runs if run.attention is not None}
        combo = self.attention_run_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItems([run.label for run in self.runs])
        combo.blockSignals(False)
        self._show_attention(0)

    @Slot(int)
    def _show_attention(self, index: int) -> None:
        if not 0 <= index < len(self.runs):
            self.attention_view.clear()
            return
        run = self.runs[index]
        run_id = run.record.id
        if run_id not in self._attention:
            # Only the map of the chosen run is read: a stored map can be megabytes.
            try:
                self._attention[run_id] = self._store.attention_snapshot(run_id)
            except StoreError as error:
                log.error("Could not read the attention map of run %d: %s", run_id, error)
                self.show_problem("Could not read the attention map", str(error))
                self._attention[run_id] = None
        snapshot = self._attention[run_id]
        if snapshot is None:
            self.attention_view.clear()
            self.attention_view.info_label.setText(f"Run {run.label} has no recorded attention map: it is recorded at each evaluation.")
            return
        self.attention_view.show_snapshot(snapshot.step, snapshot.tokens, snapshot.maps, f"stored, {run.label}")

    def diff_keys(self) -> list[str]:
        """Keys listed in the config diff table, top to bottom."""
        return [self.diff_table.verticalHeaderItem(row).text() for row in range(self.diff_table.rowCount())]

    @Slot()
    def _fill_metrics(self) -> None:
        if self.pool_seeds_box.isChecked():
            self._fill_pooled_metrics()
            return
        self.pool_note.hide()
        table = self.metrics_table
        table.clear()
        records = self.table_records
        names = [row.name for row in metric_rows(records)]
        kinds = sorted({baseline_name(record.task) for record in records})
        baseline_row = f"{kinds[0]} (primary dev metric)" if len(kinds) == 1 else "baseline (primary dev metric): majority class, STS-B training mean"
        row_labels = names + [baseline_row, "best step", "parameters"]
        headers = []
        for record in records:
            headers += [f"#{record.id} {record.name}: best", f"#{record.id} {record.name}: final"]
        table.setColumnCount(len(headers))
        table.setRowCount(len(row_labels))
        _set_column_headers(table, headers)
        table.setVerticalHeaderLabels(row_labels)
        # Every selected run, as the table export writes them, not only the runs whose curves are drawn.
        for column, record in enumerate(records):
            for row, name in enumerate(names):
                table.setItem(row, 2 * column, QTableWidgetItem(format_metric(record.best_metrics.get(name))))
                table.setItem(row, 2 * column + 1, QTableWidgetItem(format_metric(record.final_metrics.get(name))))
            metric = primary_dev_metric(record)
            table.setItem(len(names), 2 * column, QTableWidgetItem(format_metric(record.baseline.get(metric) if metric else None)))
            table.setItem(len(names) + 1, 2 * column, QTableWidgetItem("" if record.best_step is None else str(record.best_step)))
            table.setItem(len(names) + 2, 2 * column, QTableWidgetItem(format_count(record.parameter_count)))
        table.resizeColumnsToContents()

    def _pooled_groups(self) -> tuple[list[list[RunRecord]], list[RunRecord]]:
        """Return the groups of selected runs that differ only in the seed, one run per seed, and the repeats left out."""
        return drop_seed_repeats(seed_groups(self.table_records))

    def _fill_pooled_metrics(self) -> None:
        """Fill the metrics table with one pair of columns per group of runs that differ only in the seed.

        The first rows name each group's runs and seeds and the settings that differ between groups.
        """
        table = self.metrics_table
        table.clear()
        groups, repeats = self._pooled_groups()
        notes = [note for note in (repeats_note(repeats),) if note]
        if groups and len(groups) == len(self.table_records) - len(repeats):
            notes.append("No two of these runs differ only in their seed, so each column is one run.")
        self.pool_note.setText(" ".join(notes))
        self.pool_note.setVisible(bool(notes))

        settings = [(key, values) for key, values in config_diff([group[0].config for group in groups]) if key not in REPEAT_KEYS]
        rows = pooled_metric_rows(groups, [self._lasts(group) for group in groups])
        kinds = sorted({baseline_name(group[0].task) for group in groups})
        baseline_row = f"{kinds[0]} (primary dev metric)" if len(kinds) == 1 else "baseline (primary dev metric): majority class, STS-B training mean"
        row_labels = ["runs", "seeds", *(key for key, _ in settings), *(row.name for row in rows), baseline_row, "best steps", "parameters"]
        headers = []
        for group in groups:
            headers += [f"{group_label(group)}: best", f"{group_label(group)}: final"]
        table.setColumnCount(len(headers))
        table.setRowCount(len(row_labels))
        _set_column_headers(table, headers)
        table.setVerticalHeaderLabels(row_labels)

        first_metric_row = 2 + len(settings)
        for column, group in enumerate(groups):
            runs = ", ".join(f"#{record.id} (seed {format_config_value(run_seed(record))})" for record in group)
            tip = f"Runs {runs}: mean ± sample standard deviation." if len(group) > 1 else f"Run {runs}."
            for offset in (0, 1):
                table.horizontalHeaderItem(2 * column + offset).setToolTip(tip)
            table.setItem(0, 2 * column, QTableWidgetItem(", ".join(f"#{record.id}" for record in group)))
            table.setItem(1, 2 * column, QTableWidgetItem(", ".join(format_config_value(run_seed(record)) for record in group)))
            for row, (key, values) in enumerate(settings, start=2):
                table.setItem(row, 2 * column, QTableWidgetItem(format_config_value(values[column], key)))
            for row, pooled in enumerate(rows, start=first_metric_row):
                for offset, value in enumerate(pooled.values[column]):
                    table.setItem(row, 2 * column + offset, QTableWidgetItem("" if value is None else value.format()))
            metric = primary_dev_metric(group[0])
            baseline = pool([record.baseline.get(metric) for record in group]) if metric else None
            end = first_metric_row + len(rows)
            table.setItem(end, 2 * column, QTableWidgetItem("" if baseline is None else baseline.format_mean_if_equal()))
            steps = ", ".join("-" if record.best_step is None else str(record.best_step) for record in group)
            table.setItem(end + 1, 2 * column, QTableWidgetItem(steps))
            table.setItem(end + 2, 2 * column, QTableWidgetItem(format_count(group[0].parameter_count)))
        table.resizeColumnsToContents()

    def _lasts(self, records: list[RunRecord]) -> list[dict[str, float]]:
        """Return each run's last-evaluation metrics: the stored final ones, or the last logged for a killed run."""
        return [record.final_metrics or self._store.last_evaluation(record.id) for record in records]

    # Export

    def current_plot(self) -> CurvePlot | AttentionView | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, (CurvePlot, AttentionView)) else None

    def _update_buttons(self) -> None:
        busy = self._paired_call is not None and self._paired_call.is_running()
        self.paired_button.setEnabled(len(self.table_records) == 2 and not busy)
        self.csv_button.setEnabled(bool(self.runs))
        self.table_csv_button.setEnabled(bool(self.table_records))
        self.png_button.setEnabled(bool(self.runs) and self.current_plot() is not None)

    def suggested_name(self, suffix: str) -> str:
        names = "-".join(run.record.name for run in self.runs) or "runs"
        return safe_file_name(f"compare-{names}", fallback="compare") + suffix

    def curve_rows(self) -> list[tuple[int, str, int, str, str, str, str]]:
        """Return the rows of the plotted curves: run id, run name, step, epoch, name, value, wall time.

        The columns are those of `lampreia export --csv` with the run's name second, so one reader
        takes both files.
        """
        rows = []
        for run in self.runs:
            metric = primary_dev_metric(run.record)
            plotted = {LOSS_SERIES, *([metric] if metric else []), *(n for n in run.series if n.startswith(WEIGHT_PREFIX))}
            for point in self._store.metric_points(run.record.id):
                if point.name in plotted:
                    rows.append(
                        (run.record.id, run.record.name, point.step, f"{point.epoch:.6f}", point.name, repr(point.value), f"{point.wall_time:.3f}")
                    )
        return rows

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        rows = self.curve_rows()
        with replaced_text_file(path) as handle:
            writer = csv.writer(handle)
            writer.writerow(["run_id", "run_name", "step", "epoch", "name", "value", "wall_time"])
            writer.writerows(rows)
        return path

    @Slot()
    def export_csv(self) -> Path | None:
        if not self.runs:
            self.show_problem("Nothing to export", "Select one or more runs in the history first.")
            return None
        written = self._export_csv_file("Export compared curves as CSV", self.suggested_name(".csv"), self.write_csv)
        if written is not None:
            log.info("Exported %d runs' curves to %s", len(self.runs), written)
        return written

    def write_table_csv(self, path: str | Path) -> Path:
        """Write the metrics table's runs as `lampreia compare --csv` does, pooled when Pool seeds is on."""
        path = Path(path)
        if self.pool_seeds_box.isChecked():
            groups, _repeats = self._pooled_groups()
            header, rows = pooled_csv(groups, [self._lasts(group) for group in groups])
        else:
            header, rows = comparison_csv(self.table_records, self._lasts(self.table_records))
        with replaced_text_file(path) as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    @Slot()
    def export_table_csv(self) -> Path | None:
        if not self.table_records:
            self.show_problem("Nothing to export", "Select one or more runs in the history first.")
            return None
        return self._export_csv_file("Export the metrics table as CSV", self.suggested_name("-table.csv"), self.write_table_csv)

    def _export_csv_file(self, title: str, suggested_name: str, write: Callable[[str], Path]) -> Path | None:
        """Ask for a CSV file name and write it with ``write``; report a failure and return None."""
        path = self.choose_save_path(title, suggested_name, "CSV files (*.csv)")
        if not path:
            return None
        if not Path(path).suffix:
            path += ".csv"  # a replaced choose_save_path (tests replace it) may return a name without it
        try:
            return write(path)
        except OSError as error:
            log.error("Could not write %s: %s", path, error)
            self.show_problem("Export failed", f"Could not write {path}: {error.strerror or error}. Choose another folder.")
        except StoreError as error:
            log.error("Could not read the runs to export to %s: %s", path, error)
            self.show_problem("Export failed", str(error))
        return None

    @Slot()
    def export_png(self) -> Path | None:
        plot = self.current_plot()
        if plot is None or not self.runs:
            self.show_problem("Nothing to export", "Select runs and a plot tab (Loss, Dev metric, Weights or Attention) first.")
            return None
        tab = self.tabs.tabText(self.tabs.currentIndex()).lower().replace(" ", "-")
        path = self.choose_save_path("Export plot as PNG", self.suggested_name(f"-{tab}.png"), "PNG images (*.png)")
        if not path:
            return None
        try:
            return export_plot_png(plot.plot_widget, path)
        except OSError as error:
            log.error("Could not write %s: %s", path, error)
            self.show_problem("Export failed", f"Could not write {path}: {error.strerror or error}. Choose another folder.")
            return None

    # Dialogs, replaceable in tests

    def choose_save_path(self, caption: str, suggested_name: str, file_filter: str) -> str:
        return ask_save_path(self, caption, suggested_name, file_filter)

    @Slot()
    def run_paired_test(self) -> None:
        """Test the two selected runs on their common dev rows, on a worker thread; the result goes under the table."""
        # Imported here: it loads the student's modules, which the window does not need to start.
        from engine.prediction import find_checkpoint
        from engine.significance import paired_checkpoint_tests

        if len(self.table_records) != 2 or (self._paired_call is not None and self._paired_call.is_running()):
            return
        first, second = self.table_records
        try:
            record_a, path_a = find_checkpoint(self._store, first.id, "best")
            record_b, path_b = find_checkpoint(self._store, second.id, "best")
        except LampreiaError as error:
            self._show_paired(str(error))
            return
        self._paired_folder_key = None
        # When neither run's glue_data folder is where it was, ask where it is now.
        folders = [folder for folder in (record.config.get("data", {}).get("glue_dir") for record in (first, second)) if folder]
        glue_dir = None
        if folders and not any(Path(folder).is_dir() for folder in folders):
            # A folder chosen once for a missing one is used again in this session.
            glue_dir = self._moved_folders.get(folders[0])
            if glue_dir is None or not Path(glue_dir).is_dir():
                glue_dir = self.choose_glue_folder(folders[0])
            if glue_dir:
                self._moved_folders[folders[0]] = glue_dir
                self._paired_folder_key = folders[0]
            else:
                self._show_paired(
                    f"The runs' glue_data folder {folders[0]} is missing, so their dev rows cannot be read. "
                    "Press Paired test again and choose where the folder is now."
                )
                return

        self._show_paired(f"Predicting the dev rows of runs #{first.id} and #{second.id} and resampling them …")
        call = BackgroundCall(
            partial(paired_checkpoint_tests, record_a, path_a, record_b, path_b, glue_dir=glue_dir),
            f"Paired test of runs {first.id} and {second.id}",
            self,
        )
        call.succeeded.connect(partial(self._on_paired, first, second))
        call.failed.connect(self._on_paired_failed)
        self._paired_call = call
        call.start()
        self._update_buttons()

    def _on_paired(self, first: RunRecord, second: RunRecord, results: list) -> None:
        from engine.significance import describe_paired

        self._paired_folder_key = None
        self._paired_call = None
        self._update_buttons()
        # The selection may have changed while the test ran; its result belongs to those two runs only.
        if [record.id for record in self.table_records] != [first.id, second.id]:
            return
        lines = []
        for result in results:
            lines += describe_paired(result, task_title(first.task), f"#{first.id}", f"#{second.id}")
        self._show_paired("\n".join(lines))

    @Slot(str)
    def _on_paired_failed(self, message: str) -> None:
        # A chosen folder that did not work is asked for again next time.
        if self._paired_folder_key is not None:
            self._moved_folders.pop(self._paired_folder_key, None)
        self._paired_folder_key = None
        self._paired_call = None
        self._update_buttons()
        self._show_paired(message)

    def choose_glue_folder(self, missing: str) -> str:
        """Ask where a moved glue_data folder is now; a separate method so that tests can replace the dialog."""
        return QFileDialog.getExistingDirectory(self, f"The glue_data folder {missing} is missing: choose where it is now")

    def _show_paired(self, text: str) -> None:
        was_hidden = self.paired_area.isHidden()
        self.paired_note.setText(text)
        self.paired_area.setVisible(bool(text))
        if text and was_hidden:
            # About two fifths of the page for the result, the rest for the table.
            total = sum(self.metrics_splitter.sizes()) or self.metrics_splitter.height()
            self.metrics_splitter.setSizes([total * 2 // 5, total - total * 2 // 5])

    @property
    def paired_message(self) -> str:
        return "" if self.paired_area.isHidden() else self.paired_note.text()

    def show_problem(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()


def _set_column_headers(table: QTableWidget, labels: list[str]) -> None:
    """Set column headers cut in the middle to MAX_RUN_LABEL characters, each whole in its tooltip.

    A long run name as a header would make its column take the table's whole width.
    """
    for column, label in enumerate(labels):
        item = QTableWidgetItem(clip_middle(label, MAX_RUN_LABEL))
        item.setToolTip(label)
        table.setHorizontalHeaderItem(column, item)
