"""Real small runs driven through the window: a finished run, a stopped run, closing mid-run."""

from __future__ import annotations

import os
import signal

from PySide6.QtCore import Qt

from engine.events import AttentionCaptured, EvaluationLogged, RunPrepared, RunStarted, StepLogged
from tests.gui.conftest import RUN_TIMEOUT_MS, fill_small_run
from workbench.app import close_on_interrupt
from workbench.history_panel import COLUMNS
from workbench.threads import thread_registry

PROBE = "A short probe about the film."


def _record_events(window) -> list:
    events: list = []
    window.controller.events_received.connect(events.extend)
    return events


def _history_status(window, run_id: int) -> str:
    model = window.history.model
    row = model.row_of(run_id)
    assert row is not None, f"run {run_id} is not in the history table"
    return model.data(model.index(row, COLUMNS.index("Status")))


def test_small_run_fills_plots_and_history(qtbot, window, glue_dir, monkeypatch, messages):
    fill_small_run(qtbot, window, glue_dir, monkeypatch, name="gui-small-run")
    probe_edit = window.live_view.attention_view.probe_edit
    probe_edit.clear()
    qtbot.keyClicks(probe_edit, PROBE)
    assert window.config_panel.value("training.attention_probe") == PROBE
    assert window.config_panel.is_valid, window.config_panel.errors
    assert window.run_controls.run_button.isEnabled()

    events = _record_events(window)
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["finished"], messages

    steps = [e for e in events if isinstance(e, StepLogged)]
    evaluations = [e for e in events if isinstance(e, EvaluationLogged)]
    prepared = next(e for e in events if isinstance(e, RunPrepared))
    attention = [e for e in events if isinstance(e, AttentionCaptured)]
    assert steps
    assert evaluations
    assert attention

    live = window.live_view
    assert len(live.loss_plot.points("total")[0]) == len(steps)
    assert len(live.loss_plot.points("task")[0]) == len(steps)
    assert len(live.loss_plot.points("distillation/minilm")[0]) == len(steps)
    assert len(live.weight_plot.points("minilm")[0]) == len(steps)
    assert len(live.metric_plot.points("dev/accuracy")[0]) == len(evaluations)
    baseline_steps, baseline_values = live.metric_plot.points("baseline:dev/accuracy")
    assert list(baseline_values) == [prepared.baseline["dev/accuracy"]] * 2
    assert not live.is_refreshing

    last = attention[-1]
    tokens = last.tokens
    assert "probe" in tokens
    assert live.attention_view.tokens() == tokens
    assert live.attention_view.current_matrix().shape == (len(tokens), len(tokens))
    assert live.attention_view.layer_combo.count() == 2
    assert live.attention_view.head_combo.count() == 4
    bottom_ticks = live.attention_view.plot_item.getAxis("bottom")._tickLevels[0]
    assert [text for _position, text in bottom_ticks] == list(tokens)

    run_id = prepared.run_id
    assert _history_status(window, run_id) == "finished"
    assert window.store.get_run(run_id).status == "finished"
    assert live.progress.phase_label.text().startswith("Finished")
    assert messages == []


def test_stop_keeps_curves_as_cancelled(qtbot, window, glue_dir, monkeypatch, messages):
    fill_small_run(qtbot, window, glue_dir, monkeypatch, epochs="6", name="gui-stopped-run")
    events = _record_events(window)
    qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
    loss = window.live_view.loss_plot
    qtbot.waitUntil(lambda: len(loss.points("total")[0]) >= 2, timeout=RUN_TIMEOUT_MS)

    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(window.run_controls.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["cancelled"]

    run_id = next(e for e in events if isinstance(e, RunPrepared)).run_id
    logged_steps = [e.step for e in events if isinstance(e, StepLogged)]
    record = window.store.get_run(run_id)
    assert record.status == "cancelled"
    stored_steps, _values = window.store.metric_series(run_id, ["train/loss_total"])["train/loss_total"]
    assert list(stored_steps) == logged_steps
    assert list(loss.points("total")[0]) == logged_steps
    assert record.final_metrics is not None
    assert _history_status(window, run_id) == "cancelled"
    assert window.run_controls.run_button.isEnabled()
    assert messages == []


def test_close_mid_run_stops_and_joins(qtbot, window, glue_dir, monkeypatch, store, settings):
    fill_small_run(qtbot, window, glue_dir, monkeypatch, epochs="6", name="gui-closed-run")
    events = _record_events(window)
    qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(isinstance(e, StepLogged) for e in events), timeout=RUN_TIMEOUT_MS)

    assert window.close() is False  # the window waits for the worker thread before it closes
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)

    assert not window.controller.is_running
    assert thread_registry().running() == []
    run_id = next(e for e in events if isinstance(e, RunPrepared)).run_id
    assert store.get_run(run_id).status == "cancelled"
    assert settings.config_values()["name"] == "gui-closed-run"


def test_ctrl_c_mid_run_stops_it_without_asking(qtbot, qapp, window, glue_dir, monkeypatch, store):
    def ask(self) -> bool:
        raise AssertionError("Ctrl-C must not ask before it stops the run")

    monkeypatch.setattr(type(window), "confirm_close_during_run", ask)
    fill_small_run(qtbot, window, glue_dir, monkeypatch, epochs="6")
    events = _record_events(window)
    restore = close_on_interrupt(qapp, window)
    try:
        qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: any(isinstance(e, StepLogged) for e in events), timeout=RUN_TIMEOUT_MS)

        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    finally:
        restore()

    run_id = next(e for e in events if isinstance(e, RunPrepared)).run_id
    assert store.get_run(run_id).status == "cancelled"


def test_close_mid_run_can_be_refused(qtbot, window, glue_dir, monkeypatch):
    monkeypatch.setattr(type(window), "confirm_close_during_run", lambda self: False)
    fill_small_run(qtbot, window, glue_dir, monkeypatch, epochs="6")
    qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.live_view.loss_plot.points("total")[0]) >= 1, timeout=RUN_TIMEOUT_MS)

    assert window.close() is False
    assert window.isVisible()
    assert window.controller.is_running
    assert not window.controller.is_stopping

    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS):
        window.stop_run()


def test_resume_continues_cancelled_run(qtbot, window, glue_dir, monkeypatch, messages, store):
    fill_small_run(qtbot, window, glue_dir, monkeypatch, epochs="3", name="gui-resumed-run")
    events = _record_events(window)
    qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
    # The first evaluation also writes the resume checkpoint.
    qtbot.waitUntil(lambda: any(isinstance(e, AttentionCaptured) for e in events), timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS):
        window.stop_run()
    run_id = next(e for e in events if isinstance(e, RunPrepared)).run_id
    checkpoint_step = store.get_run(run_id).checkpoint_step
    assert store.get_run(run_id).status == "cancelled"
    assert checkpoint_step is not None

    window.history.refresh()
    window.history.select_runs([run_id])
    assert window.history.resume_action.isEnabled()
    events.clear()
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        window.history.resume_action.trigger()
    assert ended.args == ["finished"], messages

    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.run_id == run_id
    assert started.resumed_from_step == checkpoint_step
    stored_steps, _values = store.metric_series(run_id, ["train/loss_total"])["train/loss_total"]
    drawn_steps = window.live_view.loss_plot.points("total")[0]
    assert list(drawn_steps) == list(stored_steps)
    assert len(set(stored_steps)) == len(stored_steps)
    assert _history_status(window, run_id) == "finished"
