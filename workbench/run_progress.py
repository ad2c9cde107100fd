"""The live run's header: phase, progress bar, ETA, throughput and elapsed time.

Progress and step events come many times a second. The header only notes the latest of each and
shows it at the live view's next refresh, twice a second: ``QProgressBar.setValue`` repaints
at once, and a label whose text changes width makes the layout recompute. Per event, that cost
the GUI thread about 1% of a run (bench/gui_overhead.py). The other events are rare and are shown
at once, after what is pending, so the header never shows an older state after a newer one.

Phases without a known length (loading data, probing, evaluating) show an empty bar with the
phase as its text, not Qt's busy indicator. That indicator animates at 60 frames a second, and
each frame woke the GUI thread in the middle of the run's training steps.
"""

from __future__ import annotations

import time

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget

from engine.events import Event, PhaseChanged, Progress, RunFailed, RunFinished, RunPrepared, RunStarted, StepLogged
from workbench.formatting import format_count, format_duration


def describe_phase(event: PhaseChanged) -> str:
    """Return the phase as the header shows it, e.g. 'Extracting teacher 1 of 3 (gpt2)'."""
    if event.phase == "extracting":
        return f"Extracting teacher {event.index} of {event.total} ({event.detail})"
    if event.phase == "training" and event.total:
        return f"Training epoch {event.index} of {event.total}"
    if event.phase == "evaluating":
        return f"Evaluating ({event.detail})" if event.detail else "Evaluating"
    if event.phase == "probing":
        return "Fitting the teacher confidence probes"
    if event.phase == "loading data":
        return f"Loading data: {event.detail}" if event.detail else "Loading data"
    return f"{event.phase.capitalize()} {event.detail}".strip()


