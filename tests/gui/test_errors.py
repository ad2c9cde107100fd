"""Failures in the worker reach the user as a message, are stored with the run, and never crash the window."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PySide6.QtCore import Qt

from engine.events import RunStarted
from tests.disk_faults import fill_disk_at_write
from tests.gui.conftest import RUN_TIMEOUT_MS, fill_small_run


def _run_and_wait(qtbot, window) -> str:
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(window.run_controls.run_button, Qt.MouseButton.LeftButton)
    return ended.args[0]


def _copy_sst2_with_bad_row(glue_dir: Path, target: Path) -> Path:
    """A glue_data folder whose SST-2 training file has a row without a label on line 3."""
    folder = target / "SST-2"
    folder.mkdir(parents=True)
    train_lines = (glue_dir / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:40]
    train_lines[2] = "this row has no label column"
    (folder / "train.tsv").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text((glue_dir / "SST-2" / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    return target


def _latest_run(store):
    return store.list_runs()[0]


def test_malformed_data_names_line(qtbot, window, glue_dir, tmp_path, monkeypatch, messages, store):
    bad_glue = _copy_sst2_with_bad_row(glue_dir, tmp_path / "glue")
    fill_small_run(qtbot, window, bad_glue, monkeypatch)

    assert _run_and_wait(qtbot, window) == "failed"
    title, text = messages[-1]
    # Rows from a folder are read before the run is recorded, so the history gains no failed run.
    assert title == "The run did not start"
    assert "line 3" in text
    assert "No run was recorded." in text
    assert store.list_runs() == []
    assert window.isVisible()
    assert window.run_controls.run_button.isEnabled()


def test_missing_teacher_folder_reported(qtbot, window, glue_dir, monkeypatch, messages, store):
    fill_small_run(qtbot, window, glue_dir, monkeypatch)
    # A remembered custom teacher whose folder was deleted since it was checked.
    window.config_panel.teacher_list.set_teachers(["/nonexistent/teacher-folder"])

    assert "does not exist or is not a folder" in window.config_panel.editors["distillation.teachers"].error
    assert not window.run_controls.run_button.isEnabled()

    # Deleted between the check and the run: the run rejects it before it is recorded.
    monkeypatch.setattr("workbench.config_panel.check_teacher_sources", lambda specs: None)
    window.config_panel.validate()
    assert _run_and_wait(qtbot, window) == "failed"
    assert "does not exist or is not a folder" in messages[-1][1]
    assert store.list_runs() == []


def test_hub_unreachable_offline_reported(qtbot, window, glue_dir, monkeypatch, messages, store):
    fill_small_run(qtbot, window, glue_dir, monkeypatch)
    window.config_panel.editors["data.glue_dir"].hub_button.setChecked(True)

    assert _run_and_wait(qtbot, window) == "failed"
    title, text = messages[-1]
    assert "Hugging Face Hub" in text
    assert "glue_data" in text
    # Offline, the rows come from the local cache, which is read before the run is recorded.
    assert title == "The run did not start"
    assert store.list_runs() == []


def test_out_of_memory_suggests_smaller_batch(qtbot, window, glue_dir, monkeypatch, messages, store):
    def run_out_of_memory(trainer):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("engine.trainer.Trainer._train", run_out_of_memory)
    fill_small_run(qtbot, window, glue_dir, monkeypatch)

    assert _run_and_wait(qtbot, window) == "failed"
    text = messages[-1][1]
    assert "Out of memory" in text
    assert "batch_size (e.g. to 16)" in text
    assert "batch_size" in _latest_run(store).error


def test_failed_run_with_checkpoint_resumes(qtbot, window, glue_dir, monkeypatch, messages, store):
    import engine.trainer

    written = fill_disk_at_write(monkeypatch, "last.safetensors", 2)
    fill_small_run(qtbot, window, glue_dir, monkeypatch, epochs="2")
    assert _run_and_wait(qtbot, window) == "failed"

    failed = _latest_run(store)
    title, text = messages[-1]
    assert title == f"Run #{failed.id} failed"
    assert "The disk is full" in text
    assert f"Resume in the history continues it from its checkpoint at step {failed.checkpoint_step}." in text
    window.history.refresh()
    window.history.select_runs([failed.id])
    assert window.history.resume_action.isEnabled()

    monkeypatch.setattr(engine.trainer, "write_checkpoint", written)
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        window.history.resume_action.trigger()
    assert ended.args == ["finished"]
    assert store.get_run(failed.id).status == "finished"


def test_failed_run_without_checkpoint_cannot_resume(qtbot, window, glue_dir, monkeypatch, messages, store):
    def run_out_of_memory(trainer):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("engine.trainer.Trainer._train", run_out_of_memory)
    fill_small_run(qtbot, window, glue_dir, monkeypatch)
    assert _run_and_wait(qtbot, window) == "failed"

    failed = _latest_run(store)
    assert "Resume in the history" not in messages[-1][1]
    window.history.refresh()
    window.history.select_runs([failed.id])
    assert not window.history.resume_action.isEnabled()


def test_failure_dialog_names_log_file_once(qtbot, window, messages, store):
    from engine.events import RunFailed
    from engine.logs import log_file_path

    run_id = store.create_run({"task": "sst2"}, name="broken", device="CPU", versions={})
    message = f"Unexpected error: RuntimeError: boom. The full traceback is in the log file {log_file_path()}; please report it."
    window._report_failure(RunFailed(run_id, message, "RuntimeError"))

    text = messages[-1][1]
    assert text.count(str(log_file_path())) == 1
    assert "Details are in the log" not in text


def test_unexpected_worker_error_stored_and_logged(qtbot, window, glue_dir, monkeypatch, messages, store, caplog):
    def broken_trainer(config, run_store, sink, cancel):
        run_id = run_store.create_run(config.to_dict(), name="broken", device="CPU", versions={})
        sink(RunStarted(run_id, "broken", config.to_dict(), "CPU"))
        raise RuntimeError("simulated bug in the trainer")

    monkeypatch.setattr("workbench.run_worker.run_distillation", broken_trainer)
    fill_small_run(qtbot, window, glue_dir, monkeypatch)

    with caplog.at_level(logging.ERROR, logger="workbench.run_worker"):
        assert _run_and_wait(qtbot, window) == "failed"
    assert "RuntimeError: simulated bug in the trainer" in messages[-1][1]
    record = _latest_run(store)
    assert record.status == "failed"
    assert "simulated bug" in record.error
    assert any(r.exc_info and "simulated bug" in str(r.exc_info[1]) for r in caplog.records)


def test_unavailable_device_reported(qtbot, window, glue_dir, monkeypatch, messages):
    # Behave like a machine without a GPU, also where the tests run on one.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fill_small_run(qtbot, window, glue_dir, monkeypatch)
    window.config_panel.editors["training.device"].set_value("cuda")

    assert _run_and_wait(qtbot, window) == "failed"
    title, text = messages[-1]
    assert title == "The run did not start"
    assert "sees no CUDA GPU" in text
    assert "No run was recorded." in text


def test_stop_during_checks_records_nothing(qtbot, window, glue_dir, monkeypatch, store):
    import engine.trainer

    checks = engine.trainer.Trainer._check_student_fits

    def stopped_during_checks(self):
        checks(self)
        self.cancel.cancel()  # as Stop pressed while the run's settings are checked

    monkeypatch.setattr(engine.trainer.Trainer, "_check_student_fits", stopped_during_checks)
    fill_small_run(qtbot, window, glue_dir, monkeypatch)

    assert _run_and_wait(qtbot, window) == "cancelled"
    assert window.statusBar().currentMessage() == "Stopped before the run was recorded; nothing was stored."
    assert store.list_runs() == []
