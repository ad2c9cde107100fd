"""Comparison of stored runs: the config keys that differ, and the metrics side by side.

The workbench's compare view and ``lampreia compare`` both build on these functions.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from typing import Any

from engine.config import RunConfig, flatten_dict
from engine.errors import ConfigError, StoreError
from engine.run_store import RunRecord, RunStore
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


def environment_diff(records: list[RunRecord]) -> list[tuple[str, list[str]]]:
    """Return ("device" or "versions.<package>", one value per run) for the parts of the runs' environment that differ.

    The device includes the CPU thread count and the precision. The same settings and seed can
    give other numbers on another device or with other library versions. A package that a run
    did not record reads "(not recorded)".
    """
    rows = []
    devices = [record.device for record in records]
    if len(set(devices)) > 1:
        rows.append(("device", devices))
    packages: list[str] = []
    for record in records:
        packages.extend(name for name in record.versions if name not in packages)
    for package in packages:
        versions = [str(record.versions.get(package, "(not recorded)")) for record in records]
        if len(set(versions)) > 1:
            rows.append((f"versions.{package}", versions))
    return rows


def comparison_notes(records: list[RunRecord], differing_keys: set[str]) -> list[str]:
    """Return notes on config differences whose effect is smaller than it seems, or mixed with random draws."""
    notes = []
    weighting_keys = {"distillation.weighting", "distillation.fixed_weights", "distillation.temperature", "distillation.probe_folds"}
    teacher_counts = {len(record.config.get("distillation", {}).get("teachers", ())) for record in records}
    if differing_keys & weighting_keys and teacher_counts == {1}:
        notes.append("The teacher weighting differs, but every run has one teacher, whose weight is 1 in every mode, so it changes nothing.")
    if differing_keys & {"distillation.alpha", "distillation.distill_loss"}:
        notes.append(
            "alpha or the distillation loss differs, so the total-loss curves are not on one scale: compare the dev metrics."
        )
    if "training.padding" in differing_keys:
        notes.append(
            "The padding differs. It changes the padded lengths, and with them the random draws of dropout and "
            "augmentation, so a difference between single seeds can be seed noise: compare several seeds of each."
        )
    return notes


def format_config_value(value: Any, key: str = "") -> str:
    """Format one flattened config value for a diff table (lists as comma lists, None as "(empty)", booleans as on or off).

    An empty ``name`` reads "(generated)": the run was named by the trainer, as its record shows.
    """
    if value is MISSING:
        return "(missing)"
    if key == "name" and value == "":
        return "(generated)"
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        # As the command line writes switches (--amp on), not as Python does.
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_config_value(item) for item in value) or "(none)"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or "\n" in value or not value else value
    return str(value)


# Keys left out of a re-run's name: the name itself, and the probe sentence, which changes only
# which sentence the attention map shows, not the training.
UNNAMED_CHANGES = ("name", "training.attention_probe")


# The part of a re-run's name that ``rerun_name`` adds: " (from #3: alpha 0.7)" or " (from #3 via #8: …)".
# The first number is the run whose settings the listed changes start from.
RERUN_SUFFIX = re.compile(r" \(from #(\d+)(?: via #\d+)?(?:: [^()]*)?\)$")


def is_rerun_name(name: str) -> bool:
    """Return whether ``name`` ends with the "(from #…)" part that ``rerun_name`` adds."""
    return RERUN_SUFFIX.search(name) is not None


def rerun_origin(store: RunStore, source: RunRecord) -> RunRecord | None:
    """Return the run that the re-run name of ``source`` starts from ("#3" in "… (from #3: …)"), if it is stored.

    None when ``source`` is not named as a re-run, when its origin was deleted, or when the origin's
    name starts otherwise: then the "(from #…)" part was typed, or the origin renamed since.
    """
    match = RERUN_SUFFIX.search(source.name)
    if match is None or int(match.group(1)) == source.id:
        return None
    try:
        origin = store.get_run(int(match.group(1)))
    except StoreError:
        return None
    if RERUN_SUFFIX.sub("", origin.name) != RERUN_SUFFIX.sub("", source.name):
        return None
    return origin


def rerun_name(source: RunRecord, config: dict[str, Any], origin: RunRecord | None = None, shown_changes: int = 3) -> str:
    """Name a run trained from the settings of the stored run ``source``: its name, its id and what changed.

    E.g. "baseline (from #3: alpha 0.7, epochs 5)". When ``source`` is itself a re-run, its name's
    changes start from ``origin`` (``rerun_origin``): the new name lists every change from
    ``origin`` and names ``source`` after "via", e.g. "baseline (from #3 via #8: alpha 0.7, seed 2)",
    so that names neither nest nor lose the source's own changes. A re-run source without its
    origin (deleted) keeps its whole name, "(from …)" part included.
    """
    reference, base, via = source, source.name, ""
    match = RERUN_SUFFIX.search(source.name)
    if match is not None and origin is not None and origin.id == int(match.group(1)):
        reference, base, via = origin, RERUN_SUFFIX.sub("", source.name), f" via #{source.id}"
    before = RunConfig.from_dict(reference.config).to_dict()  # with today's defaults, like ``config``
    changes = [(key.rsplit(".", 1)[-1], values[1]) for key, values in config_diff([before, config]) if key not in UNNAMED_CHANGES]
    change_list = ", ".join(f"{leaf} {format_config_value(value)}" for leaf, value in changes[:shown_changes])
    if len(changes) > shown_changes:
        change_list += f" and {len(changes) - shown_changes} more"
    origin_ids = f"#{reference.id}{via}"
    return f"{base} (from {origin_ids}: {change_list})" if change_list else f"{base} (from {origin_ids})"


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


# Keys in which repeats of one setting may differ: the seed, and the keys that change no training.
REPEAT_KEYS = ("training.seed", *UNNAMED_CHANGES)


def seed_groups(records: list[RunRecord]) -> list[list[RunRecord]]:
    """Group runs whose settings differ only in the seed (or the name or probe), in the order given.

    Each group keeps its runs in the order given. A run with settings of its own is a group of one.
    """
    groups: dict[tuple[tuple[str, str], ...], list[RunRecord]] = {}
    for record in records:
        flat = flatten_config(record.config)
        key = tuple(sorted((name, repr(value)) for name, value in flat.items() if name not in REPEAT_KEYS))
        groups.setdefault(key, []).append(record)
    return list(groups.values())


def run_seed(record: RunRecord) -> Any:
    """Return the seed in the run's stored config, or ``MISSING``."""
    return record.config.get("training", {}).get("seed", MISSING)