class RunProgress(QWidget):
    """Shows where the active run is. Owned by the GUI thread; fed events by the live view."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel("No run yet. Set up a run on the left and press Run.")
        self.title_label.setObjectName("runTitle")
        self.phase_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(False)
        self.eta_label = QLabel("")
        self.speed_label = QLabel("")
        self.elapsed_label = QLabel("")
        self.details_label = QLabel("")
        self.details_label.setObjectName("fieldHint")
        # Run names, device names and the run's sizes can be long. Wrapped, they never widen the window.
        for label in (self.title_label, self.phase_label, self.details_label):
            label.setWordWrap(True)

        layout = QGridLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.title_label, 0, 0, 1, 4)
        layout.addWidget(self.phase_label, 1, 0)
        layout.addWidget(self.progress_bar, 1, 1)
        layout.addWidget(self.eta_label, 1, 2)
        layout.addWidget(self.elapsed_label, 1, 3)
        layout.addWidget(self.details_label, 2, 0, 1, 2)
        layout.addWidget(self.speed_label, 2, 2, 1, 2)
        layout.setColumnStretch(1, 1)

        self._started_at: float | None = None
        self._running = False
        # A resumed run's duration counts its earlier sessions too, the elapsed clock this one only.
        self._resumed = False
        self._pending_progress: Progress | None = None
        self._pending_step: StepLogged | None = None
        self._training_progress: Progress | None = None
        self._phase = ""
        self._resume_of: int | None = None

    def begin(self, resume_of: int | None = None) -> None:
        """Show a run starting, or the resume of run ``resume_of``."""
        self._resume_of = resume_of
        self._started_at = time.monotonic()
        self._running = True
        self._resumed = False
        self._pending_progress = self._pending_step = self._training_progress = None
        self._phase = ""
        self.title_label.setText(f"Resuming run #{resume_of} …" if resume_of is not None else "Starting run …")
        self.phase_label.setText("Starting")
        self._show_phase_without_progress("starting")
        self.progress_bar.setTextVisible(True)
        for label in (self.eta_label, self.speed_label, self.details_label):
            label.setText("")
        self.tick()

    def tick(self) -> None:
        """Show the latest progress and speed and update the elapsed clock; called at each refresh of the live view."""
        self._show_pending()
        if self._running and self._started_at is not None:
            session = " in this session" if self._resumed else ""
            self.elapsed_label.setText(f"elapsed{session} {format_duration(time.monotonic() - self._started_at)}")

    def handle(self, event: Event) -> None:
        if isinstance(event, Progress):
            self._pending_progress = event
            return
        if isinstance(event, StepLogged):
            self._pending_step = event
            return
        if not isinstance(event, (RunStarted, RunPrepared, PhaseChanged, RunFinished, RunFailed)):
            return
        self._show_pending()
        if isinstance(event, RunStarted):
            self._resumed = event.resumed_from_step is not None
            resumed = f", resumed at step {event.resumed_from_step}" if self._resumed else ""
            self.title_label.setText(f"Run #{event.run_id}: {event.name} on {event.device}{resumed}")
        elif isinstance(event, RunPrepared):
            few = " (few: the best checkpoint is chosen on them)" if event.few_heldout_rows else ""
            self.details_label.setText(
                f"{format_count(event.parameter_count)} parameters · {event.train_rows:,} training rows · "
                f"{event.heldout_rows:,} held out{few} · {event.total_steps:,} steps"
            )
            self.details_label.setToolTip(
                "The held-out rows select the best checkpoint. With so few, that choice is noisy: raise the training rows "
                "or the held-out fraction (More data options)."
                if event.few_heldout_rows
                else ""
            )
        elif isinstance(event, PhaseChanged):
            self._phase = event.phase
            self.phase_label.setText(describe_phase(event))
            if event.phase != "training":
                self._show_phase_without_progress(event.phase)
                self.eta_label.setText("")
            elif self._training_progress is not None:
                # Back from an evaluation: the training progress so far, until the next step's.
                self._show_progress(self._training_progress)
        elif isinstance(event, RunFinished):
            sessions = " in all sessions" if self._resumed else ""
            self._end(f"{event.status.capitalize()} after {format_duration(event.duration_seconds)}{sessions}")
        elif isinstance(event, RunFailed):
            if event.run_id is not None:
                self._end("Failed")
            elif self._resume_of is not None:
                # Rejected before it was claimed, so the stored run kept its status.
                self.title_label.setText(f"Run #{self._resume_of} was not resumed; the stored run is unchanged.")
                self._end("Not resumed")
            else:
                self.title_label.setText("The run could not start; nothing was recorded.")
                self._end("Not started")

    def _show_pending(self) -> None:
        if self._pending_progress is not None:
            self._show_progress(self._pending_progress)
            self._pending_progress = None
        if self._pending_step is not None:
            step = self._pending_step
            self.speed_label.setText(f"{step.samples_per_second:,.1f} samples/s · {step.tokens_per_second:,.0f} tokens/s")
            self._pending_step = None

    def _show_phase_without_progress(self, phase: str) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"{phase} …")

    def _show_progress(self, event: Progress) -> None:
        if event.total <= 0:
            return
        if event.phase == "training":
            self._training_progress = event
        self.progress_bar.setRange(0, event.total)
        self.progress_bar.setValue(min(event.done, event.total))
        self.progress_bar.setFormat(f"%v of %m ({event.phase})")
        self.eta_label.setText(f"ETA {format_duration(event.eta_seconds)}" if event.eta_seconds is not None else "ETA …")

    def _end(self, text: str) -> None:
        self.tick()
        self._running = False
        self.phase_label.setText(text)
        self.eta_label.setText("")
        if self.progress_bar.format().endswith(" …"):
            self.progress_bar.setFormat("")
        elif self._training_progress is not None:
            # The bar keeps the steps reached; its phase is over.
            self.progress_bar.setFormat("%v of %m steps")

    def show_stopping(self) -> None:
        # A run stops between training steps, teacher batches or evaluation batches.
        self.phase_label.setText("Stopping at the next step …" if self._phase == "training" else "Stopping …")
