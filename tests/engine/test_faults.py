"""Faults that must leave the run store whole: interrupts, out of memory, bad checkpoints, full or read-only disks."""

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.config import RunConfig
from engine.run_store import RunStore
from engine.student import Student
from engine.trainer import resume_distillation, run_distillation
from tests.disk_faults import fill_disk_at_write


def _config(glue_dir, **training) -> RunConfig:
    return RunConfig.from_dict(
        {
            "task": "sst2",
            "data": {"glue_dir": str(glue_dir), "train_limit": 240, "dev_limit": 80},
            "student": {"tokenizer": "minilm", "d_model": 32, "n_layers": 1, "n_heads": 4, "max_seq_len": 48},
            "distillation": {"teachers": ["minilm"]},
            "training": {"epochs": 2, "batch_size": 32, "evals_per_epoch": 1, "checkpoint_every_steps": 2, **training},
        }
    )


def _cli_args(glue_dir, db, epochs=2):
    return [
        "run", "--task", "sst2", "--data-dir", str(glue_dir), "--teachers", "minilm", "--tokenizer", "minilm",
        "--train-limit", "240", "--dev-limit", "80", "--epochs", str(epochs), "--d-model", "32", "--layers", "1",
        "--heads", "4", "--max-seq-len", "48", "--evals-per-epoch", "1", "--db", str(db), "--quiet",
    ]


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        MemoryError(),
    ],
    ids=["device", "host"],
)
def test_out_of_memory_fails_with_smaller_batch_hint(glue_dir, tmp_path, monkeypatch, error):
    calls = {"count": 0}
    original = Student.forward

    def forward(self, *args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Student, "forward", forward)
    store = RunStore(tmp_path / "runs.sqlite3")

    result = run_distillation(_config(glue_dir), store)

    assert result.status == "failed"
    assert "Out of memory" in result.error
    assert "batch size 32" in result.error
    assert "Lower training.batch_size (e.g. to 16)" in result.error
    record = store.get_run(result.run_id)
    assert record.status == "failed" and record.error == result.error
    assert store.count_metrics(result.run_id) > 0


def test_ctrl_c_cancels_and_keeps_curves(glue_dir, tmp_path):
    db = tmp_path / "runs.sqlite3"
    script = f"import sys; from engine.cli import main; sys.exit(main({_cli_args(glue_dir, db, epochs=40)!r}))"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while _metric_count(db) < 10:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    # The signal can arrive during an evaluation, which stops between batches, not after a step.
    assert "Cancelling after the current step (press Ctrl-C again" in stderr or "Cancelling (press Ctrl-C again" in stderr
    assert f"Resume it with `lampreia run --resume 1 --db {db}`" in stdout
    store = RunStore(db)
    record = store.get_run(1)
    assert record.status == "cancelled"
    assert store.count_metrics(1) >= 10
    assert "last" in store.artifacts(1)


def _metric_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            return connection.execute("SELECT count(*) FROM metrics").fetchone()[0]
    except sqlite3.Error:
        return 0


def _cancelled_run(glue_dir, tmp_path) -> tuple[RunStore, int, Path]:
    from engine.events import CancellationToken, StepLogged

    store = RunStore(tmp_path / "runs.sqlite3")
    cancel = CancellationToken()

    def stop(event):
        if isinstance(event, StepLogged) and event.step >= 5:
            cancel.cancel()

    result = run_distillation(_config(glue_dir), store, stop, cancel)
    assert result.status == "cancelled"
    return store, result.run_id, store.artifacts(result.run_id)["last"][0]


def test_truncated_checkpoint_is_rejected_on_resume(glue_dir, tmp_path, capsys):
    store, run_id, checkpoint = _cancelled_run(glue_dir, tmp_path)
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    metrics_before = store.count_metrics(run_id)

    code = main(["run", "--resume", str(run_id), "--db", str(store.path), "--quiet"])

    error = capsys.readouterr().err
    assert code == 2
    assert "is truncated or corrupted" in error
    assert f"--from-run {run_id})" in error
    assert store.get_run(run_id).status == "cancelled"
    assert store.count_metrics(run_id) == metrics_before


