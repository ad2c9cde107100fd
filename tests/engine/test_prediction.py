"""`lampreia predict`: a run's student rebuilt from its checkpoint, GLUE submission files, and its errors."""

import shutil
import sqlite3

import numpy as np
import pytest

from engine.cli import main
from engine.errors import CheckpointError, DataError
from engine.glue_data import read_glue_tsv
from engine.prediction import label_text, load_trained_student, predict_rows, submission_table
from engine.run_store import RunStore
from engine.tasks import TASKS


def _run_args(glue_dir, db, *extra):
    return [
        "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm", "--tokenizer", "minilm",
        "--train-limit", "160", "--dev-limit", "80", "--epochs", "1", "--d-model", "32", "--layers", "1",
        "--heads", "4", "--max-seq-len", "48", "--db", str(db), "--quiet", *extra,
    ]


@pytest.fixture(scope="module")
def trained_run(glue_dir, tmp_path_factory):
    """A finished tiny SST-2 run: (database, glue folder)."""
    folder = tmp_path_factory.mktemp("predict")
    db = folder / "runs.sqlite3"
    # The run writes its log into the data folder, which must not be the user's.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAMPREIA_DATA_DIR", str(folder / "lampreia-data"))
        assert main(_run_args(glue_dir, db)) == 0
    return db, glue_dir


def _read_tsv(text):
    lines = text.splitlines()
    header = lines[0].split("\t")
    return header, [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def test_run_dev_rows_repeat_recorded_metrics(trained_run, tmp_path, capsys):
    db, _ = trained_run
    target = tmp_path / "SST-2.tsv"

    assert main(["predict", "1", "--limit", "80", "--output", str(target), "--db", str(db)]) == 0

    captured = capsys.readouterr()
    store = RunStore(db)
    recorded = store.get_run(1).best_metrics["dev/accuracy"]
    store.close()
    assert f"Scored on 80 rows with a gold label: accuracy {recorded:.4f}" in captured.err
    assert "scored these rows as its dev split when it wrote this checkpoint" in captured.err
    assert "(the same)" in captured.err
    assert f"Wrote 80 predictions of run 1 to {target}." in captured.out

    header, rows = _read_tsv(target.read_text(encoding="utf-8"))
    assert header == ["index", "prediction"]
    assert [row["index"] for row in rows] == [str(i) for i in range(80)]
    assert {row["prediction"] for row in rows} <= {"0", "1"}


def test_other_rows_have_no_recorded_metrics(trained_run, capsys):
    db, _ = trained_run

    assert main(["predict", "1", "--db", str(db)]) == 0

    captured = capsys.readouterr()
    # All 872 dev rows, where the run scored the first 80.
    assert "872 rows of SST-2" in captured.err
    assert "Scored on 872 rows with a gold label: accuracy " in captured.err
    assert "when it wrote this checkpoint" not in captured.err
    assert "Run 1 scored only the first 80 of these rows (its dev row limit)" in captured.err
    assert "(CLI: --limit 80; in the window: First rows only) to repeat them." in captured.err
    header, rows = _read_tsv(captured.out)
    assert header == ["index", "prediction"]
    assert len(rows) == 872


def test_details_of_unlabelled_test_file(trained_run, tmp_path, capsys):
    db, _ = trained_run
    test_file = tmp_path / "test.tsv"
    test_file.write_text("index\tsentence\n7\ta gripping , beautifully acted film\n8\tdull and \"lifeless\"\n9\tit is\tbad\n", encoding="utf-8")

    assert main(["predict", "1", "--input", str(test_file), "--details", "--skip-malformed-rows", "--db", str(db)]) == 0

    captured = capsys.readouterr()
    assert "No row has a gold label, so nothing was scored" in captured.err
    header, rows = _read_tsv(captured.out)
    assert header == ["index", "prediction", "label", "p_negative", "p_positive", "sentence"]
    # The third row has a tab too many and was skipped; the indices are the file's own.
    assert [row["index"] for row in rows] == ["7", "8"]
    assert rows[1]["sentence"] == 'dull and "lifeless"'
    for row in rows:
        assert row["label"] == ""
        probabilities = [float(row["p_negative"]), float(row["p_positive"])]
        assert abs(sum(probabilities) - 1) < 1e-3
        assert row["prediction"] == str(int(np.argmax(probabilities)))


def test_submission_table_from_student_outputs(trained_run):
    db, glue_dir = trained_run
    store = RunStore(db)
    trained = load_trained_student(store, 1, device="cpu")
    store.close()
    rows = read_glue_tsv(TASKS["sst2"], glue_dir / "SST-2" / "dev.tsv", "dev", limit=40)

    predictions = predict_rows(trained, rows)

    assert not trained.model.training
    assert predictions.predicted.shape == (40,)
    assert predictions.probabilities.shape == (40, 2)
    header, table = submission_table(predictions, details=True)
    assert header == ["index", "prediction", "label", "p_negative", "p_positive", "sentence"]
    assert table[0][2] == str(rows.labels[0])
    assert table[0][5] == rows.texts_a[0]


def test_label_text_as_in_tsv_files():
    assert label_text(TASKS["sst2"], 1) == "1"
    assert label_text(TASKS["rte"], 1) == "not_entailment"
    assert label_text(TASKS["mnli"], 2) == "contradiction"
    assert label_text(TASKS["wnli"], 0) == "0"
    assert label_text(TASKS["stsb"], 3.14159) == "3.142"


def test_existing_output_kept_before_work(trained_run, tmp_path, capsys):
    db, _ = trained_run
    target = tmp_path / "SST-2.tsv"
    target.write_text("my submission\n")

    assert main(["predict", "1", "--output", str(target), "--db", str(db)]) == 2

    error = capsys.readouterr().err
    assert f"{target} already exists." in error
    assert "--force" in error
    assert "rows of SST-2" not in error  # stopped before the student ran
    assert target.read_text() == "my submission\n"

    assert main(["predict", "1", "--output", str(tmp_path), "--db", str(db)]) == 2
    assert f"Give a file name, such as {tmp_path / 'SST-2.tsv'}." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--split", "validation"], "Task SST-2 has no split 'validation'. Use one of: dev, train, test."),
        (["--input", "missing.tsv"], "The input file missing.tsv does not exist or is not a file."),
        (["--limit", "0"], "--limit 0: the number of rows must be at least 1."),
        (["--device", "cuda"], "sees no CUDA GPU"),
    ],
)
def test_bad_arguments_name_value_and_fix(trained_run, arguments, expected, capsys, monkeypatch, tmp_path):
    db, _ = trained_run
    monkeypatch.chdir(tmp_path)
    import torch

    if expected == "sees no CUDA GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")

    assert main(["predict", "1", *arguments, "--db", str(db)]) == 2

    assert expected in capsys.readouterr().err


