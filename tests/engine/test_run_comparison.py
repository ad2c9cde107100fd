"""Pooling repeated runs: groups of runs that differ only in the seed, and their means and spreads."""

from __future__ import annotations

import math

import pytest

from engine.config import RunConfig
from engine.run_comparison import PooledValue, comparison_notes, drop_seed_repeats, is_rerun_name, repeats_note, rerun_name, rerun_origin, environment_diff, format_config_value, group_label, pool, pooled_metric_rows, seed_groups
from engine.run_store import RunStore


def _record(store: RunStore, overrides: dict, best: dict[str, float]):
    run_id = store.create_run(RunConfig().with_overrides(overrides).to_dict(), name=str(overrides), device="cpu", versions={})
    store.finish_run(run_id, "finished", best_metrics=best, final_metrics=best, best_step=1)
    return store.get_run(run_id)


def test_groups_ignore_seed_name_and_probe(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    first = _record(store, {"training.seed": 1}, {"dev/accuracy": 0.5})
    softmax = _record(store, {"training.seed": 1, "student.mixer": "softmax"}, {"dev/accuracy": 0.6})
    second = _record(store, {"training.seed": 2, "name": "other", "training.attention_probe": "a different probe"}, {"dev/accuracy": 0.7})

    groups = seed_groups([first, softmax, second])

    assert [[record.id for record in group] for group in groups] == [[first.id, second.id], [softmax.id]]
    assert [group_label(group) for group in groups] == [f"#{first.id} (2 runs)", f"#{softmax.id}"]
    store.close()


def test_pool_mean_and_sample_deviation():
    pooled = pool([0.80, 0.82, None, math.nan, 0.84])

    assert pooled.mean == pytest.approx(0.82)
    assert pooled.std == pytest.approx(0.02)
    assert pooled.count == 3
    assert pooled.runs == 5
    assert pooled.format() == "0.8200 ± 0.0200 (3 of 5 runs)"


def test_pool_single_and_empty():
    assert pool([0.5]) == PooledValue(0.5, None, 1, 1)
    assert pool([0.5]).format() == "0.5000"
    assert pool([None, math.inf]) is None


def test_equal_values_format_without_spread():
    assert pool([0.5, 0.5, None]).format() == "0.5000 ± 0.0000 (2 of 3 runs)"
    assert pool([0.5, 0.5, None]).format_mean_if_equal() == "0.5000 (2 of 3 runs)"
    assert pool([0.5, 0.6]).format_mean_if_equal() == "0.5500 ± 0.0707"


def test_pooled_rows_per_group(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    records = [_record(store, {"training.seed": seed}, {"dev/accuracy": accuracy}) for seed, accuracy in ((1, 0.6), (2, 0.8))]
    lasts = [[{"dev/accuracy": 0.5, "dev/loss_task": 0.7}, {"dev/accuracy": 0.7}]]

    rows = pooled_metric_rows([records], lasts)

    assert [row.name for row in rows] == ["dev/accuracy", "dev/loss_task"]
    best, last = rows[0].values[0]
    assert best.mean == pytest.approx(0.7)
    assert last.mean == pytest.approx(0.6)
    assert rows[1].values[0] == (None, PooledValue(0.7, None, 1, 2))
    store.close()


def test_environment_diff_lists_device_and_versions(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    config = RunConfig().to_dict()
    ids = [
        store.create_run(config, name="a", device="CPU: x86_64 (2 threads), bf16 autocast", versions={"torch": "2.13.0", "numpy": "2.4"}),
        store.create_run(config, name="b", device="CPU: x86_64 (1 thread), bf16 autocast", versions={"torch": "2.14.1", "numpy": "2.4"}),
        store.create_run(config, name="c", device="CPU: x86_64 (2 threads), bf16 autocast", versions={"numpy": "2.4"}),
    ]
    records = [store.get_run(run_id) for run_id in ids]

    rows = dict(environment_diff(records))

    assert sorted(rows) == ["device", "versions.torch"]
    assert rows["device"][1] == "CPU: x86_64 (1 thread), bf16 autocast"
    assert rows["versions.torch"] == ["2.13.0", "2.14.1", "(not recorded)"]
    assert environment_diff([records[0], records[2]]) == [("versions.torch", ["2.13.0", "(not recorded)"])]
    store.close()


def test_switches_format_as_on_off():
    assert format_config_value(True) == "on"
    assert format_config_value(False) == "off"
    assert format_config_value(0) == "0"


def test_notes_on_weighting_and_padding(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    one_teacher = {"distillation.teachers": ("minilm",)}
    confidence = _record(store, one_teacher, {})
    uniform = _record(store, {**one_teacher, "distillation.weighting": "uniform"}, {})
    three_uniform = _record(store, {"distillation.weighting": "uniform"}, {})

    assert comparison_notes([confidence, uniform], {"distillation.weighting"}) == [
        "The teacher weighting differs, but every run has one teacher, whose weight is 1 in every mode, so it changes nothing."
    ]
    assert comparison_notes([confidence, three_uniform], {"distillation.weighting", "distillation.teachers"}) == []
    notes = comparison_notes([confidence, uniform], {"training.padding"})
    assert len(notes) == 1
    assert notes[0].startswith("The padding differs.")
    assert notes[0].endswith("compare several seeds of each.")
    store.close()


def test_typed_names_are_not_rerun_names():
    assert is_rerun_name("base (from #2: mixer softmax)")
    assert is_rerun_name("base (from #2 via #5: mixer softmax, seed 3)")
    assert is_rerun_name("base (from #2)")
    assert not is_rerun_name("paper baseline (from #2 idea)")
    assert not is_rerun_name("base (from #2 via the cluster)")


def test_note_on_total_loss_scale(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    records = [_record(store, {"distillation.alpha": alpha}, {}) for alpha in (0.3, 0.9)]

    notes = comparison_notes(records, {"distillation.alpha"})

    assert notes == ["alpha or the distillation loss differs, so the total-loss curves are not on one scale: compare the dev metrics."]
    store.close()


def test_repeats_are_left_out_and_named(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    first, second, repeat, again = (_record(store, {"training.seed": seed}, {}) for seed in (1, 2, 1, 2))

    groups, repeats = drop_seed_repeats(seed_groups([first, second, repeat, again]))

    assert [[record.id for record in group] for group in groups] == [[first.id, second.id]]
    assert [record.id for record in repeats] == [repeat.id, again.id]
    assert repeats_note(repeats).startswith(f"Runs #{repeat.id}, #{again.id} repeat the settings and seed of earlier runs")
    assert repeats_note(repeats[:1]).startswith(f"Run #{repeat.id} repeats the settings and seed of an earlier run")
    assert repeats_note([]) is None
    store.close()


def test_typed_from_part_has_no_origin(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    base = _record(store, {}, {})  # named after its overrides: "{}"
    typed_id = store.create_run(RunConfig().to_dict(), name=f"paper baseline (from #{base.id})", device="cpu", versions={})
    rerun_id = store.create_run(RunConfig().to_dict(), name=f"{base.name} (from #{base.id}: alpha 0.5)", device="cpu", versions={})

    assert rerun_origin(store, store.get_run(typed_id)) is None
    assert rerun_origin(store, store.get_run(rerun_id)).id == base.id
    typed = store.get_run(typed_id)
    assert rerun_name(typed, RunConfig().to_dict(), None) == f"paper baseline (from #{base.id}) (from #{typed_id})"
    store.close()