def test_resume_without_data_folder_keeps_run_resumable(glue_dir, tmp_path, capsys):
    copied = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copied / "SST-2")
    store, run_id, _ = _cancelled_run(copied, tmp_path)
    moved = tmp_path / "moved"
    copied.rename(moved)

    code = main(["run", "--resume", str(run_id), "--db", str(store.path), "--quiet"])

    error = capsys.readouterr().err
    assert code == 2
    assert f"The glue_data folder {str(copied)!r} does not exist" in error
    assert f"--from-run {run_id}" in error
    assert "Choose the folder" not in error  # a new run's hint; a resume cannot choose another folder
    assert store.get_run(run_id).status == "cancelled"

    moved.rename(copied)
    assert resume_distillation(run_id, store).status == "finished"


def test_resume_with_malformed_row_names_it(glue_dir, tmp_path, capsys, caplog):
    copied = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copied / "SST-2")
    store, run_id, _ = _cancelled_run(copied, tmp_path)
    train = copied / "SST-2" / "train.tsv"
    original = train.read_text(encoding="utf-8")
    header, *rows = original.splitlines(keepends=True)
    train.write_text("".join([header, *rows[:4], "a bad row\twith\textra fields\n", *rows[4:]]), encoding="utf-8")

    with caplog.at_level(logging.INFO, logger="engine.trainer"):
        code = main(["run", "--resume", str(run_id), "--db", str(store.path), "--quiet"])

    error = capsys.readouterr().err
    assert code == 2
    assert any(record.message.startswith(f"The resume of run {run_id} was rejected before it started: 1 malformed row in") for record in caplog.records)
    assert "1 malformed row in" in error
    assert "line 6: expected 2 tab-separated fields, found 3" in error
    assert f"Run {run_id} resumes with the settings it was started with and is left as it was" in error
    assert "torchrun" not in error
    assert store.get_run(run_id).status == "cancelled"

    train.write_text(original, encoding="utf-8")
    assert resume_distillation(run_id, store).status == "finished"


def test_ctrl_c_during_checks_records_nothing(glue_dir, tmp_path, monkeypatch, capsys):
    import engine.trainer

    checks = engine.trainer.Trainer._check_student_fits

    def interrupted_checks(self):
        checks(self)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the run's settings are checked

    monkeypatch.setattr(engine.trainer.Trainer, "_check_student_fits", interrupted_checks)
    db = tmp_path / "runs.sqlite3"

    code = main(_cli_args(glue_dir, db))

    assert code == 130
    assert "stopped before the run was recorded; nothing was stored." in capsys.readouterr().err
    assert RunStore(db).list_runs() == []


def test_student_too_large_for_memory_records_no_run(glue_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("engine.student.available_memory", lambda device: 2 * 1024**3)
    config = _config(glue_dir).with_overrides({"student.d_model": 4096, "student.n_layers": 8, "student.n_heads": 8})
    store = RunStore(tmp_path / "runs.sqlite3")

    result = run_distillation(config, store)

    assert result.status == "failed"
    assert result.run_id is None
    assert "student.d_model: d_model 4096 with 8 layers has at least 1,61" in result.error
    assert "more than the 2.0 GiB free in RAM" in result.error
    assert "(CLI: --d-model, --layers)" in result.error
    assert store.list_runs() == []


def test_unexpected_error_names_the_log_file(glue_dir, tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Student, "forward", broken)
    handler = logging.FileHandler(tmp_path / "lampreia.log")
    logging.getLogger().handlers.insert(0, handler)  # first, so that it is the file named
    try:
        result = run_distillation(_config(glue_dir, epochs=1), RunStore(tmp_path / "runs.sqlite3"))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()

    assert result.status == "failed"
    assert f"Unexpected error: RuntimeError: boom. The full traceback is in the log file {tmp_path / 'lampreia.log'}" in result.error
    assert "Traceback" in (tmp_path / "lampreia.log").read_text(encoding="utf-8")


def test_resume_on_changed_rows_is_refused(glue_dir, tmp_path):
    from engine.events import CancellationToken, StepLogged

    copied = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copied / "SST-2")
    store, cancel = RunStore(tmp_path / "runs.sqlite3"), CancellationToken()

    def stop_after_first_evaluation(event) -> None:
        if isinstance(event, StepLogged) and event.step >= 10:
            cancel.cancel()

    run_id = run_distillation(_config(copied), store, stop_after_first_evaluation, cancel).run_id
    stored = store.get_run(run_id)
    assert stored.best_metrics
    train = copied / "SST-2" / "train.tsv"
    original = train.read_text(encoding="utf-8")
    header, first, second, *rest = original.splitlines(keepends=True)
    train.write_text("".join([header, second, first, *rest]), encoding="utf-8")  # the same rows, two swapped

    changed = resume_distillation(run_id, store)

    assert changed.status == "failed"
    assert f"The GLUE rows that run {run_id} reads from {copied} are not those it trained on before it stopped" in changed.error
    assert f"Changed: the train split ({train})." in changed.error
    assert f"Run {run_id} is left as it was." in changed.error
    assert f"lampreia run --from-run {run_id}" in changed.error
    assert changed.teacher_forward_passes == 0  # rejected before the teachers embed the changed rows
    after = store.get_run(run_id)
    assert after.status == "cancelled"  # rejected before the run was claimed
    assert after.best_metrics == stored.best_metrics  # nothing recorded is lost
    assert after.final_metrics == stored.final_metrics
    assert after.best_step == stored.best_step
    assert after.error == stored.error
    train.write_text(original, encoding="utf-8")
    dev = copied / "SST-2" / "dev.tsv"
    dev_rows = dev.read_text(encoding="utf-8")
    dev.write_text(dev_rows.replace("\t0\n", "\t1\n", 1), encoding="utf-8")  # one dev label changed

    changed_dev = resume_distillation(run_id, store)

    assert f"Changed: the dev split ({dev})." in changed_dev.error
    dev.write_text(dev_rows, encoding="utf-8")
    assert resume_distillation(run_id, store).status == "finished"