def test_malformed_input_row_named(trained_run, tmp_path, capsys):
    db, _ = trained_run
    rows = tmp_path / "mine.tsv"
    rows.write_text("sentence\tlabel\na fine film\t1\na bad film\tpositive\n", encoding="utf-8")

    assert main(["predict", "1", "--input", str(rows), "--db", str(db)]) == 2

    error = capsys.readouterr().err
    assert "line 3: label 'positive' is not a whole number" in error
    assert "--skip-malformed-rows" in error


def test_run_without_checkpoint_reported(tmp_path, capsys):
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    run_id = store.create_run({"task": "sst2"}, name="stopped early", device="cpu", versions={})
    store.finish_run(run_id, status="cancelled", final_metrics={}, error=None)
    store.close()

    assert main(["predict", str(run_id), "--db", str(db)]) == 2

    error = capsys.readouterr().err
    assert f"Run {run_id} has no best checkpoint: it was cancelled before its first evaluation." in error
    assert f"lampreia run --from-run {run_id}" in error


def test_deleted_checkpoint_file_reported(trained_run, tmp_path, capsys):
    db, _ = trained_run
    copy = tmp_path / "runs.sqlite3"
    # SQLite's backup copies what is still in the write-ahead log too.
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    store = RunStore(copy)
    assert store.artifacts(1)["best"][0].name == "best.safetensors"
    store.close()

    # The copied database points to its own artifact folder, which has no files.
    assert main(["predict", "1", "--db", str(copy)]) == 2

    error = capsys.readouterr().err
    assert "The best checkpoint of run 1 is missing:" in error
    assert "was deleted or moved" in error
    assert "lampreia run --from-run 1" in error


def test_changed_tokenizer_rejected(glue_dir, gpt2_tokenizer_dir, tokenizer_files, tmp_path):
    from tests.tiny_models import save_tokenizer

    folder = tmp_path / "tokenizer"
    shutil.copytree(gpt2_tokenizer_dir, folder)
    db = tmp_path / "runs.sqlite3"
    arguments = _run_args(glue_dir, db)
    arguments[arguments.index("--tokenizer") + 1] = str(folder)
    assert main(arguments) == 0
    shutil.rmtree(folder)
    save_tokenizer("distilbert", tokenizer_files, folder)

    store = RunStore(db)
    with pytest.raises(CheckpointError) as raised:
        load_trained_student(store, 1, device="cpu")
    store.close()

    message = str(raised.value)
    assert f"The student tokenizer {str(folder)!r} now has 30522 tokens, but run 1 trained with 50257" in message
    assert "Put back the tokenizer files that run 1 used" in message


