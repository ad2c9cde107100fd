"""The live view's drain: a burst of queued events costs one progress repaint, in event order.

``end_run`` drains what is queued and stops the refresh timer that ``begin_run`` started.
"""

from engine.events import PhaseChanged, Progress
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

    # The phase change came last, so the bar is busy (no total) rather than stuck at 50 of 50.
    assert view.progress.progress_bar.maximum() == 0