@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline"])
def test_resume_on_changed_hub_rows(glue_dir, tmp_path, monkeypatch, offline):
    import engine.trainer
    from engine.events import CancellationToken, StepLogged

    if not offline:
        for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            monkeypatch.delenv(variable, raising=False)

    # Rows "from the Hub" are the copied folder's, which the test then changes.
    copied = tmp_path / "glue"
    shutil.copytree(glue_dir / "SST-2", copied / "SST-2")
    read_folder = engine.trainer.load_split
    monkeypatch.setattr(engine.trainer, "load_split", lambda task, split, folder, *rest: read_folder(task, split, copied, *rest))
    config = RunConfig.from_dict({**_config(glue_dir).to_dict(), "data": {"glue_dir": None, "train_limit": 240, "dev_limit": 80}})
    store, cancel = RunStore(tmp_path / "runs.sqlite3"), CancellationToken()

    def stop_after_first_evaluation(event) -> None:
        if isinstance(event, StepLogged) and event.step >= 10:
            cancel.cancel()

    run_id = run_distillation(config, store, stop_after_first_evaluation, cancel).run_id
    stored = store.get_run(run_id)
    train = copied / "SST-2" / "train.tsv"
    header, first, second, *rest = train.read_text(encoding="utf-8").splitlines(keepends=True)
    train.write_text("".join([header, second, first, *rest]), encoding="utf-8")

    changed = resume_distillation(run_id, store)

    assert changed.status == "failed"
    assert "reads from the Hugging Face Hub are not those it trained on" in changed.error
    assert changed.teacher_forward_passes == 0
    after = store.get_run(run_id)
    assert after.best_metrics == stored.best_metrics
    assert after.best_step == stored.best_step
    if offline:
        # The local cache is read before the claim, so the run keeps its status.
        assert "is left as it was" in changed.error
        assert after.status == "cancelled"
    else:
        # Online rows are read after the claim, because that can mean a download: the run is marked failed.
        assert "is left as it was" not in changed.error
        assert after.status == "failed"


def test_offline_resume_without_cached_tokenizer_keeps_run_resumable(glue_dir, tmp_path, monkeypatch):
    store, run_id, _ = _cancelled_run(glue_dir, tmp_path)
    record = store.get_run(run_id)
    # The run's stored settings name a Hub tokenizer that is not in this machine's cache.
    config = dict(record.config)
    config["student"] = {**config["student"], "tokenizer": "lampreia-tests/not-cached-tokenizer"}
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE runs SET config_json = ? WHERE id = ?", (json.dumps(config), run_id))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    result = resume_distillation(run_id, store)

    assert result.status == "failed"
    assert result.run_id is None
    assert "'lampreia-tests/not-cached-tokenizer' is not in the local Hugging Face cache" in result.error
    assert "unset HF_HUB_OFFLINE" in result.error
    assert f"--from-run {run_id}" in result.error
    assert store.get_run(run_id).status == "cancelled"


