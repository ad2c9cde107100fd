"""Domain exceptions whose text is shown to the user as it is.

Every exception here carries the failed value in its message and, in ``hint``, what the user can
do about it. The GUI and the CLI print ``str(error)``, which joins the two.
"""

from __future__ import annotations


class LampreiaError(Exception):
    """Base class for errors that the user can act on."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class ConfigError(LampreiaError, ValueError):
    """An invalid run configuration value; ``field`` is its dotted path, e.g. ``student.n_heads``."""

    def __init__(self, field: str, message: str, hint: str = "") -> None:
        super().__init__(f"{field}: {message}", hint)
        self.field = field
        self.reason = message


class DataError(LampreiaError):
    """A GLUE split that is missing, unreadable or malformed."""


class MalformedRowsError(DataError):
    """One or more TSV rows that cannot be parsed; ``rows`` lists (path, line, reason)."""

    def __init__(self, path: str, rows: list[tuple[int, str]], hint: str = "") -> None:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in rows[:10])
        more = f" (and {len(rows) - 10} more)" if len(rows) > 10 else ""
        noun = "row" if len(rows) == 1 else "rows"
        super().__init__(f"{len(rows)} malformed {noun} in {path}: {shown}{more}.", hint)
        self.path = path
        self.rows = rows


class HubUnreachableError(LampreiaError):
    """The Hugging Face Hub cannot be reached and nothing usable is cached locally."""


class TeacherLoadError(LampreiaError):
    """A teacher model or tokenizer that cannot be found or loaded."""


class RemoteCodeRefusedError(TeacherLoadError):
    """A model that needs its own Python code while trust_remote_code is off."""


class StoreError(LampreiaError):
    """The run database cannot be opened, read or written."""


class CheckpointError(LampreiaError):
    """A checkpoint that is missing, truncated, corrupted or does not fit the config."""


class TrainingDivergedError(LampreiaError):
    """A loss term became NaN or infinite."""

    def __init__(self, step: int, term: str, value: float) -> None:
        super().__init__(
            f"Training diverged at step {step}: the {term} loss is {value}.",
            "Lower the learning rate (training.learning_rate), keep gradient clipping on, "
            "or check the teacher embeddings for non-finite values.",
        )
        self.step = step
        self.term = term
        self.value = value


class OutOfMemoryError(LampreiaError):
    """The device or the host ran out of memory."""


class RunCancelled(Exception):
    """Raised inside the trainer when the user cancels; not an error."""
