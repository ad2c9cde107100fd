"""The Predictions dialog: a run's student labels a split or a TSV file off the GUI thread."""

from __future__ import annotations

from engine.cli import main

PREDICTION_TIMEOUT_MS = 120_000


def _train_tiny_run(glue_dir, store) -> None:
    arguments = [
        "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm", "--tokenizer", "minilm",
        "--train-limit", "160", "--dev-limit", "80", "--epochs", "1", "--d-model", "32", "--layers", "1",
        "--heads", "4", "--max-seq-len", "48", "--db", str(store.path), "--quiet",
    ]
    assert main(arguments) == 0


def test_predictions_of_split_and_file(qtbot, window, store, glue_dir, tmp_path, monkeypatch):
    _train_tiny_run(glue_dir, store)
    window.history.refresh()
    window.history.select_runs([1])
    assert window.history.predict_action.isEnabled()

    dialog = window.open_predictions(1)
    assert dialog.split_combo.currentText() == "dev"
    target = tmp_path / "dev-predictions.tsv"
    suggested = []
    monkeypatch.setattr(dialog, "choose_output_file", lambda name: suggested.append(name) or str(target))
    dialog.predict()
    assert not dialog.predict_button.isEnabled()
    qtbot.waitUntil(dialog.predict_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)

    assert suggested == ["SST-2-run1-dev.tsv"]
    assert "Scored on 872 rows with a gold label: accuracy " in dialog.message
    assert f"Wrote 872 predictions to {target}." in dialog.message
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["index", "prediction", "label", "p_negative", "p_positive", "sentence"]
    assert len(lines) == 873

    # Rows of the user's own, without labels, as a plain submission file.
    rows = tmp_path / "mine.tsv"
    rows.write_text("index\tsentence\n0\tan utterly charming film\n1\ta tedious mess\n", encoding="utf-8")
    monkeypatch.setattr(dialog, "choose_input_file", lambda: str(rows))
    dialog.file_button.setChecked(True)
    dialog.browse_button.click()
    assert dialog.file_edit.text() == str(rows)
    dialog.details_box.setChecked(False)
    target = tmp_path / "mine-predictions.tsv"
    dialog.predict()
    qtbot.waitUntil(dialog.predict_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)

    assert "No row has a gold label" in dialog.message
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "index\tprediction"
    assert [line.split("\t")[0] for line in lines[1:]] == ["0", "1"]
    dialog.close()


def test_prediction_problems_named(qtbot, window, store, glue_dir, tmp_path, monkeypatch):
    _train_tiny_run(glue_dir, store)
    window.history.refresh()
    dialog = window.open_predictions(1)
    chosen = []
    monkeypatch.setattr(dialog, "choose_output_file", lambda name: chosen.append(name) or str(tmp_path / "out.tsv"))

    dialog.file_button.setChecked(True)
    dialog.predict()
    assert "Choose the TSV file to predict first" in dialog.message
    assert chosen == []

    dialog.file_edit.setText(str(tmp_path / "missing.tsv"))
    dialog.predict()
    assert f"The input file {tmp_path / 'missing.tsv'} does not exist or is not a file." in dialog.message
    assert chosen == []

    # The first row is read before the save dialog opens.
    malformed = tmp_path / "malformed.tsv"
    malformed.write_text("sentence\tlabel\na fine film\tpositive\n", encoding="utf-8")
    dialog.file_edit.setText(str(malformed))
    dialog.predict()
    assert "line 2: label 'positive' is not a whole number" in dialog.message
    assert chosen == []

    # A problem found while predicting comes back from the worker thread.
    malformed.write_text("sentence\tlabel\na fine film\t1\na bad film\tpositive\n", encoding="utf-8")
    dialog.predict()
    qtbot.waitUntil(dialog.predict_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)
    assert "line 3: label 'positive' is not a whole number" in dialog.message
    assert not (tmp_path / "out.tsv").exists()

    # The input file is not replaced by its predictions.
    monkeypatch.setattr(dialog, "choose_output_file", lambda name: str(malformed))
    dialog.predict()
    assert "is the input file" in dialog.message
    dialog.close()


def test_row_limit_repeats_recorded_metrics(qtbot, window, store, glue_dir, tmp_path, monkeypatch):
    _train_tiny_run(glue_dir, store)
    window.history.refresh()
    dialog = window.open_predictions(1)
    assert "so 80 repeats its recorded dev metrics" in dialog.limit_box.toolTip()
    monkeypatch.setattr(dialog, "choose_output_file", lambda name: str(tmp_path / "out.tsv"))

    dialog.limit_box.setValue(80)
    dialog.predict()
    qtbot.waitUntil(dialog.predict_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)

    assert "Scored on 80 rows with a gold label" in dialog.message
    assert "(the same)" in dialog.message
    dialog.close()


