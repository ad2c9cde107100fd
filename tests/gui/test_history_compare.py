"""History table and compare view over runs written straight into the store."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from engine.config import RunConfig
from engine.run_comparison import config_diff
from engine.run_store import AttentionSnapshot, MetricPoint
from workbench.compare_view import MAX_COMPARED_RUNS, MAX_DIFF_COLUMN_WIDTH
from workbench.config_panel import nest
from workbench.history_panel import COLUMNS

BASE = RunConfig.from_dict(
    {
        "task": "sst2",
        "data": {"glue_dir": "/data/glue", "train_limit": 300, "dev_limit": 200},
        "student": {"tokenizer": "minilm", "d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 64},
        "distillation": {"teachers": ["minilm"]},
        "training": {"epochs": 1, "batch_size": 32},
    }
)
CHANGES = {"training.epochs": 3, "distillation.alpha": 0.5, "student.mixer": "softmax"}


def _stored_run(store, config: RunConfig, name: str, status: str = "finished", accuracy: float = 0.6) -> int:
    run_id = store.create_run(config.to_dict(), name=name, device="CPU: test", versions={})
    store.set_prepared(run_id, parameter_count=110_916, baseline={"dev/accuracy": 0.495})
    points = []
    for step in range(1, 6):
        points += [
            MetricPoint(step, step / 5, "train/loss_total", 1.0 / step),
            MetricPoint(step, step / 5, "train/weight/minilm", 1.0),
        ]
    points += [MetricPoint(3, 0.6, "dev/accuracy", accuracy - 0.05), MetricPoint(5, 1.0, "dev/accuracy", accuracy)]
    store.log_metrics(run_id, points)
    store.log_attention(run_id, AttentionSnapshot(5, ("[CLS]", "a", "b", "[SEP]"), np.full((2, 4, 4, 4), 0.25, dtype=np.float32)))
    metrics = {"dev/accuracy": accuracy, "heldout/accuracy": accuracy + 0.01}
    store.finish_run(run_id, status, final_metrics=metrics, best_metrics=metrics, best_step=5)
    return run_id


@pytest.fixture
def two_runs(store):
    first = _stored_run(store, BASE, "base run", accuracy=0.6)
    second = _stored_run(store, BASE.with_overrides(CHANGES), "../other/run", status="cancelled", accuracy=0.7)
    return first, second


def test_history_tells_same_named_folders_apart(qtbot, window, store):
    bert = _stored_run(store, BASE.with_overrides({"distillation.teachers": ("/ckpt/bert-sst2/final",)}), "bert", accuracy=0.6)
    roberta = _stored_run(store, BASE.with_overrides({"distillation.teachers": ("/ckpt/roberta-sst2/final", "minilm")}), "roberta", accuracy=0.6)
    window.history.refresh()
    model = window.history.model
    column = COLUMNS.index("Teachers")

    assert model.data(model.index(model.row_of(bert), column)) == "…/bert-sst2/final"
    assert model.data(model.index(model.row_of(roberta), column)) == "…/roberta-sst2/final, minilm"


def test_config_diff_lists_only_differing_keys(qtbot, window, two_runs):
    window.history.refresh()
    window.history.select_runs(list(two_runs))

    compare = window.compare_view
    assert [run.record.id for run in compare.runs] == sorted(two_runs)
    assert sorted(compare.diff_keys()) == sorted(CHANGES)
    table = compare.diff_table
    row = compare.diff_keys().index("training.epochs")
    assert [table.item(row, column).text() for column in range(2)] == ["1", "3"]


def test_long_config_value_keeps_columns_narrow(qtbot, window, store, two_runs):
    probe = "a very long probe sentence " * 12
    long_probe = _stored_run(store, BASE.with_overrides({"training.attention_probe": probe}), "long probe")
    window.history.refresh()
    window.history.select_runs([two_runs[0], long_probe])
    compare = window.compare_view
    table = compare.diff_table

    row = compare.diff_keys().index("training.attention_probe")
    assert probe.strip() in table.item(row, 1).toolTip()  # the whole value, though the cell is cut
    assert table.columnWidth(0) <= MAX_DIFF_COLUMN_WIDTH
    # The last column stretches to the table's edge, no further.
    assert table.columnWidth(0) + table.columnWidth(1) <= max(table.viewport().width(), 2 * MAX_DIFF_COLUMN_WIDTH)


def test_config_diff_of_equal_configs_is_empty():
    assert config_diff([BASE.to_dict(), BASE.to_dict()]) == []
    missing = BASE.to_dict()
    del missing["training"]["seed"]
    assert config_diff([BASE.to_dict(), missing]) == []  # a missing key takes its default


def test_compare_overlays_curves_and_metrics(qtbot, window, two_runs):
    window.history.refresh()
    window.history.select_runs(list(two_runs))
    compare = window.compare_view

    loss_series = compare.loss_plot.series_names()
    assert len(loss_series) == 2
    for name in loss_series:
        assert len(compare.loss_plot.points(name)[0]) == 5
    metric_series = compare.metric_plot.series_names()
    # Both runs select by dev accuracy, so the axis names the metric and the legend the runs.
    assert sum(name.startswith("#") for name in metric_series) == 2
    assert compare.metric_plot.plot_item.getAxis("left").labelText == "dev/accuracy"
    # Both runs are of SST-2 with the same baseline, so it is drawn once.
    assert [name for name in metric_series if "baseline" in name] == ["majority baseline (all runs)"]
    assert len(compare.weight_plot.series_names()) == 2

    metrics = compare.metrics_table
    rows = [metrics.verticalHeaderItem(row).text() for row in range(metrics.rowCount())]
    dev_row = rows.index("dev/accuracy")
    assert metrics.item(dev_row, 0).text() == "0.6000"
    assert metrics.item(dev_row, 2).text() == "0.7000"
    assert compare.attention_view.current_matrix().shape == (4, 4)


def test_compare_legend_lists_each_baseline_kind_once(qtbot, window, store):
    long_name = "sst2 reference run with a rather long descriptive name for the sweep"
    first = _stored_run(store, BASE, long_name)
    second = _stored_run(store, BASE.with_overrides({"data.dev_limit": 100}), "fewer dev rows")
    store.set_prepared(second, parameter_count=110_916, baseline={"dev/accuracy": 0.505})
    window.history.refresh()
    window.history.select_runs([first, second])

    plot = window.compare_view.metric_plot
    labels = plot.legend_labels()
    # Two baselines differ (other dev rows), so each run draws its own, explained by one entry.
    assert sum("baseline" in name for name in plot.series_names()) == 2
    assert [label for label in labels if "baseline" in label] == ["majority baseline of each run (dashed, in its colour)"]
    # Cut in the middle: runs of a sweep often differ only at the end of their names.
    assert f"#{first} sst2 reference…name for the sweep" in labels
    diff = window.compare_view.diff_table
    assert diff.horizontalHeaderItem(0).text() == f"#{first} sst2 reference…name for the sweep"
    assert diff.horizontalHeaderItem(0).toolTip() == f"#{first} {long_name}"


def test_compare_of_different_tasks_warns(qtbot, window, store, two_runs):
    stsb = _stored_run(store, BASE.with_overrides({"task": "stsb"}), "similarity", accuracy=0.3)
    store.set_prepared(stsb, parameter_count=110_657, baseline={"dev/pearson": 0.0})
    store.log_metrics(stsb, [MetricPoint(3, 0.6, "dev/pearson", 0.2), MetricPoint(5, 1.0, "dev/pearson", 0.3)])
    window.history.refresh()
    window.history.select_runs([two_runs[0], stsb])
    compare = window.compare_view

    assert "these runs are of different tasks (SST-2, STS-B), so their metrics do not compare" in compare.info_label.text()
    assert any(name.endswith(": dev/pearson") for name in compare.metric_plot.series_names())
    assert compare.metric_plot.plot_item.getAxis("left").labelText == "score"
    baselines = [name for name in compare.metric_plot.series_names() if "baseline" in name]
    assert any(name.endswith("majority baseline") for name in baselines)
    assert any(name.endswith("training-mean baseline") for name in baselines)
    metrics = compare.metrics_table
    rows = [metrics.verticalHeaderItem(row).text() for row in range(metrics.rowCount())]
    assert "baseline (primary dev metric): majority class, STS-B training mean" in rows

    window.history.select_runs(list(two_runs))
    assert "different tasks" not in compare.info_label.text()


def test_compare_shows_chosen_runs_map(qtbot, window, store, two_runs):
    store.log_attention(two_runs[1], AttentionSnapshot(9, ("[CLS]", "other", "[SEP]"), np.full((2, 4, 3, 3), 1 / 3, dtype=np.float32)))
    without_map = store.create_run(BASE.to_dict(), name="no map", device="CPU: test", versions={})
    store.finish_run(without_map, "cancelled")
    window.history.refresh()
    window.history.select_runs([*two_runs, without_map])
    compare = window.compare_view
    combo = compare.attention_run_combo

    assert combo.count() == 3
    assert compare.attention_view.tokens() == ("[CLS]", "a", "b", "[SEP]")
    combo.setCurrentIndex(1)
    assert compare.attention_view.tokens() == ("[CLS]", "other", "[SEP]")
    assert f"#{two_runs[1]}" in compare.attention_view.info_label.text()
    combo.setCurrentIndex(2)
    assert compare.attention_view.current_matrix() is None
    assert "has no recorded attention map" in compare.attention_view.info_label.text()


def test_compare_exports_csv_and_png(qtbot, window, two_runs, tmp_path, monkeypatch):
    window.history.refresh()
    window.history.select_runs(list(two_runs))
    compare = window.compare_view
    suggested: list[str] = []

    def choose(caption, name, file_filter):
        suggested.append(name)
        return str(tmp_path / name)

    monkeypatch.setattr(compare, "choose_save_path", choose)
    written = compare.export_csv()
    with written.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The columns of `lampreia export --csv`, with the run's name second.
    assert list(rows[0]) == ["run_id", "run_name", "step", "epoch", "name", "value", "wall_time"]
    assert {row["name"] for row in rows} == {"train/loss_total", "dev/accuracy", "train/weight/minilm"}
    assert {row["run_name"] for row in rows} == {"base run", "../other/run"}
    assert len(rows) == 2 * (5 + 2 + 5)
    assert "/" not in suggested[0]
    assert not suggested[0].startswith(".")
    assert written.parent == tmp_path

    compare.tabs.setCurrentWidget(compare.loss_plot)
    png = compare.export_png()
    image = QImage(str(png))
    assert png.parent == tmp_path
    assert image.width() == 1600


def test_export_adds_missing_suffix(qtbot, window, two_runs, tmp_path, monkeypatch):
    window.history.refresh()
    window.history.select_runs(list(two_runs))
    compare = window.compare_view
    problems: list[str] = []
    monkeypatch.setattr(compare, "show_problem", lambda title, message: problems.append(message))
    compare.tabs.setCurrentWidget(compare.loss_plot)

    monkeypatch.setattr(compare, "choose_save_path", lambda caption, name, file_filter: str(tmp_path / "curves"))
    assert compare.export_png() == tmp_path / "curves.png"
    assert QImage(str(tmp_path / "curves.png")).width() == 1600
    assert compare.export_csv() == tmp_path / "curves.csv"
    assert (tmp_path / "curves.csv").read_text(encoding="utf-8").startswith("run_id,run_name,step,epoch,name,value,wall_time")

    monkeypatch.setattr(compare, "choose_save_path", lambda caption, name, file_filter: str(tmp_path / "missing" / "plot.png"))
    assert compare.export_png() is None
    assert problems and "Could not write" in problems[-1]


def test_history_columns_filter_and_sort(qtbot, window, two_runs):
    history = window.history
    history.refresh()
    model = history.model
    first, second = two_runs
    row = model.row_of(first)
    texts = {column: model.data(model.index(row, COLUMNS.index(column))) for column in COLUMNS}
    assert texts["Status"] == "finished"
    assert texts["Task"] == "SST-2"
    assert texts["Teachers"] == "minilm"
    assert texts["Parameters"] == "110,916"
    assert texts["Best dev"] == "0.6000 accuracy"
    best_dev = model.index(row, COLUMNS.index("Best dev"))
    assert model.data(best_dev, Qt.ItemDataRole.ToolTipRole) == "dev/accuracy at step 5, the checkpoint that the held-out rows selected."
    header_tip = model.headerData(COLUMNS.index("Best dev"), Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "held-out rows select" in header_tip
    assert texts["Baseline"] == "0.4950"

    history.filter_edit.setText("other")
    assert history.visible_ids() == [second]
    history.filter_edit.setText("")
    history.status_combo.setCurrentIndex(history.status_combo.findData("cancelled"))
    assert history.visible_ids() == [second]
    history.status_combo.setCurrentIndex(0)

    history.table.sortByColumn(COLUMNS.index("Best dev"), history.table.horizontalHeader().sortIndicatorOrder().AscendingOrder)
    assert history.visible_ids() == [first, second]


def test_best_dev_sort_groups_tasks(qtbot, window, store, two_runs):
    first, second = two_runs
    cola = BASE.with_overrides({"task": "cola", "student.d_model": 128})
    cola_run = store.create_run(cola.to_dict(), name="cola run", device="CPU: test", versions={})
    store.finish_run(cola_run, "finished", final_metrics={"dev/mcc": 0.65}, best_metrics={"dev/mcc": 0.65}, best_step=5)
    history = window.history
    history.refresh()
    column = COLUMNS.index("Best dev")

    history.table.sortByColumn(column, history.table.horizontalHeader().sortIndicatorOrder().AscendingOrder)
    assert history.visible_ids() == [cola_run, first, second]

    history.table.sortByColumn(column, history.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    assert history.visible_ids() == [second, first, cola_run]

    # A tuple key as well: width, then layers, then heads.
    history.table.sortByColumn(COLUMNS.index("Student"), history.table.horizontalHeader().sortIndicatorOrder().AscendingOrder)
    assert history.visible_ids()[-1] == cola_run


def test_history_rename_notes_tags_delete(qtbot, window, two_runs, store, monkeypatch):
    history = window.history
    history.refresh()
    first, second = two_runs
    history.select_runs([first])

    monkeypatch.setattr(history, "ask_text", lambda title, label, text: "renamed run" if title == "Rename run" else "baseline, keep ")
    monkeypatch.setattr(history, "ask_multiline_text", lambda title, label, text: "Compared with the paper preset.")
    history.rename_action.trigger()
    history.notes_action.trigger()
    history.tags_action.trigger()
    record = store.get_run(first)
    assert record.name == "renamed run"
    assert record.notes == "Compared with the paper preset."
    assert record.tags == ("baseline", "keep")
    history.filter_edit.setText("keep")
    assert history.visible_ids() == [first]
    history.filter_edit.setText("")

    answers = iter([False, True])
    monkeypatch.setattr(history, "confirm", lambda title, question: next(answers))
    history.select_runs([first])
    history.delete_action.trigger()
    assert store.get_run(first).name == "renamed run"
    history.delete_action.trigger()
    assert [r.id for r in store.list_runs()] == [second]
    assert history.visible_ids() == [second]


def test_blank_rename_is_reported(qtbot, window, two_runs, store, monkeypatch):
    problems: list[tuple[str, str]] = []
    monkeypatch.setattr(window.history, "show_problem", lambda title, message: problems.append((title, message)))
    monkeypatch.setattr(window.history, "ask_text", lambda title, label, text: "   ")
    window.history.refresh()
    window.history.select_runs([two_runs[0]])
    window.history.rename_action.trigger()

    assert problems == [(f"Run #{two_runs[0]} was not renamed", "The new name is empty. Enter a name with at least one visible character.")]
    assert store.get_run(two_runs[0]).name == "base run"


def test_filter_matches_student_size(qtbot, window, two_runs, store):
    wide = _stored_run(store, BASE.with_overrides({"student.d_model": 128}), "wide student")
    window.history.refresh()
    window.history.filter_edit.setText("d128")

    assert window.history.visible_ids() == [wide]


def test_config_diff_heads_columns_with_current_name(qtbot, window, two_runs, store):
    store.rename_run(two_runs[0], "renamed after the run")
    window.history.refresh()
    window.history.select_runs(list(two_runs))
    table = window.compare_view.diff_table

    assert table.horizontalHeaderItem(0).text() == f"#{two_runs[0]} renamed after the run"
    assert "name" not in window.compare_view.diff_keys()  # the name it was started with is stale after a rename


def test_history_run_again_loads_config(qtbot, window, two_runs):
    window.history.refresh()
    window.history.select_runs([two_runs[1]])
    window.history.run_again_action.trigger()

    panel = window.config_panel
    assert RunConfig.from_dict(nest(panel.raw_values())) == BASE.with_overrides({**CHANGES, "name": f"../other/run (from #{two_runs[1]})"})
    # The stored glue_data folder does not exist on this machine, which the panel reports.
    assert "does not exist" in panel.editors["data.glue_dir"].error


def test_run_again_keeps_teacher_order(qtbot, window, store):
    # A local folder listed before a built-in alias, with one fixed weight for each.
    config = BASE.with_overrides(
        {"distillation.teachers": ("/ckpt/bert-sst2/final", "minilm"), "distillation.weighting": "fixed", "distillation.fixed_weights": (0.9, 0.1)}
    )
    run_id = _stored_run(store, config, "fixed weights")
    window.history.refresh()
    window.history.select_runs([run_id])
    window.history.run_again_action.trigger()

    loaded = RunConfig.from_dict(nest(window.config_panel.raw_values()))
    assert loaded.distillation.teachers == ("/ckpt/bert-sst2/final", "minilm")
    assert loaded.distillation.fixed_weights == (0.9, 0.1)
    assert loaded.with_overrides({"name": config.name}) == config  # nothing else changed, so no "(from #…: …)" part


def test_resume_without_checkpoint_reports(qtbot, window, two_runs, store, messages):
    cancelled = two_runs[1]
    window.history.refresh()
    window.history.select_runs([cancelled])
    assert not window.history.resume_action.isEnabled()
    assert "stopped before its first checkpoint" in window.history.resume_action.toolTip()
    assert "Run again" in window.history.resume_action.toolTip()
    window.history.select_runs([two_runs[0]])
    assert window.history.resume_action.toolTip().startswith("This run finished, so there is nothing to resume.")
    window.history.select_runs([cancelled])

    # The run's checkpoint can also go missing after the history was read.
    with qtbot.waitSignal(window.controller.run_ended, timeout=30_000) as ended:
        window.resume_run(cancelled)
    assert ended.args == ["failed"]
    title, text = messages[-1]
    assert title == f"Run #{cancelled} was not resumed"
    assert "no resumable checkpoint" in text
    assert "The stored run is unchanged." in text
    assert store.get_run(cancelled).status == "cancelled"
    progress = window.live_view.progress
    assert progress.title_label.text() == f"Run #{cancelled} was not resumed; the stored run is unchanged."
    assert progress.phase_label.text() == "Not resumed"


def test_running_run_cannot_be_deleted(qtbot, window, store, monkeypatch):
    run_id = store.create_run(BASE.to_dict(), name="active", device="CPU", versions={})
    problems: list[str] = []
    monkeypatch.setattr(window.history, "show_problem", lambda title, message: problems.append(message))
    window.history.refresh()
    window.history.select_runs([run_id])
    window.history.delete_action.trigger()
    assert "still running" in problems[0]
    assert "Stop it first, then delete it." in problems[0]  # this process owns it, so the window's Stop ends it
    assert store.get_run(run_id).status == "running"


def test_run_of_other_process_cannot_be_deleted(qtbot, window, store, monkeypatch):
    import sqlite3

    run_id = store.create_run(BASE.to_dict(), name="trained in a terminal", device="CPU", versions={})
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE runs SET owner_pid = ?, owner_host = ? WHERE id = ?", (os.getpid() + 1, "workstation", run_id))
    problems: list[str] = []
    monkeypatch.setattr(window.history, "show_problem", lambda title, message: problems.append(message))
    window.history.refresh()
    window.history.select_runs([run_id])
    window.history.delete_action.trigger()

    assert f"Process {os.getpid() + 1} on workstation trains it: stop it there (Ctrl-C in its terminal), then delete it." in problems[0]
    assert store.get_run(run_id).status == "running"


def test_compare_caps_overlaid_runs(qtbot, window, store):
    run_ids = [_stored_run(store, BASE, f"run {index}") for index in range(MAX_COMPARED_RUNS + 2)]
    window.history.refresh()
    window.history.select_runs(run_ids)

    compare = window.compare_view
    assert [run.record.id for run in compare.runs] == run_ids[:MAX_COMPARED_RUNS]
    assert f"{MAX_COMPARED_RUNS} oldest of {len(run_ids)}" in compare.info_label.text()
    assert len(compare.loss_plot.series_names()) == MAX_COMPARED_RUNS
    # Ten entries are laid out in two columns, which cover less of the curves.
    assert compare.loss_plot.plot_item.legend.columnCount == 2

    window.history.select_runs(run_ids[:2])
    assert compare.loss_plot.plot_item.legend.columnCount == 1


def test_read_only_database_can_be_browsed_not_changed(qtbot, two_runs, store, settings, messages):
    from engine.run_store import RunStore
    from workbench.main_window import READ_ONLY_REASON, MainWindow

    store.close()
    read_only = RunStore(store.path, read_only=True)
    window = MainWindow(read_only, settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)

    window.history.select_runs(list(two_runs))
    assert [run.record.id for run in window.compare_view.runs] == sorted(two_runs)
    assert sorted(window.compare_view.diff_keys()) == sorted(CHANGES)
    assert window.history.export_action.isEnabled()
    window.history.select_runs([two_runs[1]])  # cancelled: resumable in a writable database
    history = window.history
    for action in (history.run_again_action, history.resume_action, history.rename_action, history.notes_action,
                   history.tags_action, history.delete_action):
        assert not action.isEnabled(), action.text()
        assert action.toolTip().endswith("Not available: this run database is read-only.")

    assert not window.run_controls.run_button.isEnabled()
    assert not window.run_action.isEnabled()
    assert window.run_action.statusTip() == READ_ONLY_REASON
    assert window.run_controls.notice_label.text() == READ_ONLY_REASON
    assert window.run_controls.notice_label.isVisible()
    assert not window.run_controls.reason_label.isVisible()  # the red style is for config errors
    assert window.windowTitle() == "Lampreia Workbench — read-only database"
    assert window.areas.currentWidget() is window.history_splitter
    assert window.live_view.progress.title_label.text() == "No runs can start here: this run database is read-only."
    assert window.database_label.text() == f"Database (read-only): {store.path}"
    window.start_run()
    window.resume_run(two_runs[1])
    assert [title for title, _ in messages] == ["Cannot start a run", f"Cannot resume run #{two_runs[1]}"]
    assert not window.controller.is_running
    read_only.close()


def test_run_again_names_after_source(qtbot, window, two_runs, glue_dir, monkeypatch):
    started: list[RunConfig] = []
    monkeypatch.setattr(window.controller, "start", started.append)
    window.history.refresh()
    window.history.select_runs([two_runs[0]])
    panel = window.config_panel
    for name in (None, "my own name"):
        window.history.run_again_action.trigger()
        assert panel.value("name") == f"base run (from #{two_runs[0]})"
        panel.editors["data.glue_dir"].set_value(str(glue_dir))
        panel.editors["training.epochs"].set_value(2)
        # The name follows the changed settings until another name is typed.
        assert panel.value("name") == f"base run (from #{two_runs[0]}: glue_dir {glue_dir}, epochs 2)"
        if name is not None:
            panel.editors["name"].set_value(name)
        window.start_run()
    panel.editors["name"].set_value("")
    window.history.run_again_action.trigger()
    panel.editors["data.glue_dir"].set_value(str(glue_dir))
    panel.editors["training.epochs"].set_value(3)
    window.start_run()
    window.live_view.end_run()  # no run thread ends it here

    assert [config.name for config in started] == [
        f"base run (from #{two_runs[0]}: glue_dir {glue_dir}, epochs 2)",
        "my own name",
        f"base run (from #{two_runs[0]}: glue_dir {glue_dir}, epochs 3)",
    ]


def test_history_keeps_rows_in_small_window(qtbot, window):
    window.resize(955, 774)
    window.show()
    window.areas.setCurrentWidget(window.history_splitter)
    qtbot.wait(50)
    window.history_splitter.moveSplitter(0, 1)  # the compare view dragged up as far as it goes
    qtbot.wait(50)

    table = window.history.table
    row_height = table.verticalHeader().defaultSectionSize()
    assert window.history_splitter.sizes()[0] >= table.minimumHeight()
    assert table.isVisible()
    assert table.viewport().height() // row_height >= 4


def test_toolbar_fits_narrow_window(qtbot, window, two_runs):
    window.resize(800, 700)
    window.show()
    qtbot.waitExposed(window)
    window.areas.setCurrentIndex(1)
    qtbot.wait(20)

    toolbar = window.history.toolbar
    hidden = [action.text() for action in toolbar.actions() if not toolbar.widgetForAction(action).isVisible()]
    assert window.width() == 800
    assert hidden == []


def test_metrics_pool_seeds(qtbot, window, store):
    runs = [
        _stored_run(store, BASE.with_overrides({"training.seed": seed, **changes}), f"seed {seed}", accuracy=accuracy)
        for seed, changes, accuracy in ((1, {}, 0.6), (2, {}, 0.7), (1, CHANGES, 0.5))
    ]
    window.history.refresh()
    window.history.select_runs(runs)
    compare = window.compare_view
    metrics = compare.metrics_table
    assert metrics.columnCount() == 6

    compare.pool_seeds_box.setChecked(True)

    headers = [metrics.horizontalHeaderItem(column).text() for column in range(metrics.columnCount())]
    assert headers == [f"#{runs[0]} (2 runs): best", f"#{runs[0]} (2 runs): final", f"#{runs[2]}: best", f"#{runs[2]}: final"]
    assert metrics.horizontalHeaderItem(0).toolTip() == f"Runs #{runs[0]} (seed 1), #{runs[1]} (seed 2): mean ± sample standard deviation."
    assert metrics.horizontalHeaderItem(2).toolTip() == f"Run #{runs[2]} (seed 1)."
    rows = [metrics.verticalHeaderItem(row).text() for row in range(metrics.rowCount())]
    assert rows[:2] == ["runs", "seeds"]
    assert metrics.item(0, 0).text() == f"#{runs[0]}, #{runs[1]}"
    assert metrics.item(1, 0).text() == "1, 2"
    # The settings that differ between the groups, besides the seed.
    assert metrics.item(rows.index("distillation.alpha"), 2).text() == "0.5"
    dev_row = rows.index("dev/accuracy")
    assert metrics.item(dev_row, 0).text() == "0.6500 ± 0.0707"
    assert metrics.item(dev_row, 2).text() == "0.5000"
    assert metrics.item(rows.index("majority baseline (primary dev metric)"), 0).text() == "0.4950"
    assert metrics.item(rows.index("best steps"), 0).text() == "5, 5"

    compare.pool_seeds_box.setChecked(False)
    assert metrics.columnCount() == 6


def test_config_diff_lists_environment(qtbot, window, store, two_runs):
    other = store.create_run(BASE.to_dict(), name="one thread", device="CPU: test (1 thread)", versions={"torch": "2.14.1"})
    store.finish_run(other, "finished", final_metrics={}, best_metrics={}, best_step=None)
    window.history.refresh()
    window.history.select_runs([two_runs[0], other])

    # The stored runs recorded no versions, so torch reads "(not recorded)" for them.
    assert window.compare_view.diff_keys() == ["device", "versions.torch"]
    assert window.compare_view.diff_table.item(0, 1).text() == "CPU: test (1 thread)"


def test_run_again_of_rerun_keeps_its_changes(qtbot, window, store, glue_dir, monkeypatch):
    started: list[RunConfig] = []
    monkeypatch.setattr(window.controller, "start", started.append)
    base = _stored_run(store, BASE, "base run")
    softmax = _stored_run(store, BASE.with_overrides({"student.mixer": "softmax"}), f"base run (from #{base}: mixer softmax)")
    window.history.refresh()
    window.history.select_runs([softmax])

    window.history.run_again_action.trigger()
    panel = window.config_panel
    assert panel.value("name") == f"base run (from #{base} via #{softmax}: mixer softmax)"
    panel.editors["data.glue_dir"].set_value(str(glue_dir))
    panel.editors["training.seed"].set_value(3)
    window.start_run()
    window.live_view.end_run()

    assert [config.name for config in started] == [f"base run (from #{base} via #{softmax}: glue_dir {glue_dir}, mixer softmax, seed 3)"]


def test_compare_info_notes_padding(qtbot, window, store, two_runs):
    longest = _stored_run(store, BASE.with_overrides({"training.padding": "longest"}), "longest padding")
    window.history.refresh()
    window.history.select_runs([two_runs[0], longest])

    text = window.compare_view.info_label.text()
    assert "Note: The padding differs." in text
    assert "so a difference between single seeds can be seed noise" in text


def test_pool_seeds_uses_every_selected_run(qtbot, window, store, tmp_path):
    runs = [_stored_run(store, BASE.with_overrides({"training.seed": seed}), f"seed {seed}", accuracy=0.5 + seed / 100) for seed in range(12)]
    repeat = _stored_run(store, BASE.with_overrides({"training.seed": 0}), "seed 0 again", accuracy=0.9)
    window.history.refresh()
    window.history.select_runs([*runs, repeat])
    compare = window.compare_view
    assert len(compare.runs) == MAX_COMPARED_RUNS
    assert "The metrics table lists all 13 of them." in compare.info_label.text()
    assert compare.metrics_table.columnCount() == 2 * 13

    compare.pool_seeds_box.setChecked(True)

    metrics = compare.metrics_table
    assert metrics.horizontalHeaderItem(0).text() == f"#{runs[0]} (12 runs): best"
    rows = [metrics.verticalHeaderItem(row).text() for row in range(metrics.rowCount())]
    # Seeds 0 to 11 give 0.50 to 0.61; the repeat of seed 0 (0.9) is left out.
    assert metrics.item(rows.index("dev/accuracy"), 0).text() == "0.5550 ± 0.0361"
    assert not compare.pool_note.isHidden()
    assert compare.pool_note.text().startswith(f"Run #{repeat} repeats the settings and seed of an earlier run")

    target = tmp_path / "table.csv"
    compare.choose_save_path = lambda *args: str(target)
    assert compare.export_table_csv() == target
    with target.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == 1
    assert exported[0]["runs"] == "12"
    assert float(exported[0]["best:dev/accuracy:mean"]) == pytest.approx(0.555)

    compare.pool_seeds_box.setChecked(False)
    assert compare.pool_note.isHidden()
    compare.export_table_csv()
    with target.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 13  # one row per selected run


def test_long_names_keep_their_end(qtbot, window):
    assert window.history.table.textElideMode() == Qt.TextElideMode.ElideMiddle
