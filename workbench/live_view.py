"""The live-training area: the run's progress header and tabs of plots fed by its events.

Events arrive on the GUI thread in queued batches and are only appended to a queue here. A 500 ms
timer drains the queue and redraws each changed curve once, so a run that logs hundreds of steps a
second costs two redraws a second. Plot items are created once and then only given new data.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from engine.events import AttentionCaptured, Event, EvaluationLogged, RunPrepared, StepLogged
from engine.tasks import TASKS, baseline_name
from workbench.attention_view import AttentionView
from workbench.curve_plot import CurvePlot
from workbench.plot_style import curve_pen
from workbench.run_progress import RunProgress

log = logging.getLogger(__name__)

# Two redraws a second still show a run's progress, and GUI-thread work takes a core from torch's
# threads on a small CPU. In 8 paired runs of bench/gui_overhead.py (working/sleeping turns),
# 500 ms redraws with 250 ms event batches beat 250 ms with 100 ms in 6 runs, tied in 1 and lost 1.
# With these intervals a small student on a 2-core CPU trained at 0.95-1.02 of its speed with the
# GUI asleep, over three long runs (docs/benchmarks.md, figure 6).
REFRESH_INTERVAL_MS = 500
BASELINE_PREFIX = "baseline:"
LOSS_PREFIX = "train/loss_"
WEIGHT_PREFIX = "train/weight/"


def is_plotted_metric(name: str) -> bool:
    """Dev-split scores are plotted; held-out scores and task losses are in the store and the tables."""
    return not name.startswith("heldout/") and not name.endswith("/loss_task")


def metric_label(name: str) -> str:
    split, _, metric = name.partition("/")
    return f"{split.replace('_', ' ')} {metric.replace('_', ' ')}"


class LiveView(QWidget):
    """Progress header plus loss, metric, teacher-weight and attention tabs. Owned by the GUI thread."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Event] = deque()
        self._teacher_order: list[str] = []
        self._metric_order: list[str] = []
        self._regression = False
        self._task = ""  # the GLUE task of the run shown, which names its baseline

        self.progress = RunProgress()
        self.loss_plot = CurvePlot("Training losses", "loss", style=self._loss_style, smoothing_control=True)
        # With one teacher the weighted sum equals that teacher's loss; dashed and on top, both show.
        self.loss_plot.on_top.add("distillation")
        self.metric_plot = CurvePlot("Dev metrics", "score", style=self._metric_style, legend_corner="bottom right")
        self.weight_plot = CurvePlot("Teacher weights (batch mean)", "weight", style=self._weight_style, smoothing_control=True)
        self.attention_view = AttentionView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.loss_plot, "Losses")
        self.tabs.addTab(self.metric_plot, "Dev metrics")
        self.tabs.addTab(self.weight_plot, "Teacher weights")
        self.tabs.addTab(self.attention_view, "Attention map")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress)
        layout.addWidget(self.tabs, 1)

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setObjectName("workbench.live-refresh")
        self.refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self.refresh_timer.timeout.connect(self.drain)

    # Curve styles: one colour per teacher and per metric, stable for the whole run

    def _teacher_index(self, teacher: str) -> int:
        if teacher not in self._teacher_order:
            self._teacher_order.append(teacher)
        return self._teacher_order.index(teacher)

    def _loss_style(self, name: str):
        if name == "total":
            return "total", curve_pen(0)
        if name == "task":
            return ("task (MSE)" if self._regression else "task (cross-entropy)"), curve_pen(1)
        if name == "distillation":
            return "distillation (weighted sum)", curve_pen(2, dashed=True)
        teacher = name.removeprefix("distillation/")
        return f"distillation: {teacher}", curve_pen(3 + self._teacher_index(teacher))

    def _weight_style(self, name: str):
        return name, curve_pen(3 + self._teacher_index(name))

    def _metric_style(self, name: str):
        metric = name.removeprefix(BASELINE_PREFIX)
        if metric not in self._metric_order:
            self._metric_order.append(metric)
        index = self._metric_order.index(metric)
        if name.startswith(BASELINE_PREFIX):
            return f"{baseline_name(self._task)} ({metric_label(metric)})", curve_pen(index, dashed=True)
        return metric_label(metric), curve_pen(index)

    # Run lifecycle

    def begin_run(self, task: str, resume_of: int | None = None) -> None:
        """Clear the plots for a new run of ``task``, or a resume of run ``resume_of``, and start draining events."""
        self._queue.clear()
        self._teacher_order.clear()
        self._metric_order.clear()
        glue_task = TASKS.get(task)
        self._regression = bool(glue_task and glue_task.is_regression)
        self._task = task
        for plot in (self.loss_plot, self.metric_plot, self.weight_plot):
            plot.clear()
        # The previous run's map would otherwise stand for this run's until its first evaluation.
        self.attention_view.clear()
        self.attention_view.set_run_probe(None)
        title = glue_task.title if glue_task else task
        self.metric_plot.plot_item.setTitle(f"Dev metrics ({title})")
        self.progress.begin(resume_of)
        self.refresh_timer.start()

    def end_run(self) -> None:
        """Draw what is still queued and stop the timer; the curves stay on screen."""
        self.drain()
        self.refresh_timer.stop()

    @Slot(object)
    def enqueue(self, event: Event) -> None:
        self._queue.append(event)

    @Slot(object)
    def enqueue_all(self, events: list[Event]) -> None:
        self._queue.extend(events)

    @Slot()
    def drain(self) -> None:
        latest_attention: AttentionCaptured | None = None
        while self._queue:
            event = self._queue.popleft()
            self.progress.handle(event)
            if isinstance(event, StepLogged):
                self._add_step(event)
            elif isinstance(event, EvaluationLogged):
                self._add_evaluation(event)
            elif isinstance(event, RunPrepared):
                self._add_baselines(event)
            elif isinstance(event, AttentionCaptured):
                latest_attention = event
        for plot in (self.loss_plot, self.metric_plot, self.weight_plot):
            plot.refresh()
        if latest_attention is not None:
            mixer = f"{latest_attention.mixer} mixer" if latest_attention.mixer else ""
            self.attention_view.show_snapshot(latest_attention.step, latest_attention.tokens, latest_attention.maps, mixer)
        self.progress.tick()

    def _add_step(self, event: StepLogged) -> None:
        for name, value in event.losses.items():
            self.loss_plot.append(name, event.step, value)
        for teacher, weight in event.teacher_weights.items():
            self.weight_plot.append(teacher, event.step, weight)

    def _add_evaluation(self, event: EvaluationLogged) -> None:
        for name, value in event.metrics.items():
            if is_plotted_metric(name):
                self.metric_plot.append(name, event.step, value)

    def _add_baselines(self, event: RunPrepared) -> None:
        for plot in (self.loss_plot, self.metric_plot, self.weight_plot):
            plot.set_step_range(event.total_steps)
        for teacher in event.teacher_names:
            self._teacher_index(teacher)
        for name, value in event.baseline.items():
            if is_plotted_metric(name):
                self.metric_plot.set_series(BASELINE_PREFIX + name, [0, max(event.total_steps, 1)], [value, value])

    def load_stored_curves(self, series: dict[str, tuple[np.ndarray, np.ndarray]], up_to_step: int | None) -> None:
        """Draw a stored run's curves up to ``up_to_step`` (a resumed run replays the steps after it)."""
        # The store returns series by name. The losses are created in the order a running run logs
        # them (total, task, distillation, then per teacher), so the legend reads the same after a resume.
        logged_first = [LOSS_PREFIX + part for part in ("total", "task", "distillation")]
        ordered = sorted(series, key=lambda name: logged_first.index(name) if name in logged_first else len(logged_first))
        for name in ordered:
            steps, values = series[name]
            keep = steps <= up_to_step if up_to_step is not None else np.zeros(len(steps), dtype=bool)
            if name.startswith(WEIGHT_PREFIX):
                plot, series_name = self.weight_plot, name.removeprefix(WEIGHT_PREFIX)
            elif name.startswith(LOSS_PREFIX):
                plot, series_name = self.loss_plot, name.removeprefix(LOSS_PREFIX)
            elif not name.startswith("train/") and is_plotted_metric(name):
                plot, series_name = self.metric_plot, name
            else:
                continue
            plot.set_series(series_name, steps[keep], values[keep])
        for plot in (self.loss_plot, self.metric_plot, self.weight_plot):
            plot.refresh()

    @property
    def is_refreshing(self) -> bool:
        return self.refresh_timer.isActive()