def test_run_without_checkpoint_cannot_predict(qtbot, window, store, messages):
    run_id = store.create_run({"task": "sst2"}, name="stopped early", device="cpu", versions={})
    store.finish_run(run_id, "cancelled")
    window.history.refresh()
    window.history.select_runs([run_id])

    # The action stays enabled, so that the window can explain why there is nothing to predict with.
    assert window.history.predict_action.isEnabled()
    window.history.predict_action.trigger()

    title, text = messages[-1]
    assert title == "Cannot predict"
    assert f"Run {run_id} has no best checkpoint: it was cancelled before its first evaluation." in text
    assert f"lampreia run --from-run {run_id}" in text


def test_dialog_reads_split_from_chosen_folder(qtbot, window, store, glue_dir, tmp_path, monkeypatch):
    _train_tiny_run(glue_dir, store)
    window.history.refresh()
    dialog = window.open_predictions(1)
    assert dialog.folder_edit.text() == str(glue_dir)
    names = []
    monkeypatch.setattr(dialog, "choose_output_file", lambda name: names.append(name) or str(tmp_path / "test-predictions.tsv"))

    # The run's folder has no test.tsv: the problem is named before the save dialog.
    dialog.split_combo.setCurrentText("test")
    dialog.predict()
    assert "test.tsv is missing" in dialog.message
    assert "Give the glue_data folder that contains SST-2/test.tsv" in dialog.message
    assert names == []

    other = tmp_path / "glue"
    (other / "SST-2").mkdir(parents=True)
    (other / "SST-2" / "test.tsv").write_text("index\tsentence\n0\ta warm film\n1\ta cold film\n", encoding="utf-8")
    monkeypatch.setattr(dialog, "choose_glue_folder", lambda: str(other))
    dialog.folder_button.click()
    dialog.limit_box.setValue(1)
    dialog.checkpoint_combo.setCurrentIndex(1)
    dialog.predict()
    qtbot.waitUntil(dialog.predict_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)

    assert names == ["SST-2-run1-test-first1-last.tsv"]
    assert "Wrote 1 prediction to" in dialog.message
    assert len((tmp_path / "test-predictions.tsv").read_text(encoding="utf-8").splitlines()) == 2
    dialog.close()


def test_compare_view_paired_test(qtbot, window, store, glue_dir):
    _train_tiny_run(glue_dir, store)
    _train_tiny_run(glue_dir, store)
    window.history.refresh()
    view = window.compare_view

    window.history.select_runs([1])
    assert not view.paired_button.isEnabled()
    window.history.select_runs([1, 2])
    assert view.paired_button.isEnabled()

    view.paired_button.click()
    assert not view.paired_button.isEnabled()
    qtbot.waitUntil(view.paired_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)

    message = view.paired_message
    assert "Paired test of #1 and #2 on the same 80 rows of SST-2 dev" in message
    assert "accuracy: #1 " in message
    assert "(95% interval " in message
    assert "McNemar's exact test of accuracy" in message

    # Another selection clears the result, which belonged to the two runs.
    window.history.select_runs([1])
    assert view.paired_message == ""


def test_paired_test_asks_for_moved_folder(qtbot, window, store, glue_dir, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copy / "SST-2")
    for _ in range(2):
        arguments = [
            "run", "--task", "sst2", "--data-dir", str(copy), "--teachers", "minilm", "--tokenizer", "minilm",
            "--train-limit", "160", "--dev-limit", "80", "--epochs", "1", "--d-model", "32", "--layers", "1",
            "--heads", "4", "--max-seq-len", "48", "--db", str(store.path), "--quiet",
        ]
        assert main(arguments) == 0
    moved = tmp_path / "moved"
    copy.rename(moved)
    window.history.refresh()
    window.history.select_runs([1, 2])
    view = window.compare_view

    requested_folders = []
    monkeypatch.setattr(view, "choose_glue_folder", lambda missing: requested_folders.append(missing) or "")
    view.paired_button.click()
    assert requested_folders == [str(copy)]
    assert f"The runs' glue_data folder {copy} is missing" in view.paired_message

    monkeypatch.setattr(view, "choose_glue_folder", lambda missing: str(moved))
    view.paired_button.click()
    qtbot.waitUntil(view.paired_button.isEnabled, timeout=PREDICTION_TIMEOUT_MS)
    assert "Paired test of #1 and #2 on the same 80 rows of SST-2 dev" in view.paired_message
    assert "#2 − #1 " in view.paired_message
