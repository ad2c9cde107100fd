"""The live view's drain: a burst of queued events costs one progress repaint, in event order.

``end_run`` drains what is queued and stops the refresh timer that ``begin_run`` started. The
progress header shows frequent events (progress, step speeds) at the refresh, not one by one.
"""

import numpy as np

from engine.events import PhaseChanged, Progress, StepLogged
from workbench.live_view import LiveView


def test_drain_shows_last_progress_of_burst(qtbot, monkeypatch):
    view = LiveView()
    qtbot.addWidget(view)
    view.begin_run("sst2")
    displayed_steps = []
    monkeypatch.setattr(view.progress, "_show_progress", lambda event: displayed_steps.append(event.done))

    for done in range(1, 6):
        view.enqueue(Progress("training", done, 100, done * 0.1, None))
    view.end_run()

    assert displayed_steps == [5]


def test_drain_keeps_progress_before_phase_change(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.begin_run("sst2")

    view.enqueue(Progress("extracting minilm", 40, 50, 1.0, 0.2))
    view.enqueue(Progress("extracting minilm", 50, 50, 1.2, 0.0))
    view.enqueue(PhaseChanged("probing", "teacher confidence"))
    view.end_run()

    # The phase change came last, so the bar is empty and names the phase rather than stuck at 50 of 50.
    bar = view.progress.progress_bar
    assert (bar.value(), bar.maximum()) == (0, 1)
    assert bar.format() == "probing …"


def _step(step: int, samples_per_second: float) -> StepLogged:
    return StepLogged(step, 0.1, {"total": 1.0}, {}, 1e-3, samples_per_second, samples_per_second * 10, step * 0.1, 0.1)


def test_speed_label_waits_for_refresh(qtbot, monkeypatch):
    view = LiveView()
    qtbot.addWidget(view)
    view.begin_run("sst2")
    displayed_texts = []
    monkeypatch.setattr(view.progress.speed_label, "setText", displayed_texts.append)

    for step in range(1, 4):
        view.progress.handle(_step(step, 100.0 * step))
    assert displayed_texts == []

    view.progress.tick()
    assert displayed_texts == ["300.0 samples/s · 3,000 tokens/s"]
    view.progress.tick()
    assert len(displayed_texts) == 1
    view.end_run()


def test_progress_waits_for_refresh(qtbot, monkeypatch):
    view = LiveView()
    qtbot.addWidget(view)
    view.begin_run("sst2")
    bar = view.progress.progress_bar

    view.progress.handle(PhaseChanged("training", "", 1, 2))
    view.progress.handle(Progress("training", 10, 100, 1.0, 9.0))
    assert bar.format() == "starting …"  # the progress waits for the refresh

    view.progress.tick()
    assert (bar.value(), bar.maximum()) == (10, 100)
    assert view.progress.eta_label.text() == "ETA 0:09"

    displayed_steps = []
    show_progress = view.progress._show_progress

    def record_and_show(event: Progress) -> None:
        displayed_steps.append(event.done)
        show_progress(event)

    monkeypatch.setattr(view.progress, "_show_progress", record_and_show)
    view.progress.handle(Progress("training", 100, 100, 10.0, 0.0))
    view.progress.handle(PhaseChanged("evaluating", "dev"))
    # The final progress was shown, and then the phase change emptied the bar.
    assert displayed_steps == [100]
    assert (bar.value(), bar.maximum(), bar.format()) == (0, 1, "evaluating …")
    assert view.progress.eta_label.text() == ""

    view.progress.handle(PhaseChanged("training", "", 1, 2))
    # Back to training: the last training progress at once, not the evaluation's empty bar.
    assert (bar.value(), bar.maximum()) == (100, 100)
    view.end_run()


def test_progress_bar_never_busy(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.begin_run("sst2")

    for phase in ("loading data", "extracting", "probing", "training", "evaluating"):
        view.progress.handle(PhaseChanged(phase))
        view.progress.tick()
        # A maximum of 0 would make Qt draw its busy indicator, 60 repaints a second.
        assert view.progress.progress_bar.maximum() > 0, phase
    view.end_run()


def test_stored_losses_keep_logged_order(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.begin_run("sst2")
    steps, values = np.array([1, 2]), np.array([0.5, 0.4])
    # The store returns series sorted by name, which puts "total" last.
    stored = {name: (steps, values) for name in sorted(["train/loss_total", "train/loss_task", "train/loss_distillation", "train/loss_distillation/minilm"])}

    view.load_stored_curves(stored, up_to_step=2)
    view.end_run()

    assert view.loss_plot.series_names() == ["total", "task", "distillation", "distillation/minilm"]
    # One teacher: the weighted sum lies exactly on its loss, so it is drawn above it.
    curves = view.loss_plot._curves
    assert curves["distillation"].zValue() > curves["distillation/minilm"].zValue()


def test_few_heldout_rows_are_flagged(qtbot):
    from engine.events import RunPrepared

    view = LiveView()
    qtbot.addWidget(view)
    details = view.progress.details_label

    view.progress.handle(RunPrepared(1, 115_012, ("minilm",), (384,), {}, 228, 12, {"dev": 80}, 16, 8))
    assert "12 held out (few: the best checkpoint is chosen on them)" in details.text()
    assert "held-out fraction" in details.toolTip()

    view.progress.handle(RunPrepared(1, 115_012, ("minilm",), (384,), {}, 2280, 120, {"dev": 80}, 16, 8))
    assert "120 held out ·" in details.text()
    assert details.toolTip() == ""


def test_resumed_run_names_both_clocks(qtbot):
    from engine.events import RunFinished, RunStarted

    view = LiveView()
    qtbot.addWidget(view)
    progress = view.progress
    progress.begin()
    progress.handle(RunStarted(3, "resumed", {"task": "sst2"}, "CPU", resumed_from_step=48))
    progress.tick()
    assert progress.elapsed_label.text().startswith("elapsed in this session ")

    progress.handle(RunFinished(3, "finished", {}, {}, 60, 19.0))
    assert progress.phase_label.text() == "Finished after 0:19 in all sessions"


def test_ended_run_bar_names_steps_not_phase(qtbot):
    from engine.events import RunFinished

    view = LiveView()
    qtbot.addWidget(view)
    progress = view.progress
    progress.begin()
    progress.handle(Progress("training", 9, 9, 1.0, 0.0))
    progress.tick()
    assert progress.progress_bar.format() == "%v of %m (training)"

    progress.handle(RunFinished(1, "finished", {}, {}, 9, 3.0))
    assert progress.progress_bar.format() == "%v of %m steps"


def test_long_header_texts_keep_width(qtbot):
    from engine.events import RunPrepared, RunStarted

    view = LiveView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    width_before = view.minimumSizeHint().width()
    progress = view.progress
    progress.begin()

    progress.handle(RunStarted(7, "a long run name that says what was swept " * 3, {"task": "sst2"}, "CPU (AMD EPYC, 2 threads, bf16 autocast)"))
    progress.handle(RunPrepared(7, 110_916, ("minilm",), (384,), {}, 285, 15, {"dev": 80}, 9, 8))
    progress.handle(PhaseChanged("extracting", "sentence-transformers/all-MiniLM-L6-v2 " * 2, 1, 3))
    qtbot.wait(10)

    assert "few: the best checkpoint is chosen on them" in progress.details_label.text()
    assert view.minimumSizeHint().width() <= width_before


def test_stopping_names_steps_only_in_training(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    progress = view.progress
    progress.begin()

    progress.handle(PhaseChanged("extracting", "minilm", 1, 1))
    progress.show_stopping()
    assert progress.phase_label.text() == "Stopping …"

    progress.handle(PhaseChanged("training", "", 1, 2))
    progress.show_stopping()
    assert progress.phase_label.text() == "Stopping at the next step …"


def test_resume_names_its_run_while_starting(qtbot):
    view = LiveView()
    qtbot.addWidget(view)

    view.progress.begin(resume_of=4)
    assert view.progress.title_label.text() == "Resuming run #4 …"

    view.progress.begin()
    assert view.progress.title_label.text() == "Starting run …"