def test_cola_test_file_header_and_index(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("index\tsentence\n0\tThe book was read.\n1\tRead book the was.\n", encoding="utf-8")

    rows = read_glue_tsv(TASKS["cola"], path, "test")

    assert rows.texts_a == ("The book was read.", "Read book the was.")
    assert rows.row_ids == ("0", "1")
    assert not rows.has_labels


def test_row_ids_count_skipped_rows(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\ngood\t1\nbroken\nbad\t0\n", encoding="utf-8")

    rows = read_glue_tsv(TASKS["sst2"], path, "dev", skip_malformed_rows=True)

    assert rows.row_ids == ("0", "2")
    assert rows.select([1]).row_ids == ("2",)


def test_empty_input_file_rejected(trained_run, tmp_path):
    from engine.prediction import load_prediction_rows

    db, _ = trained_run
    path = tmp_path / "empty.tsv"
    path.write_text("index\tsentence\n", encoding="utf-8")
    store = RunStore(db)
    trained = load_trained_student(store, 1, device="cpu")
    store.close()

    with pytest.raises(DataError, match="has no data rows to predict"):
        load_prediction_rows(trained.task, None, input_file=path)

    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="is empty"):
        load_prediction_rows(trained.task, None, input_file=path)


def test_training_rows_are_named_as_such(trained_run, capsys):
    db, _ = trained_run

    assert main(["predict", "1", "--split", "train", "--limit", "160", "--db", str(db)]) == 0

    error = capsys.readouterr().err
    assert "The student trained on the first 160 rows of this split (all but its held-out slice)" in error

    # A prefix of the training rows is named too.
    assert main(["predict", "1", "--split", "train", "--limit", "20", "--db", str(db)]) == 0
    assert "The student trained on the first 160 rows of this split" in capsys.readouterr().err


def test_moved_data_folder_and_data_dir(glue_dir, tmp_path, capsys):
    moved = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", moved / "SST-2")
    db = tmp_path / "runs.sqlite3"
    arguments = _run_args(moved, db)
    assert main(arguments) == 0
    shutil.rmtree(moved)
    capsys.readouterr()

    assert main(["predict", "1", "--limit", "80", "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert f"The glue_data folder {str(moved)!r} does not exist or is not a folder." in error
    assert "Give the glue_data folder that contains SST-2/dev.tsv (CLI: --data-dir DIR" in error

    # The task's own folder instead of the glue_data folder above it.
    assert main(["predict", "1", "--split", "test", "--data-dir", str(glue_dir / "SST-2"), "--db", str(db)]) == 2
    error = capsys.readouterr().err
    assert "has no SST-2/ folder for task SST-2" in error
    assert "Give the glue_data folder that contains SST-2/test.tsv" in error
    assert "Hub" not in error

    assert main(["predict", "1", "--limit", "80", "--data-dir", str(glue_dir), "--db", str(db)]) == 0
    assert "(the same)" in capsys.readouterr().err


def test_output_over_input_rejected(trained_run, tmp_path, capsys):
    db, _ = trained_run
    rows = tmp_path / "test.tsv"
    rows.write_text("index\tsentence\n0\ta fine film\n", encoding="utf-8")

    for force in ([], ["--force"]):
        assert main(["predict", "1", "--input", str(rows), "--output", str(rows), *force, "--db", str(db)]) == 2

        error = capsys.readouterr().err
        assert "is the input file: its rows would be replaced by their predictions" in error
        assert "--force" not in error
    assert rows.read_text(encoding="utf-8") == "index\tsentence\n0\ta fine film\n"


def test_unknown_device_named(trained_run, capsys):
    db, _ = trained_run

    assert main(["predict", "1", "--device", "tpu", "--db", str(db)]) == 2

    error = capsys.readouterr().err
    assert "The device 'tpu' is not a device name." in error
    assert "Use auto, cpu, cuda or cuda:N." in error
    assert "training.device" not in error


def test_corrupted_checkpoint_points_to_other(trained_run, tmp_path, capsys):
    db, _ = trained_run
    copy = tmp_path / "runs.sqlite3"
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    artifacts = tmp_path / "runs-artifacts"
    shutil.copytree(db.parent / "runs-artifacts", artifacts)
    best = artifacts / "run-1" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:1000])

    assert main(["predict", "1", "--db", str(copy)]) == 2
    error = capsys.readouterr().err
    assert "is truncated or corrupted" in error
    assert "Predict with the last checkpoint (CLI: --checkpoint last; in the window: Checkpoint)" in error

    assert main(["predict", "1", "--checkpoint", "last", "--limit", "5", "--db", str(copy)]) == 0


def test_empty_labels_are_not_scored(trained_run, tmp_path, capsys):
    db, _ = trained_run
    rows = tmp_path / "mine.tsv"
    rows.write_text("sentence\tlabel\na fine film\t1\na dull film\t\n", encoding="utf-8")

    assert main(["predict", "1", "--input", str(rows), "--details", "--db", str(db)]) == 0

    captured = capsys.readouterr()
    assert "Scored on 1 row with a gold label" in captured.err
    assert [line.split("\t")[2] for line in captured.out.splitlines()[1:]] == ["1", ""]


def test_other_tasks_file_named(glue_dir):
    from engine.prediction import load_prediction_rows

    # SST-2's dev file has a header; read as CoLA, which has none, every line is malformed.
    for skip in (False, True):
        with pytest.raises(DataError) as raised:
            load_prediction_rows(TASKS["cola"], None, input_file=glue_dir / "SST-2" / "dev.tsv", skip_malformed_rows=skip)

        message = str(raised.value)
        assert "dev.tsv is not a CoLA file: none of its 873 lines parses as a CoLA row (line 1: expected at least 4" in message
        assert "check that run and file belong to the same task" in message
        assert "--skip-malformed-rows" not in message