def drop_seed_repeats(groups: list[list[RunRecord]]) -> tuple[list[list[RunRecord]], list[RunRecord]]:
    """Keep the first run of each seed in each group, and return the groups and the runs left out.

    A run with the settings and the seed of an earlier run repeats it (on the same CPU to the last
    digit), so pooling it would shrink the spread without adding a seed.
    """
    kept_groups, repeats = [], []
    for group in groups:
        seen: set[str] = set()
        first_of_each_seed = []
        for record in group:
            seed = repr(run_seed(record))
            if seed in seen:
                repeats.append(record)
            else:
                seen.add(seed)
                first_of_each_seed.append(record)
        kept_groups.append(first_of_each_seed)
    return kept_groups, repeats


def repeats_note(repeats: list[RunRecord]) -> str | None:
    """Return the note that names the runs ``drop_seed_repeats`` left out, or None."""
    if not repeats:
        return None
    if len(repeats) == 1:
        return (
            f"Run #{repeats[0].id} repeats the settings and seed of an earlier run, so it is left out of the pooled "
            "values: a repeat adds no seed spread."
        )
    ids = ", ".join(f"#{record.id}" for record in repeats)
    return f"Runs {ids} repeat the settings and seed of earlier runs, so they are left out of the pooled values: a repeat adds no seed spread."


def group_label(group: list[RunRecord]) -> str:
    """Name a group of repeated runs by its first run id and its size, e.g. "#4 (3 runs)"."""
    return f"#{group[0].id}" if len(group) == 1 else f"#{group[0].id} ({len(group)} runs)"


@dataclass(frozen=True)
class PooledValue:
    """Mean and sample standard deviation of one metric over the runs of a group that recorded it."""

    mean: float
    std: float | None  # None for fewer than two values
    count: int  # runs that recorded the metric
    runs: int  # runs in the group

    def format(self, digits: int = 4) -> str:
        """Format as "0.6430 ± 0.0120", with "(2 of 3 runs)" when some runs lack the metric."""
        text = f"{self.mean:.{digits}f}" if self.std is None else f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        if self.count < self.runs:
            text += f" ({self.count} of {self.runs} runs)"
        return text

    def format_mean_if_equal(self, digits: int = 4) -> str:
        """Format like ``format``, but without the spread when all values are equal (a baseline of one training set)."""
        if self.std:
            return self.format(digits)
        return PooledValue(self.mean, None, self.count, self.runs).format(digits)


def pool(values: list[float | None]) -> PooledValue | None:
    """Return the mean and sample standard deviation of the finite values, or None when there is none."""
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return None
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return PooledValue(statistics.fmean(finite), std, len(finite), len(values))


