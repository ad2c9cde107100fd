"""Events that the trainer sends to its sink, and the cancellation token it polls.

Events are plain frozen dataclasses holding only built-in types and NumPy arrays, so that a GUI
can carry them across threads in a Qt signal and a CLI can print them, without either side
touching torch objects. The trainer calls the sink from its own thread; a sink must return
quickly and must not raise.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from engine.errors import RunCancelled


@dataclass(frozen=True)
class RunStarted:
    """The run row exists in the store; sent once, before any data is loaded."""

    run_id: int
    name: str
    config: dict[str, Any]
    device: str
    resumed_from_step: int | None = None


# Below this many held-out rows, one row is more than 2% of the rows that pick the best checkpoint
# (2 points of accuracy), so that choice is mostly noise.
FEW_HELDOUT_ROWS = 50


@dataclass(frozen=True)
class RunPrepared:
    """Data, teachers and student are ready; training is about to start."""

    run_id: int
    parameter_count: int
    teacher_names: tuple[str, ...]
    teacher_dims: tuple[int, ...]
    baseline: dict[str, float]
    train_rows: int
    heldout_rows: int
    dev_rows: dict[str, int]
    total_steps: int
    steps_per_epoch: int

    @property
    def few_heldout_rows(self) -> bool:
        """Whether the best checkpoint is chosen on fewer than FEW_HELDOUT_ROWS rows."""
        return self.heldout_rows < FEW_HELDOUT_ROWS


@dataclass(frozen=True)
class PhaseChanged:
    """A new phase began: ``loading data``, ``extracting``, ``probing``, ``training``, ``evaluating``.

    ``index``/``total`` count items inside the phase (teacher k of K, epoch e of E) where that applies.
    """

    phase: str
    detail: str = ""
    index: int = 0
    total: int = 0


@dataclass(frozen=True)
class Progress:
    """Work done in the current phase; ``eta_seconds`` is None while unknown."""

    phase: str
    done: int
    total: int
    elapsed_seconds: float
    eta_seconds: float | None


@dataclass(frozen=True)
class StepLogged:
    """Losses, teacher weights and speed of one logged optimiser step."""

    step: int
    epoch: float
    losses: dict[str, float]
    teacher_weights: dict[str, float]
    learning_rate: float
    samples_per_second: float
    tokens_per_second: float
    elapsed_seconds: float
    window_seconds: float = 0.0  # training time covered by this event's speeds (evaluations excluded)


@dataclass(frozen=True)
class EvaluationLogged:
    """Metrics of one evaluation, keyed like ``heldout/accuracy`` and ``dev/accuracy``."""

    step: int
    epoch: float
    metrics: dict[str, float]
    is_best: bool


@dataclass(frozen=True)
class AttentionCaptured:
    """Token-mixing matrices of the probe sentence: ``maps`` has shape (layers, heads, T, T)."""

    step: int
    tokens: tuple[str, ...]
    maps: np.ndarray = field(compare=False)
    mixer: str = ""


@dataclass(frozen=True)
class RunFinished:
    """The run ended as ``finished`` or ``cancelled``; metrics are those of the best checkpoint."""

    run_id: int
    status: str
    best_metrics: dict[str, float]
    final_metrics: dict[str, float]
    best_step: int | None
    duration_seconds: float  # active seconds over all of the run's sessions, as the store counts them


@dataclass(frozen=True)
class RunFailed:
    """The run ended with an error; ``message`` names the value and the fix."""

    run_id: int | None
    message: str
    error_type: str


Event = Union[
    RunStarted, RunPrepared, PhaseChanged, Progress, StepLogged, EvaluationLogged, AttentionCaptured, RunFinished, RunFailed
]
EventSink = Callable[[Event], None]


def discard_events(event: Event) -> None:
    """Event sink that drops everything; the default for scripts and tests."""


class CancellationToken:
    """Flag that a controller thread sets and the trainer polls between steps.

    Thread-safe: ``cancel`` may be called from any thread, any number of times.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise RunCancelled()
