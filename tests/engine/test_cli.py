"""The lampreia command line: run, runs, show, export, and one-line errors with non-zero exits."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import _cancelled_hint, _clip, _clip_middle, _columns, build_config, build_parser, main
from engine.run_store import RunStore


def _run_args(glue_dir, db, *extra):
    return [
        "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm", "--tokenizer", "minilm",
        "--train-limit", "160", "--dev-limit", "80", "--epochs", "1", "--d-model", "32", "--layers", "1",
        "--heads", "4", "--max-seq-len", "48", "--db", str(db), "--quiet", *extra,
    ]


def test_run_then_list_show_and_export(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"

    assert main(_run_args(glue_dir, db, "--name", "cli smoke")) == 0
    output = capsys.readouterr().out
    assert "Run 1 (cli smoke) finished." in output
    assert "dev/accuracy" in output and "majority baseline" in output
    assert "The majority baseline predicts the most frequent training label for every row." in output

    assert main(["runs", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "finished" in table and "minilm" in table and "d32×1L×4H" in table
    assert "cli smoke" in table

    assert main(["runs", "--json", "--db", str(db)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["status"] == "finished"
    assert listed[0]["config"]["student"]["d_model"] == 32

    assert main(["show", "1", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "status      finished" in shown and '"task": "sst2"' in shown

    target = tmp_path / "metrics.csv"
    assert main(["export", "1", "--csv", str(target), "--db", str(db)]) == 0
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"train/loss_total", "dev/accuracy"} <= {row["name"] for row in rows}
    assert all(row["run_id"] == "1" for row in rows)


def test_export_keeps_existing_file_unless_forced(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db)) == 0
    target = tmp_path / "metrics.csv"
    target.write_text("my notes\n")
    capsys.readouterr()

    assert main(["export", "1", "--csv", str(target), "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert "already exists" in error
    assert "--force" in error
    assert target.read_text() == "my notes\n"

    assert main(["export", "1", "--csv", str(target), "--db", str(db), "--force"]) == 0
    assert target.read_text().startswith("run_id,step,epoch,name,value,wall_time")
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == []


def test_export_targets_folders_and_stdout(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db)) == 0
    capsys.readouterr()

    assert main(["export", "1", "--csv", str(tmp_path), "--db", str(db), "--force"]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path} is a folder." in error
    assert f"Give a file name, such as {tmp_path / 'run-1-metrics.csv'}." in error

    missing = tmp_path / "missing" / "metrics.csv"
    assert main(["export", "1", "--csv", str(missing), "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert f"The folder {missing.parent} does not exist." in error
    assert "left as it was" not in error

    assert main(["export", "1", "--csv", "-", "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "\r" not in printed  # standard output adds the platform's own line ending
    rows = list(csv.DictReader(printed.splitlines()))
    assert rows[0].keys() == {"run_id", "step", "epoch", "name", "value", "wall_time"}
    assert {"train/loss_total", "dev/accuracy"} <= {row["name"] for row in rows}
    assert not (Path.cwd() / "-").exists()


def test_forced_export_keeps_mode_and_link(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db)) == 0
    target = tmp_path / "shared" / "metrics.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o664)
    link = tmp_path / "latest.csv"
    link.symlink_to(target)

    assert main(["export", "1", "--csv", str(link), "--db", str(db), "--force"]) == 0

    assert link.is_symlink()
    assert target.read_text().startswith("run_id,")
    assert target.stat().st_mode & 0o777 == 0o664


def test_rerun_from_stored_config(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db)) == 0

    assert main(["run", "--from-run", "1", "--seed", "7", "--db", str(db), "--quiet"]) == 0

    capsys.readouterr()
    assert main(["runs", "--json", "--db", str(db)]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["config"]["training"]["seed"] for r in runs] == [7, 42]
    assert runs[0]["config"]["student"]["d_model"] == 32
    assert runs[0]["name"] == f"{runs[1]['name']} (from #1: seed 7)"


def test_runs_long_names_on_wide_terminal(tmp_path, monkeypatch, capsys):
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    name = "baseline (from #3: learning_rate 0.001, alpha 0.5)"
    store.create_run({"task": "sst2"}, name=name, device="cpu", versions={})
    store.close()

    monkeypatch.setenv("COLUMNS", "250")
    assert main(["runs", "--db", str(db)]) == 0
    wide = capsys.readouterr().out
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["runs", "--db", str(db)]) == 0
    narrow = capsys.readouterr().out

    assert name in wide
    row = narrow.splitlines()[1]
    assert "baseline (…" in row  # the start and the end of the name
    assert "…01, alpha 0.5)" in row or "….001, alpha 0.5)" in row


def test_rerun_names_say_what_changed_without_nesting(tmp_path):
    from engine.config import RunConfig
    from engine.run_comparison import rerun_name, rerun_origin

    store = RunStore(tmp_path / "runs.sqlite3")
    source = RunConfig.from_dict({"task": "sst2", "name": "baseline"})
    first = store.create_run(source.to_dict(), name="baseline", device="cpu", versions={})
    changed = source.with_overrides({"distillation.alpha": 0.5, "training.epochs": 7, "training.seed": 1, "student.mixer": "softmax"})
    second = store.create_run(changed.to_dict(), name=rerun_name(store.get_run(first), changed.to_dict()), device="cpu", versions={})

    assert store.get_run(second).name == "baseline (from #1: mixer softmax, alpha 0.5, epochs 7 and 1 more)"
    # A re-run of the re-run lists its changes from run 1, the run its source's name starts from.
    again = changed.with_overrides({"training.epochs": 1})
    origin = rerun_origin(store, store.get_run(second))
    assert origin.id == first
    assert rerun_name(store.get_run(second), again.to_dict(), origin) == f"baseline (from #1 via #{second}: mixer softmax, alpha 0.5, epochs 1 and 1 more)"
    third = store.create_run(again.to_dict(), name=rerun_name(store.get_run(second), again.to_dict(), origin), device="cpu", versions={})
    assert rerun_origin(store, store.get_run(third)).id == first
    # Without run 1 (deleted), the source's changes are kept in its whole name.
    assert rerun_name(store.get_run(second), again.to_dict(), None) == f"{store.get_run(second).name} (from #{second}: epochs 1)"
    assert rerun_name(store.get_run(first), source.to_dict()) == "baseline (from #1)"
    probed = source.with_overrides({"training.attention_probe": "A dull, lifeless and overlong movie.", "student.n_layers": 2})
    assert rerun_name(store.get_run(first), probed.to_dict()) == "baseline (from #1: n_layers 2)"


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "--task", "imdb"], "'imdb' is not a GLUE task"),
        (["run", "--heads", "7"], "--heads (config key student.n_heads): 7 does not divide d_model = 256"),
        (["run", "--batch-size", "0"], "--batch-size (config key training.batch_size): 0 is out of range"),
        (["run", "--epochs", "-1"], "--epochs (config key training.epochs): -1 is out of range"),
        (["run", "--lr", "0"], "--lr (config key training.learning_rate): 0.0 is out of range"),
        (["run", "--alpha", "2"], "--alpha (config key distillation.alpha): 2.0 is out of range"),
        (["run", "--mask-fraction", "0.95"], "--mask-fraction (config key distillation.mask_fraction): 0.95 is out of range"),
        (["run", "--preset", "nope"], "'nope' is not a preset"),
        (["run", "--preset", "paper", "--from-run", "1"], "cannot be combined"),
        (["run", "--weighting", "fixed", "--teachers", "minilm,gpt2", "--fixed-weights", "1"], "1 weight given for 2 teachers"),
        (["run", "--teachers", "minilm,gpt2", "--fixed-weights", "1,2"], "Add --weighting fixed"),
        (["run", "--weighting", "fixed", "--teachers", "minilm,gpt2"], "distillation.fixed_weights (option --fixed-weights): 0 weights given for 2 teachers"),
        (["run", "--resume", "3", "--from-run", "2"], "Drop --from-run"),
        (["show", "99"], "There is no run database at"),
        (["runs"], "Check the --db path"),
    ],
)
def test_invalid_input_gives_one_line_and_exit_2(args, fragment, tmp_path, capsys):
    code = main([*args, "--db", str(tmp_path / "runs.sqlite3")])

    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert error[-1].startswith("lampreia: ")
    assert fragment in error[-1]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("{bad", "lampreia: The config file {path} is not valid JSON (Expecting property name enclosed in double quotes"),
        ('{"student": {"n_layerz": 3}}', "lampreia: student.n_layerz: 'n_layerz' is not a field of section 'student'. Did you mean 'n_layers'? Allowed fields: "),
        ('{"student": [1, 2]}', "lampreia: student: The section is a JSON array, not an object."),
    ],
)
def test_bad_config_file_names_the_problem(tmp_path, capsys, text, expected):
    config = tmp_path / "config.json"
    config.write_text(text)

    code = main(["run", "--config", str(config), "--db", str(tmp_path / "runs.sqlite3")])

    assert code == 2
    assert capsys.readouterr().err.startswith(expected.format(path=config))


def test_config_file_with_newer_schema(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"schema_version": 99, "task": "sst2"}))

    code = main(["run", "--config", str(config), "--db", str(tmp_path / "runs.sqlite3")])

    assert code == 2
    assert "newer Lampreia Workbench" in capsys.readouterr().err


def test_failed_run_exits_1_with_reason(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    # A folder passes the check before the run; its unreadable config fails the run once it loads the teacher.
    broken = tmp_path / "broken-teacher"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    (broken / "model.safetensors").write_bytes(b"")

    # Without --quiet, so that the progress lines are printed too.
    args = [arg for arg in _run_args(glue_dir, db, "--teachers", str(broken)) if arg != "--quiet"]

    code = main(args)

    assert code == 1
    error = capsys.readouterr().err
    assert "run 1 failed" in error
    assert sum("config.json cannot be read" in line for line in error.splitlines()) == 1  # the reason is printed once


def test_uncached_hub_teacher_offline_records_no_run(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"

    code = main(_run_args(glue_dir, db, "--teachers", "minilm,no-such-org/no-such-model"))

    error = capsys.readouterr().err
    assert code == 2
    assert "'no-such-org/no-such-model' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in error
    assert RunStore(db).list_runs() == []


def test_reading_commands_never_create_a_database(tmp_path, capsys):
    existing = tmp_path / "runs.sqlite3"
    RunStore(existing).close()
    mistyped = tmp_path / "missing" / "runs.sqlite3"

    missing_run = main(["show", "99", "--db", str(existing)])
    mistyped_path = main(["runs", "--db", str(mistyped)])
    mistyped_compare = main(["compare", "1", "2", "--db", str(mistyped)])
    default_missing = main(["runs"])

    output = capsys.readouterr()
    assert missing_run == 2
    assert "Run 99 does not exist" in output.err
    assert mistyped_path == 2
    assert f"There is no run database at {mistyped}" in output.err
    assert mistyped_compare == 2
    assert not mistyped.parent.exists()
    assert default_missing == 0
    assert "No runs are recorded yet" in output.out


def test_reading_commands_leave_the_data_folder_uncreated(tmp_path):
    data = tmp_path / "fresh-user-data"
    environment = {**os.environ, "LAMPREIA_DATA_DIR": str(data)}
    for command in (["runs"], ["presets"], ["show", "1"]):
        subprocess.run([sys.executable, "-m", "engine.cli", *command], env=environment, capture_output=True, check=False, timeout=120)

    assert not data.exists()  # neither a database nor a logs/ folder


def test_missing_task_folder_records_no_run(tmp_path, capsys):
    db = tmp_path / "r.sqlite3"
    code = main(["run", "--task", "qqp", "--data-dir", str(tmp_path), "--teachers", "minilm", "--db", str(db), "--quiet"])

    assert code == 2
    assert "has no QQP/ folder" in capsys.readouterr().err
    assert RunStore(db).list_runs() == []


def test_empty_tokenizer_folder_records_no_run(glue_dir, tmp_path, capsys):
    db = tmp_path / "r.sqlite3"
    empty = tmp_path / "empty-tokenizer"
    empty.mkdir()

    code = main(_run_args(glue_dir, db, "--tokenizer", str(empty)))

    error = capsys.readouterr().err
    assert code == 2
    assert f"The student tokenizer folder '{empty}' contains no tokenizer files" in error
    assert "sentencepiece" not in error
    assert RunStore(db).list_runs() == []


def test_cancelled_hint_names_a_custom_database(tmp_path):
    store = RunStore(tmp_path / "other.sqlite3")
    run_id = store.create_run({"task": "sst2"}, name="r", device="cpu", versions={})

    hint = _cancelled_hint(store, run_id)

    assert f"lampreia run --from-run {run_id} --db {tmp_path / 'other.sqlite3'}" in hint


def test_missing_teacher_folder_records_no_run(glue_dir, tmp_path, capsys):
    db = tmp_path / "r.sqlite3"
    missing = tmp_path / "no-such-teacher"

    code = main(_run_args(glue_dir, db, "--teachers", f"minilm,{missing}"))

    assert code == 2
    assert f"The teacher folder '{missing}' does not exist" in capsys.readouterr().err
    assert RunStore(db).list_runs() == []


def test_resume_names_the_options_to_drop(tmp_path, capsys):
    code = main(["run", "--resume", "3", "--epochs", "1", "--teachers", "minilm", "--db", str(tmp_path / "r.sqlite3"), "--quiet"])

    error = capsys.readouterr().err
    assert code == 2
    assert "Drop --epochs, --teachers" in error
    assert "--from-run 3" in error


def test_relative_data_folder_is_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    config = build_config(build_parser().parse_args(["run", "--data-dir", "glue"]), None)

    assert config.data.glue_dir == str(tmp_path / "glue")


def test_resume_rejects_data_folder_and_remote_code(tmp_path, capsys):
    code = main(["run", "--resume", "3", "--data-dir", str(tmp_path), "--trust-remote-code", "--db", str(tmp_path / "r.sqlite3"), "--quiet"])

    error = capsys.readouterr().err
    assert code == 2
    assert "Drop --data-dir, --trust-remote-code" in error


@pytest.mark.parametrize("argv", [["-v", "runs"], ["runs", "-v"], ["run", "--preset", "paper", "--verbose"]])
def test_verbose_before_or_after_the_command(argv):
    assert build_parser().parse_args(argv).verbose is True


@pytest.mark.parametrize(("flag", "expected"), [("off", False), ("on", True)])
def test_amp_flag_sets_config(flag, expected):
    args = build_parser().parse_args(["run", "--preset", "offline-demo", "--amp", flag])

    assert build_config(args, None).training.amp is expected


def test_amp_flag_rejects_other_words(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--amp", "yes"])

    assert exit_info.value.code == 2
    assert "'yes' is not 'on' or 'off'" in capsys.readouterr().err


def test_second_ctrl_c_marks_run_aborted(tmp_path, monkeypatch, capsys):
    import engine.trainer
    from engine.events import RunStarted
    from engine.run_store import RunStore

    db = tmp_path / "runs.sqlite3"

    def aborted_run(config, store, sink, cancel):
        run_id = store.create_run(config.to_dict(), name="aborted", device="cpu", versions={})
        sink(RunStarted(run_id, "aborted", config.to_dict(), "cpu"))
        raise KeyboardInterrupt  # what the second Ctrl-C raises in the middle of a step

    monkeypatch.setattr(engine.trainer, "run_distillation", aborted_run)
    code = main(["run", "--preset", "offline-demo", "--db", str(db), "--quiet"])

    record = RunStore(db).get_run(1)
    assert code == 130
    assert record.status == "interrupted"
    assert "second Ctrl-C" in record.error
    assert "lampreia run --resume 1" in record.error


def test_config_accepts_show_json_output(glue_dir, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    assert main(_run_args(glue_dir, db)) == 0
    capsys.readouterr()
    assert main(["show", "1", "--json", "--db", str(db)]) == 0
    show_output = tmp_path / "run1.json"
    show_output.write_text(capsys.readouterr().out, encoding="utf-8")

    args = build_parser().parse_args(["run", "--config", str(show_output), "--seed", "9"])
    config = build_config(args, None)

    assert config.training.seed == 9
    assert config.data.train_limit == 160


def test_skip_malformed_rows_flag():
    args = build_parser().parse_args(["run", "--skip-malformed-rows"])

    assert build_config(args, None).data.skip_malformed_rows is True


def test_presets_are_listed_with_their_purpose(capsys):
    assert main(["presets"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["full", "offline-demo", "paper"]
    assert "offline" in lines[1]


def test_run_help_shows_student_defaults_and_tokenizer_aliases(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])

    text = " ".join(capsys.readouterr().out.split())
    assert "must divide d_model (default 8)" in text
    assert "(gpt2, distilbert, roberta, minilm; minilm works offline)" in text


def _stored_runs(db):
    """Two finished runs that differ in seed and learning rate, written straight into the store."""
    from engine.config import RunConfig

    store = RunStore(db)
    base = RunConfig()
    configs = [base.with_overrides({"training.seed": 42}), base.with_overrides({"training.seed": 7, "training.learning_rate": 1e-3})]
    for index, config in enumerate(configs):
        run_id = store.create_run(config.to_dict(), name=f"run {index + 1}", device="cpu", versions={})
        store.set_prepared(run_id, parameter_count=3_200_000, baseline={"dev/accuracy": 0.509})
        store.finish_run(
            run_id,
            "finished",
            best_metrics={"dev/accuracy": 0.80 + index / 100},
            final_metrics={"dev/accuracy": 0.79 + index / 100},
            best_step=100 * (index + 1),
        )
    store.close()


def test_compare_lists_differing_keys_and_metrics(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)

    assert main(["compare", "1", "2", "--db", str(db)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["#1", "#2"]
    assert "config: 2 settings differ" in lines
    assert ["training.seed", "42", "7"] in [line.split() for line in lines]
    assert ["training.learning_rate", "0.0005", "0.001"] in [line.split() for line in lines]
    assert ["dev/accuracy", "0.8000", "/", "0.7900", "0.8100", "/", "0.8000"] in [line.split() for line in lines]
    assert ["dev/accuracy", "0.5090", "0.5090"] in [line.split() for line in lines]
    assert ["best", "step", "100", "200"] in [line.split() for line in lines]


def test_compare_json_keys_values_by_run_id(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)

    assert main(["compare", "2", "1", "--json", "--db", str(db)]) == 0

    document = json.loads(capsys.readouterr().out)
    assert [run["id"] for run in document["runs"]] == [2, 1]
    assert document["config_differences"]["training.seed"] == {"2": 7, "1": 42}
    assert document["metrics"]["dev/accuracy"]["1"] == {"best": 0.80, "last": 0.79}


def test_compare_marks_missing_config_keys(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    store.create_run({"task": "sst2", "training": {"seed": 1, "schedule": "linear"}}, name="old", device="cpu", versions={})
    store.create_run({"task": "sst2", "training": {"seed": 1}}, name="older", device="cpu", versions={})
    store.close()

    assert main(["compare", "1", "2", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert main(["compare", "1", "2", "--json", "--db", str(db)]) == 0
    document = json.loads(capsys.readouterr().out)

    assert ["training.schedule", "linear", "(missing)"] in [line.split() for line in text.splitlines()]
    assert document["config_differences"]["training.schedule"] == {"1": "linear"}


@pytest.mark.parametrize(
    "run_ids,fragment",
    [
        (["1"], "compare needs two or more run ids, and got one (1)."),
        (["1", "2", "1"], "Run 1 is given more than once"),
        (["1", "99"], "Run 99 does not exist"),
    ],
)
def test_compare_rejects_bad_run_ids(run_ids, fragment, tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)

    code = main(["compare", *run_ids, "--db", str(db)])

    assert code == 2
    assert fragment in capsys.readouterr().err


def test_compare_shows_values_whole_and_warns_of_tasks(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    folder = "/data/glue_snapshots/" + "x" * 60
    store.create_run({"task": "sst2", "data": {"glue_dir": folder + "_A"}}, name="a", device="cpu", versions={})
    store.create_run({"task": "mrpc", "data": {"glue_dir": folder + "_B"}}, name="b", device="cpu", versions={})
    store.close()

    assert main(["compare", "1", "2", "--db", str(db)]) == 0
    output = capsys.readouterr().out

    assert output.startswith("Note: these runs are of different tasks (MRPC, SST-2)")
    assert f"{folder}_A" in output
    assert f"{folder}_B" in output


def test_compare_splits_runs_to_fit_terminal(tmp_path, monkeypatch, capsys):
    from engine.config import RunConfig

    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    for seed in (1, 2, 3, 4):
        config = RunConfig().with_overrides({"training.seed": seed})
        name = f"seed sweep of the paper preset, seed {seed}" if seed < 4 else "a seed sweep run whose name is longer than this terminal is wide, which is one hundred columns, seed 4"
        store.create_run(config.with_overrides({"task": "stsb" if seed == 4 else "sst2"}).to_dict(), name=name, device="cpu", versions={})
    store.close()

    monkeypatch.setenv("COLUMNS", "100")
    assert main(["compare", "1", "2", "3", "4", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].startswith("Note: these runs are of different tasks")
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    headers = [line.split() for line in lines if line.lstrip().startswith("#")]
    assert headers == [["#1", "#2"], ["#3"], ["#4"]]
    seeds = [line.split()[1:] for line in lines if line.strip().startswith("training.seed")]
    assert seeds == [["1", "2"], ["3"], ["4"]]
    # The long name is cut in the middle, keeping its end, where sweep names differ.
    assert any(line.startswith("name") and "…" in line and line.endswith("seed 4") for line in lines)


def test_compare_reads_last_evaluation_of_killed_run(tmp_path, capsys):
    from engine.run_store import MetricPoint

    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)
    store = RunStore(db)
    killed = store.create_run({"task": "sst2"}, name="killed", device="cpu", versions={})
    store.log_metrics(killed, [MetricPoint(10, 0.5, "dev/accuracy", 0.61), MetricPoint(20, 1.0, "dev/accuracy", 0.66), MetricPoint(20, 1.0, "train/loss_total", 0.4)])
    store.close()

    assert main(["compare", "1", str(killed), "--json", "--db", str(db)]) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["metrics"]["dev/accuracy"][str(killed)] == {"best": None, "last": 0.66}
    assert "train/loss_total" not in document["metrics"]


def test_show_of_cancelled_run_says_how_to_continue(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    run_id = store.create_run({"task": "sst2"}, name="stopped", device="cpu", versions={})
    store.finish_run(run_id, "cancelled")
    store.close()

    assert main(["show", str(run_id), "--db", str(db)]) == 0
    output = capsys.readouterr().out

    assert "Dev metrics:\n  (no evaluation)\nLogged metric rows (losses, teacher weights, evaluations): 0" in output
    assert f"train it anew with `lampreia run --from-run {run_id} --db {db}`" in output


def test_show_indents_multiline_notes(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    run_id = store.create_run({"task": "sst2"}, name="noted", device="cpu", versions={})
    store.set_notes(run_id, "first line\nsecond line")
    store.close()

    assert main(["show", str(run_id), "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()

    notes = lines.index("  notes       first line")
    assert lines[notes + 1] == " " * 14 + "second line"


def test_wide_characters_keep_columns_aligned(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "160")  # a terminal, on which long names are cut
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    for name in ("日本語の実験", "plain", "日本語の実験で名前がとても長いものを試す"):
        store.create_run({"task": "sst2"}, name=name, device="cpu", versions={})
    store.close()

    assert main(["runs", "--db", str(db)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert main(["compare", "1", "2", "--db", str(db)]) == 0
    compared = capsys.readouterr().out.splitlines()

    def column_of(line, text, occurrence=1):
        """Terminal column where the given occurrence of ``text`` starts; CJK characters take two columns."""
        index = -1
        for _ in range(occurrence):
            index = line.index(text, index + 1)
        return sum(2 if "\u3000" <= char <= "\u9fff" else 1 for char in line[:index])

    assert len({column_of(line, "running") for line in table[1:]}) == 1
    assert "…" in table[1]
    name_row = next(line for line in compared if line.startswith("name"))
    status_row = next(line for line in compared if line.startswith("status"))
    assert column_of(name_row, "plain") == column_of(status_row, "running", occurrence=2)


def test_reading_commands_open_unwritable_database_read_only(tmp_path, monkeypatch, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)
    monkeypatch.setattr("engine.run_store.writable", lambda path: False)
    opened = []
    original = RunStore.__init__

    def record(self, *args, **kwargs):
        opened.append(kwargs.get("read_only", False))
        original(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "__init__", record)

    assert main(["runs", "--db", str(db)]) == 0
    assert main(["compare", "1", "2", "--db", str(db)]) == 0

    assert opened == [True, True]
    assert "run 2" in capsys.readouterr().out


def test_runs_table_shows_folder_ends():
    from engine.model_sources import short_model_name

    specs = ["minilm", "/home/me/models/sst2-teacher/model", "./ckpt/roberta/final", "gpt2", "org/teacher", "/models/x", "C:\\ckpt\\bert\\final"]
    names = [short_model_name(spec) for spec in specs]

    assert names == ["minilm", "…/sst2-teacher/model", "…/roberta/final", "gpt2", "org/teacher", "/models/x", "…/bert/final"]
    cell = ",".join(names[:4])
    assert _clip(cell, 28) == "minilm,…/sst2-teacher/model…"


def test_config_diff_names_generated_name():
    from engine.run_comparison import format_config_value

    assert format_config_value("", "name") == "(generated)"
    assert format_config_value("baseline", "name") == "baseline"
    assert format_config_value("", "data.glue_dir") == "''"


def test_runs_table_keeps_name_ends():
    name = "stsb-minilm-d32x1-logphase (from #4: alpha 0.5)"

    clipped = _clip_middle(name, 24)

    assert _columns(clipped) == 24
    assert clipped == "stsb-mini…#4: alpha 0.5)"
    assert _clip_middle("short name", 24) == "short name"


def test_runs_on_empty_database_says_so(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    RunStore(db).close()

    assert main(["runs", "--db", str(db)]) == 0

    assert capsys.readouterr().out == f"No runs are recorded yet in {db}.\n"


def test_progress_phase_lines_say_counts_once():
    import io

    from engine.cli import ProgressBar
    from engine.events import PhaseChanged

    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    bar.handle(PhaseChanged("extracting", "bert-a/final", 1, 2))
    bar.handle(PhaseChanged("training", "epoch 23 of 40", 23, 40))

    assert stream.getvalue().splitlines() == ["[extracting 1/2 bert-a/final]", "[training epoch 23 of 40]"]


@pytest.mark.parametrize("columns", [40, 60, 120])
def test_progress_line_fits_terminal(monkeypatch, columns):
    import io
    import os

    from engine.cli import ProgressBar
    from engine.events import PhaseChanged, Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=None: os.terminal_size((columns, 24)))
    stream = Terminal()
    bar = ProgressBar(stream, enabled=True)
    bar.handle(PhaseChanged("training", "epoch 2 of 3", 2, 3))
    bar.handle(Progress("training", 120, 375, 12.0, 25.0))

    line = stream.getvalue().split("\r\x1b[K")[-1]
    assert len(line) <= columns - 1
    assert line.startswith("[training epoch 2 of 3]")
    assert ("█" in line) == (columns >= 60)
    assert line.endswith("120/375 ETA 0:25") == (columns >= 60)


def test_log_progress_does_not_repeat_epoch_after_evaluation():
    import io

    from engine.cli import ProgressBar
    from engine.events import PhaseChanged

    stream = io.StringIO()  # not a terminal: one line per phase, as in a log file
    bar = ProgressBar(stream, enabled=True)
    for phase, detail, index in [("training", "epoch 1 of 2", 1), ("evaluating", "step 8", 0), ("training", "epoch 1 of 2", 1), ("evaluating", "step 16", 0), ("training", "epoch 2 of 2", 2)]:
        bar.handle(PhaseChanged(phase, detail, index, 2 if index else 0))

    assert stream.getvalue().splitlines() == ["[training epoch 1 of 2]", "[evaluating step 8]", "[evaluating step 16]", "[training epoch 2 of 2]"]


@pytest.mark.parametrize(("task", "heldout_rows", "noted"), [("sst2", 12, True), ("sst2", 120, False), ("stsb", 12, True)])
def test_prepared_line_notes_few_heldout_rows(task, heldout_rows, noted):
    import io

    from engine.cli import ProgressBar
    from engine.events import RunPrepared, RunStarted

    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    bar.handle(RunStarted(1, "small", {"task": task, "data": {"train_limit": 240}}, "CPU"))
    bar.handle(RunPrepared(1, 115_012, ("minilm",), (384,), {"dev/accuracy": 0.5}, 228, heldout_rows, {"dev": 80}, 16, 8))
    printed = stream.getvalue()

    baseline = "Training-mean baseline" if task == "stsb" else "Majority baseline"
    assert f"{heldout_rows} held out; 16 steps. {baseline}: dev/accuracy 0.5000" in printed
    assert (f"the best checkpoint is chosen on {heldout_rows} held-out rows" in printed) == noted
    assert ("Raise --train-limit or --heldout-fraction" in printed) == noted


def test_whole_split_note_advises_fraction():
    import io

    from engine.cli import ProgressBar
    from engine.events import RunPrepared, RunStarted

    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    bar.handle(RunStarted(1, "small file", {"task": "rte", "data": {"train_limit": None}}, "CPU"))
    bar.handle(RunPrepared(1, 115_012, ("minilm",), (384,), {}, 47, 2, {"dev": 80}, 2, 2))

    assert "The training split has no more rows, so raise --heldout-fraction" in stream.getvalue()
    assert "--train-limit" not in stream.getvalue()


def test_heldout_fraction_option():
    args = build_parser().parse_args(["run", "--heldout-fraction", "0.2"])

    assert build_config(args, None).data.heldout_fraction == 0.2


def test_relative_teacher_and_tokenizer_are_stored_absolute(tmp_path, monkeypatch):
    (tmp_path / "teachers" / "tiny-bert").mkdir(parents=True)
    (tmp_path / "tok").mkdir()
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["run", "--teachers", "teachers/tiny-bert,minilm,gpt2", "--tokenizer", "tok"])

    config = build_config(args, None)

    assert config.distillation.teachers == (str(tmp_path / "teachers" / "tiny-bert"), "minilm", "gpt2")
    assert config.student.tokenizer == str(tmp_path / "tok")


def test_relative_and_absolute_spelling_of_one_teacher_rejected(tmp_path, monkeypatch, capsys):
    (tmp_path / "teachers" / "tiny-bert").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)

    code = main(["run", "--teachers", f"teachers/tiny-bert,{tmp_path}/teachers/tiny-bert", "--db", str(tmp_path / "runs.sqlite3")])

    assert code == 2
    assert "lists a teacher twice" in capsys.readouterr().err


def test_stray_argument_names_its_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["export", "1", "2", "--csv", "-"])

    assert exited.value.code == 2
    assert capsys.readouterr().err == "lampreia export: unrecognized arguments: 2. See `lampreia export --help` for the options.\n"


def test_runs_table_fits_narrow_terminal(tmp_path, monkeypatch, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["runs", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    header = lines[0].split()
    assert header[:5] == ["id", "name", "status", "task", "student"]
    assert "teachers" not in header
    assert any(line.startswith("Columns left out at this width: teachers,") for line in lines)

    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert main(["runs", "--db", str(db)]) == 0
    piped = capsys.readouterr().out.splitlines()
    assert "teachers" in piped[0]  # output to a file or a pipe keeps every column
    assert not any(line.startswith("Columns left out") for line in piped)

    for width in (60, 32):
        monkeypatch.setenv("COLUMNS", str(width))
        assert main(["runs", "--db", str(db)]) == 0
        assert all(len(line) <= width for line in capsys.readouterr().out.splitlines()), width


def test_offline_run_names_every_uncached_teacher(glue_dir, tmp_path, capsys):
    code = main(["run", "--preset", "paper", "--data-dir", str(glue_dir), "--tokenizer", "minilm", "--db", str(tmp_path / "runs.sqlite3")])
    error = capsys.readouterr().err

    assert code == 2
    assert "None of the 3 teachers can be used." in error
    for hub_id in ("openai-community/gpt2", "distilbert/distilbert-base-uncased", "FacebookAI/roberta-base"):
        assert f"'{hub_id}'" in error
    assert error.count("To download them") == 1  # the shared hint once, for all three
    assert "download it" not in error
    assert not (tmp_path / "runs.sqlite3").exists() or RunStore(tmp_path / "runs.sqlite3").list_runs() == []


def _seed_sweep(db):
    """Five finished runs: three seeds of alpha 0.7 (one named differently) and two seeds of alpha 0.5."""
    from engine.config import RunConfig

    store = RunStore(db)
    rows = [(0.7, 1, 0.80), (0.5, 1, 0.70), (0.7, 2, 0.82), (0.5, 2, 0.74), (0.7, 3, 0.84)]
    for index, (alpha, seed, accuracy) in enumerate(rows):
        config = RunConfig().with_overrides({"distillation.alpha": alpha, "training.seed": seed, "name": f"sweep {index}"})
        run_id = store.create_run(config.to_dict(), name=f"sweep {index}", device="cpu", versions={})
        store.set_prepared(run_id, parameter_count=3_200_000, baseline={"dev/accuracy": 0.509})
        best = {"dev/accuracy": accuracy} if index != 4 else {"dev/accuracy": accuracy, "dev/macro_f1": 0.8}
        store.finish_run(run_id, "finished", best_metrics=best, final_metrics={"dev/accuracy": accuracy - 0.01}, best_step=10 * seed)
    store.close()


def test_compare_pool_seeds_table(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _seed_sweep(db)

    assert main(["compare", "1", "2", "3", "4", "5", "--pool-seeds", "--db", str(db)]) == 0

    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines]
    assert lines[0].startswith("Note: alpha or the distillation loss differs")
    assert lines[1].split() == ["#1", "(3", "runs)", "#2", "(2", "runs)"]
    assert ["runs", "#1,", "#3,", "#5", "#2,", "#4"] in rows
    assert ["seeds", "1,", "2,", "3", "1,", "2"] in rows
    assert ["status", "3", "finished", "2", "finished"] in rows
    assert "config: 1 setting differs (besides the seed)" in lines
    assert ["distillation.alpha", "0.7", "0.5"] in rows
    # Best accuracies 0.80, 0.82, 0.84 and 0.70, 0.74; last evaluations 0.01 lower.
    assert ["dev/accuracy", "0.8200", "±", "0.0200", "0.7200", "±", "0.0283"] in rows
    assert ["dev/accuracy", "0.8100", "±", "0.0200", "0.7100", "±", "0.0283"] in rows
    assert ["dev/macro_f1", "0.8000", "(1", "of", "3", "runs)", "-"] in rows
    assert ["dev/accuracy", "0.5090", "0.5090"] in rows


def test_compare_pool_seeds_json(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _seed_sweep(db)

    assert main(["compare", "2", "1", "4", "3", "--pool-seeds", "--json", "--db", str(db)]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["groups"] == [{"label": "2,4", "runs": [2, 4], "seeds": [1, 2]}, {"label": "1,3", "runs": [1, 3], "seeds": [1, 2]}]
    assert document["config_differences"] == {"distillation.alpha": {"2,4": 0.5, "1,3": 0.7}}
    best = document["metrics"]["dev/accuracy"]["1,3"]["best"]
    assert best["mean"] == pytest.approx(0.81)
    assert best["std"] == pytest.approx(0.0141421, rel=1e-4)
    assert best["count"] == 2


def test_compare_pool_seeds_without_repeats(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _seed_sweep(db)

    assert main(["compare", "1", "2", "--pool-seeds", "--db", str(db)]) == 0

    out = capsys.readouterr().out
    assert "no two of these runs differ only in their seed, so each column is one run" in out
    assert ["dev/accuracy", "0.8000", "0.7000"] in [line.split() for line in out.splitlines()]


def test_compare_names_environment_differences(tmp_path, capsys):
    from engine.config import RunConfig

    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    for threads in (2, 1):
        run_id = store.create_run(RunConfig().to_dict(), name=f"{threads} threads", device=f"CPU: x86_64 ({threads} threads)", versions={"torch": "2.13.0"})
        store.finish_run(run_id, "finished", best_metrics={"dev/accuracy": 0.5 + threads / 10}, final_metrics={}, best_step=1)
    store.close()

    assert main(["compare", "1", "2", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "config: the same settings" in lines
    assert "environment: 1 difference, which can change the numbers of the same settings and seed" in lines
    assert ["device", "CPU:", "x86_64", "(2", "threads)", "CPU:", "x86_64", "(1", "threads)"] in [line.split() for line in lines]

    assert main(["compare", "1", "2", "--json", "--db", str(db)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["environment_differences"] == {"device": {"1": "CPU: x86_64 (2 threads)", "2": "CPU: x86_64 (1 threads)"}}


@pytest.mark.parametrize(("alpha", "fragment"), [("0", "With alpha 0 the task loss has no weight"), ("1", "With alpha 1 the distillation loss has no weight")])
def test_alpha_without_a_loss_prints_note(alpha, fragment, tmp_path, capsys):
    db = tmp_path / "r.sqlite3"
    # The missing task folder stops the run after the note, before anything is trained.
    code = main(["run", "--task", "qqp", "--alpha", alpha, "--data-dir", str(tmp_path), "--teachers", "minilm", "--db", str(db), "--quiet"])

    err = capsys.readouterr().err
    assert code == 2
    assert f"lampreia: note: {fragment}" in err
    assert "has no QQP/ folder" in err


def test_compare_notes_padding_difference(tmp_path, capsys):
    from engine.config import RunConfig

    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    for padding in ("longest", "max_length"):
        run_id = store.create_run(RunConfig().with_overrides({"training.padding": padding}).to_dict(), name=padding, device="cpu", versions={})
        store.finish_run(run_id, "finished", best_metrics={"dev/accuracy": 0.5}, final_metrics={}, best_step=1)
    store.close()

    assert main(["compare", "1", "2", "--db", str(db)]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Note: The padding differs. It changes the padded lengths")


def test_augmentation_and_dropout_options_set_config():
    args = build_parser().parse_args(["run", "--mask-fraction", "0", "--replace-fraction", "0.2", "--dropout", "0"])

    config = build_config(args, None)

    assert config.distillation.mask_fraction == 0.0
    assert config.distillation.replace_fraction == 0.2
    assert config.student.dropout == 0.0


@pytest.mark.parametrize(("phase", "expected"), [("extracting", "Cancelling (press Ctrl-C"), ("training", "Cancelling after the current step (press Ctrl-C")])
def test_ctrl_c_message_follows_phase(phase, expected, tmp_path, monkeypatch, capsys):
    import signal

    from engine.events import PhaseChanged
    from engine.trainer import RunResult

    def interrupted_run(config, store, sink, cancel):
        sink(PhaseChanged(phase, "teacher 1 of 1"))
        signal.raise_signal(signal.SIGINT)
        assert cancel.cancelled
        return RunResult(None, "cancelled")

    monkeypatch.setattr("engine.trainer.run_distillation", interrupted_run)

    assert main(["run", "--db", str(tmp_path / "r.sqlite3"), "--quiet"]) == 130
    assert expected in capsys.readouterr().err


def test_cancelled_hint_says_resume_reproduces(tmp_path):
    from engine.config import RunConfig

    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(RunConfig().to_dict(), name="stopped", device="cpu", versions={})
    checkpoint = store.artifact_dir(run_id) / "last.safetensors"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"")
    store.log_artifact(run_id, "last", checkpoint, step=10)

    hint = _cancelled_hint(store, run_id)

    assert hint.startswith(f"Resume it with `lampreia run --resume {run_id} --db {store.path}`")
    assert "so on a CPU with the same thread count it reaches the losses and metrics of a run that was never stopped" in hint
    store.close()


def test_compare_csv_one_row_per_run(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)
    target = tmp_path / "table.csv"

    assert main(["compare", "1", "2", "--csv", str(target), "--db", str(db)]) == 0
    assert capsys.readouterr().out == f"Wrote 2 runs to {target}.\n"

    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run_id"] for row in rows] == ["1", "2"]
    assert [row["seed"] for row in rows] == ["42", "7"]
    assert [row["training.learning_rate"] for row in rows] == ["0.0005", "0.001"]
    assert [row["best:dev/accuracy"] for row in rows] == ["0.8", "0.81"]
    assert [row["last:dev/accuracy"] for row in rows] == ["0.79", "0.8"]
    assert [row["baseline:dev/accuracy"] for row in rows] == ["0.509", "0.509"]

    assert main(["compare", "1", "2", "--csv", str(target), "--db", str(db)]) == 2
    assert "already exists. Pass --force to replace it" in capsys.readouterr().err


def test_compare_pool_seeds_csv(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _seed_sweep(db)

    assert main(["compare", "1", "2", "3", "4", "5", "--pool-seeds", "--csv", "-", "--db", str(db)]) == 0

    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(row["run_ids"], row["seeds"], row["runs"], row["distillation.alpha"]) for row in rows] == [("1,3,5", "1,2,3", "3", "0.7"), ("2,4", "1,2", "2", "0.5")]
    assert float(rows[0]["best:dev/accuracy:mean"]) == pytest.approx(0.82)
    assert float(rows[0]["best:dev/accuracy:std"]) == pytest.approx(0.02)
    assert rows[0]["best:dev/macro_f1:count"] == "1"
    assert rows[1]["best:dev/macro_f1:count"] == "0"
    assert rows[1]["best:dev/macro_f1:mean"] == ""
    assert [row["baseline:dev/accuracy:mean"] for row in rows] == ["0.509", "0.509"]
    assert [row["baseline:dev/accuracy:std"] for row in rows] == ["0.0", "0.0"]


def test_compare_csv_and_json_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "1", "2", "--csv", "-", "--json"])

    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_compare_pool_seeds_leaves_out_repeats(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _seed_sweep(db)
    from engine.config import RunConfig

    store = RunStore(db)
    config = RunConfig().with_overrides({"distillation.alpha": 0.7, "training.seed": 1, "name": "sweep 0"})
    repeat = store.create_run(config.to_dict(), name="sweep 0 again", device="cpu", versions={})
    store.finish_run(repeat, "finished", best_metrics={"dev/accuracy": 0.80}, final_metrics={}, best_step=10)
    store.close()

    assert main(["compare", "1", "3", "5", str(repeat), "--pool-seeds", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"Note: Run #{repeat} repeats the settings and seed of an earlier run, so it is left out of the pooled values" in out
    assert ["dev/accuracy", "0.8200", "±", "0.0200"] in [line.split() for line in out.splitlines()]

    assert main(["compare", "1", "3", "5", str(repeat), "--pool-seeds", "--json", "--db", str(db)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["left_out_repeats"] == [repeat]
    assert document["groups"][0]["runs"] == [1, 3, 5]
    assert document["baseline"]["dev/accuracy"]["1,3,5"]["mean"] == pytest.approx(0.509)


def test_compare_csv_columns_are_unique(tmp_path, capsys):
    from engine.config import RunConfig

    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    for task, seed in (("sst2", 1), ("cola", 2)):
        run_id = store.create_run(RunConfig().with_overrides({"task": task, "training.seed": seed}).to_dict(), name=task, device="cpu", versions={})
        store.finish_run(run_id, "finished", best_metrics={}, final_metrics={}, best_step=1)
    store.close()

    for extra in ([], ["--pool-seeds"]):
        assert main(["compare", "1", "2", "--csv", "-", "--db", str(db), *extra]) == 0
        header = next(csv.reader(capsys.readouterr().out.splitlines()))
        assert len(header) == len(set(header)), header
        assert "training.seed" not in header


def test_compare_force_needs_csv(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    _stored_runs(db)

    assert main(["compare", "1", "2", "--force", "--db", str(db)]) == 2
    assert "--force only replaces the file of --csv, and no --csv FILE is given. Add --csv FILE, or drop --force." in capsys.readouterr().err