@dataclass(frozen=True)
class PooledMetricRow:
    """One metric over groups of repeated runs: (best, last evaluation) pooled per group, None where no run has it."""

    name: str
    values: list[tuple[PooledValue | None, PooledValue | None]]


def pooled_baselines(groups: list[list[RunRecord]]) -> dict[str, list[PooledValue | None]]:
    """Return {baseline metric: the pooled baseline of each group}; the seed's held-out split can change a baseline."""
    names = sorted({name for group in groups for record in group for name in record.baseline})
    return {name: [pool([record.baseline.get(name) for record in group]) for group in groups] for name in names}


# Columns of ``comparison_csv``'s fixed part, which the settings columns do not repeat.
CSV_FIXED_KEYS = ("name", "task", "training.seed")


def _csv_value(value: Any) -> Any:
    """Return a value as a CSV cell: lists joined by commas, a missing key or None empty."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return value


def comparison_csv(records: list[RunRecord], lasts: list[dict[str, float]]) -> tuple[list[str], list[list[Any]]]:
    """Return the header and rows of a comparison as CSV: one row per run, settings that differ and metrics as columns.

    ``lasts`` gives each run's last-evaluation metrics.
    """
    differences = [(key, values) for key, values in config_diff([record.config for record in records]) if key not in CSV_FIXED_KEYS]
    metrics = metric_rows(records, lasts)
    baseline_names = sorted({name for record in records for name in record.baseline})
    header = ["run_id", "name", "status", "task", "seed", "parameters", "best_step", *(key for key, _ in differences)]
    header += [f"best:{row.name}" for row in metrics] + [f"last:{row.name}" for row in metrics] + [f"baseline:{name}" for name in baseline_names]
    rows = []
    for index, record in enumerate(records):
        row = [record.id, record.name, record.status, record.task, _csv_value(run_seed(record)), _csv_value(record.parameter_count), _csv_value(record.best_step)]
        row += [_csv_value(values[index]) for _, values in differences]
        row += [_csv_value(metric.values[index][0]) for metric in metrics] + [_csv_value(metric.values[index][1]) for metric in metrics]
        row += [_csv_value(record.baseline.get(name)) for name in baseline_names]
        rows.append(row)
    return header, rows


def pooled_csv(groups: list[list[RunRecord]], lasts: list[list[dict[str, float]]]) -> tuple[list[str], list[list[Any]]]:
    """Return the header and rows of a pooled comparison as CSV: one row per group of runs that differ only in the seed.

    Each metric has a mean, a sample standard deviation (empty for one value) and a count column.
    ``lasts`` gives, per group, each run's last-evaluation metrics.
    """
    differences = [(key, values) for key, values in config_diff([group[0].config for group in groups]) if key not in (*REPEAT_KEYS, *CSV_FIXED_KEYS)]
    metrics = pooled_metric_rows(groups, lasts)
    baselines = pooled_baselines(groups)
    header = ["run_ids", "seeds", "runs", "task", *(key for key, _ in differences)]
    for kind in ("best", "last"):
        for row in metrics:
            header += [f"{kind}:{row.name}:mean", f"{kind}:{row.name}:std", f"{kind}:{row.name}:count"]
    for name in baselines:
        header += [f"baseline:{name}:mean", f"baseline:{name}:std"]
    rows = []
    for index, group in enumerate(groups):
        row = [",".join(str(record.id) for record in group), ",".join(str(_csv_value(run_seed(record))) for record in group), len(group), group[0].task]
        row += [_csv_value(values[index]) for _, values in differences]
        for kind in (0, 1):
            for metric in metrics:
                value = metric.values[index][kind]
                row += ["", "", 0] if value is None else [value.mean, _csv_value(value.std), value.count]
        for values in baselines.values():
            value = values[index]
            row += ["", ""] if value is None else [value.mean, _csv_value(value.std)]
        rows.append(row)
    return header, rows


def pooled_metric_rows(groups: list[list[RunRecord]], last_metrics: list[list[dict[str, float]]]) -> list[PooledMetricRow]:
    """Return each metric that a run recorded, with its best and last values pooled per group.

    ``last_metrics`` gives, per group, one dict of last-evaluation metrics per run.
    """
    names = sorted({name for group, lasts in zip(groups, last_metrics) for record, last in zip(group, lasts) for name in (*record.best_metrics, *last)})
    rows = []
    for name in names:
        values = []
        for group, lasts in zip(groups, last_metrics):
            best = pool([record.best_metrics.get(name) for record in group])
            last = pool([metrics.get(name) for metrics in lasts])
            values.append((best, last))
        rows.append(PooledMetricRow(name, values))
    return rows
