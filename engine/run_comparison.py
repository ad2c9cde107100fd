"""Comparison of stored runs: the config keys that differ, and the metrics side by side.

The workbench's compare view and ``lampreia compare`` both build on these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.config import RunConfig, flatten_dict
from engine.errors import ConfigError
from engine.run_store import RunRecord
from engine.tasks import TASKS


class _Missing:
    """Value of a config key that a stored config does not contain."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """Flatten a stored config to {dotted path: value}, normalised through RunConfig when it still validates."""
    try:
        return RunConfig.from_dict(config).flatten()
    except ConfigError:
        # A config stored by an older schema is still shown, only without normalisation.
        return flatten_dict(config)


def config_diff(configs: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Return (dotted key, one value per config) for exactly the keys whose values differ.

    A key missing from a config counts as different, and its value is ``MISSING``.
    """
    flats = [flatten_config(config) for config in configs]
    keys: list[str] = []
    for flat in flats:
        keys.extend(key for key in flat if key not in keys)
    rows = []
    for key in keys:
        values = [flat.get(key, MISSING) for flat in flats]
        if any(value != values[0] for value in values[1:]):
            rows.append((key, values))
    return rows


def format_config_value(value: Any, key: str = "") -> str:
    """Format one flattened config value for a diff table (lists as comma lists, None as "(empty)").

    An empty ``name`` reads "(generated)": the run was named by the trainer, as its record shows.
    """
    if value is MISSING:
        return "(missing)"
    if key == "name" and value == "":
        return "(generated)"
    if value is None:
        return "(empty)"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_config_value(item) for item in value) or "(none)"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or "\n" in value or not value else value
    return str(value)


# Keys left out of a re-run's name: the name itself, and the probe sentence, which changes only
# which sentence the attention map shows, not the training.
UNNAMED_CHANGES = ("name", "training.attention_probe")


# The part of a re-run's name that ``rerun_name`` adds: " (from #3: alpha 0.7)".
RERUN_SUFFIX = re.compile(r" \(from #\d+[^()]*\)$")


def is_rerun_name(name: str) -> bool:
    """Return whether ``name`` ends with the "(from #…)" part that ``rerun_name`` adds."""
    return RERUN_SUFFIX.search(name) is not None


def rerun_name(source: RunRecord, config: dict[str, Any], shown_changes: int = 3) -> str:
    """Name a run trained from the settings of the stored run ``source``: its name, its id and what changed.

    E.g. "baseline (from #3: alpha 0.7, epochs 5)". A source that is itself a re-run gives up its
    own "(from #…)" part, so names do not nest.
    """
    base = RERUN_SUFFIX.sub("", source.name)
    before = RunConfig.from_dict(source.config).to_dict()  # with today's defaults, like ``config``
    changes = [(key.rsplit(".", 1)[-1], values[1]) for key, values in config_diff([before, config]) if key not in UNNAMED_CHANGES]
    change_list = ", ".join(f"{leaf} {format_config_value(value)}" for leaf, value in changes[:shown_changes])
    if len(changes) > shown_changes:
        change_list += f" and {len(changes) - shown_changes} more"
    return f"{base} (from #{source.id}: {change_list})" if change_list else f"{base} (from #{source.id})"


def primary_dev_metric(record: RunRecord) -> str | None:
    """Name of the dev metric that selects the best checkpoint of the run's task, e.g. ``dev/accuracy``."""
    task = TASKS.get(record.task)
    return task.primary_dev_metric if task else None


@dataclass(frozen=True)
class MetricRow:
    """One metric of the compared runs: (best, last evaluation) per run, None where a run lacks it."""

    name: str
    values: list[tuple[float | None, float | None]]


def metric_rows(records: list[RunRecord], last_metrics: list[dict[str, float]] | None = None) -> list[MetricRow]:
    """Return the metrics that any of the runs recorded, in name order, with each run's best and last value.

    ``last_metrics`` (one dict per run) replaces the runs' stored ``final_metrics``, for runs that
    ended without storing them.
    """
    lasts = last_metrics if last_metrics is not None else [record.final_metrics for record in records]
    names = sorted({name for record, last in zip(records, lasts) for name in (*record.best_metrics, *last)})
    return [MetricRow(name, [(record.best_metrics.get(name), last.get(name)) for record, last in zip(records, lasts)]) for name in names]