def test_corrupted_checkpoint_fails_its_checksum(glue_dir, tmp_path):
    store, run_id, checkpoint = _cancelled_run(glue_dir, tmp_path)
    data = bytearray(checkpoint.read_bytes())
    data[-100] ^= 0xFF
    checkpoint.write_bytes(bytes(data))

    from engine.errors import CheckpointError

    with pytest.raises(CheckpointError, match="do not match the checksum") as raised:
        resume_distillation(run_id, store)
    assert f"--from-run {run_id})" in str(raised.value)


def test_finished_run_cannot_be_resumed(glue_dir, tmp_path):
    from engine.errors import CheckpointError

    store = RunStore(tmp_path / "runs.sqlite3")
    result = run_distillation(_config(glue_dir, epochs=1), store)

    with pytest.raises(CheckpointError, match="already finished"):
        resume_distillation(result.run_id, store)


def _namespace_available() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "-r", "-m", "true"], capture_output=True)
    return probe.returncode == 0


needs_namespace = pytest.mark.skipif(
    not _namespace_available(),
    reason="needs `unshare -r -m` (util-linux with user namespaces) to mount a small or read-only filesystem",
)


def _run_in_namespace(setup: str, python: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python`` in a private mount namespace after the shell ``setup`` has mounted its folders."""
    script = f"{setup}\nexec {sys.executable} -c {_quote(python)}\n"
    return subprocess.run(["unshare", "-r", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@needs_namespace
@pytest.mark.slow
def test_read_only_database_fails_before_training(glue_dir, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    assert main(_cli_args(glue_dir, folder / "runs.sqlite3", epochs=1)) == 0
    runs_before = [(r.id, r.status) for r in RunStore(folder / "runs.sqlite3").list_runs()]
    python = textwrap.dedent(
        f"""
        import sys
        from engine.cli import main
        sys.exit(main({_cli_args(glue_dir, folder / 'runs.sqlite3', epochs=1)!r}))
        """
    )

    result = _run_in_namespace(f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}", python)

    assert result.returncode == 2, result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("lampreia: ")
    assert "read-only" in last_line or "Cannot open" in last_line
    assert "--db" in last_line
    assert [(r.id, r.status) for r in RunStore(folder / "runs.sqlite3").list_runs()] == runs_before


@needs_namespace
@pytest.mark.slow
def test_disk_full_during_run_stops_cleanly(glue_dir, tmp_path):
    folder = tmp_path / "small-disk"
    folder.mkdir()
    # The database lives on the small disk, which disappears with the namespace, so the
    # program reports the store's state itself after the CLI returns.
    python = textwrap.dedent(
        f"""
        import sys
        from engine.cli import main
        from engine.run_store import RunStore
        code = main({_cli_args(glue_dir, folder / 'runs.sqlite3', epochs=30) + ["--d-model", "128"]!r})
        store = RunStore({str(folder / 'runs.sqlite3')!r})
        record = store.get_run(1)
        print("STATE", record.status, store.count_metrics(1), store.integrity_check(), file=sys.stderr)
        sys.exit(code)
        """
    )

    # 3 MB: room for the database, the 1 MB reserve and one resume checkpoint of the d_model 128
    # student (weights and AdamW moments, about 1.5 MB), but not for writing the next one beside it.
    result = _run_in_namespace(f"mount -t tmpfs -o size=3m tmpfs {folder}", python)

    assert result.returncode == 1, result.stderr
    # Either the checkpoint or the database fills the disk first; both messages say so.
    failure = result.stderr.split("run 1 failed: ")[1].splitlines()[0]
    assert "disk is full" in failure
    assert "Free disk space" in failure
    status, metric_rows, integrity = result.stderr.split("STATE ")[1].split()
    assert status == "failed"
    assert int(metric_rows) > 0
    assert integrity == "ok"


def test_failed_run_resumes_from_checkpoint(glue_dir, tmp_path, monkeypatch, capsys):
    import engine.trainer

    db = tmp_path / "runs.sqlite3"
    written = fill_disk_at_write(monkeypatch, "last.safetensors", 2)
    assert main(_cli_args(glue_dir, db)) == 1
    error = capsys.readouterr().err
    failed = RunStore(db).get_run(1)
    assert failed.status == "failed"
    assert failed.checkpoint_step is not None
    assert f"resume it from its checkpoint at step {failed.checkpoint_step} with `lampreia run --resume 1 --db {db}`" in error

    assert main(["show", "1", "--db", str(db)]) == 0
    assert f"resume it from its checkpoint at step {failed.checkpoint_step}" in capsys.readouterr().out

    monkeypatch.setattr(engine.trainer, "write_checkpoint", written)
    assert main(["run", "--resume", "1", "--db", str(db), "--quiet"]) == 0
    store = RunStore(db)
    assert store.get_run(1).status == "finished"
    losses = [point.step for point in store.metric_points(1) if point.name == "train/loss_total"]
    assert len(losses) == len(set(losses))  # the steps after the checkpoint were logged once


def test_failed_best_checkpoint_is_not_recorded_as_best(glue_dir, tmp_path, monkeypatch):
    fill_disk_at_write(monkeypatch, "best.safetensors", 1)
    store = RunStore(tmp_path / "runs.sqlite3")
    result = run_distillation(_config(glue_dir), store)

    assert result.status == "failed"
    assert "The disk is full" in result.error
    record = store.get_run(result.run_id)
    # The first evaluation's best checkpoint was never written, so no best step names it.
    assert record.best_step is None
    assert record.best_metrics == {}
    assert "best" not in store.artifacts(result.run_id)
    assert record.final_metrics  # the evaluation itself is kept


def test_stop_during_glue_download_cancels_the_run(glue_dir, tmp_path, monkeypatch):
    import threading

    import datasets

    from engine.events import CancellationToken, PhaseChanged

    released = threading.Event()

    def slow_load_dataset(name, config, split):
        released.wait(timeout=60)  # a download that only the test ends
        raise AssertionError("the run should have stopped waiting")

    monkeypatch.setattr(datasets, "load_dataset", slow_load_dataset)
    # Online, the rows are read after the run is recorded, where a stop can end the wait.
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    config = RunConfig.from_dict({**_config(glue_dir).to_dict(), "data": {"glue_dir": None, "train_limit": 240, "dev_limit": 80}})
    cancel = CancellationToken()

    def press_stop(event) -> None:
        if isinstance(event, PhaseChanged) and event.phase == "loading data":
            threading.Timer(0.3, cancel.cancel).start()

    store = RunStore(tmp_path / "runs.sqlite3")
    result = run_distillation(config, store, press_stop, cancel)
    released.set()

    assert result.status == "cancelled"
    assert store.get_run(result.run_id).status == "cancelled"


def test_stop_during_teacher_download_cancels_the_run(glue_dir, tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils.tqdm import _create_progress_bar

    from engine.events import CancellationToken

    # Online, so that the Hub id passes the cache check before the run and is downloaded in it.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    cancel = CancellationToken()
    chunks: list[int] = []

    def slow_snapshot_download(repo_id, allow_patterns=None, tqdm_class=None, **kwargs):
        # Bytes arrive for a large weight file; the user presses Stop after the fifth chunk.
        bar = _create_progress_bar(cls=tqdm_class, log_level=30, total=10_000, unit="B")
        for chunk in range(10_000):
            if chunk == 5:
                cancel.cancel()
            bar.update(1)
            chunks.append(chunk)
        raise AssertionError("the download should have been cancelled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", slow_snapshot_download)
    config = RunConfig.from_dict({**_config(glue_dir).to_dict(), "distillation": {"teachers": ["someone/large-model"]}})
    store = RunStore(tmp_path / "runs.sqlite3")

    result = run_distillation(config, store, cancel=cancel)

    assert result.status == "cancelled"
    assert store.get_run(result.run_id).status == "cancelled"
    assert len(chunks) == 5


def test_failed_replace_keeps_the_old_file(tmp_path):
    from engine.paths import replaced_text_file

    target = tmp_path / "curves.csv"
    target.write_text("earlier export\n")

    with pytest.raises(OSError, match="No space left"):
        with replaced_text_file(target) as handle:
            handle.write("partial,row\n")
            raise OSError(28, "No space left on device")

    assert target.read_text() == "earlier export\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["curves.csv"]

    with replaced_text_file(target) as handle:
        handle.write("new export\n")

    assert target.read_text() == "new export\n"
