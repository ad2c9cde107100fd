"""Run store: records, metrics, snapshots, concurrent readers and writers, interrupted runs."""

import multiprocessing
import os
import sqlite3
import threading
import time

import numpy as np
import pytest

from engine.errors import StoreError
from engine.run_store import AttentionSnapshot, MetricPoint, RunStore


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    yield store
    store.close()


def _config(task="sst2"):
    return {"task": task, "distillation": {"teachers": ["minilm"]}, "student": {"d_model": 64, "n_layers": 2, "n_heads": 4}}


def test_database_uses_wal_mode(store):
    connection = sqlite3.connect(store.path)

    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_run_round_trip(store):
    run_id = store.create_run(_config(), name="first", device="cpu", versions={"torch": "x"})
    store.set_prepared(run_id, parameter_count=123, baseline={"dev/accuracy": 0.5})
    store.finish_run(run_id, "finished", final_metrics={"dev/accuracy": 0.7}, best_metrics={"dev/accuracy": 0.75}, best_step=10)

    record = store.get_run(run_id)

    assert record.status == "finished"
    assert record.name == "first"
    assert record.parameter_count == 123
    assert record.baseline == {"dev/accuracy": 0.5}
    assert record.best_metrics == {"dev/accuracy": 0.75}
    assert record.best_step == 10
    assert record.teachers == ("minilm",)
    assert record.student_size == "d64×2L×4H"


def test_metrics_are_returned_by_name_in_step_order(store):
    run_id = store.create_run(_config(), name="m", device="cpu", versions={})
    store.log_metrics(run_id, [MetricPoint(2, 0.2, "train/loss_total", 0.5), MetricPoint(1, 0.1, "train/loss_total", 0.9)])
    store.log_metrics(run_id, [MetricPoint(2, 0.2, "dev/accuracy", 0.6)])

    series = store.metric_series(run_id)

    assert series["train/loss_total"][0].tolist() == [1, 2]
    assert series["train/loss_total"][1].tolist() == [0.9, 0.5]
    assert store.metric_names(run_id) == ["dev/accuracy", "train/loss_total"]


def test_non_finite_metrics_are_never_stored(store):
    run_id = store.create_run(_config(), name="nan", device="cpu", versions={})
    store.log_metrics(run_id, [MetricPoint(1, 0.1, "train/loss_total", float("nan")), MetricPoint(1, 0.1, "x", float("inf"))])

    assert store.count_metrics(run_id) == 0


def test_attention_snapshot_round_trip(store):
    run_id = store.create_run(_config(), name="a", device="cpu", versions={})
    maps = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    store.log_attention(run_id, AttentionSnapshot(5, ("a", "b", "c", "d"), maps))
    store.log_attention(run_id, AttentionSnapshot(9, ("a", "b", "c", "d"), maps * 2))

    latest = store.attention_snapshot(run_id)
    first = store.attention_snapshot(run_id, step=5)

    assert latest.step == 9
    assert np.array_equal(latest.maps, maps * 2)
    assert np.array_equal(first.maps, maps)
    assert first.tokens == ("a", "b", "c", "d")
    assert store.attention_steps(run_id) == [5, 9]


def test_rename_notes_tags_and_delete(store, tmp_path):
    run_id = store.create_run(_config(), name="old", device="cpu", versions={})
    store.rename_run(run_id, "  new name ")
    store.set_notes(run_id, "seed study")
    store.set_tags(run_id, ["b", "a", "a", " "])
    artifact_dir = store.artifact_dir(run_id)
    artifact_dir.mkdir(parents=True)
    (artifact_dir / "best.safetensors").write_bytes(b"x")

    record = store.get_run(run_id)
    store.delete_run(run_id)

    assert (record.name, record.notes, record.tags) == ("new name", "seed study", ("a", "b"))
    assert store.list_runs() == []
    assert not artifact_dir.exists()


def test_tags_are_unique_ignoring_case(store):
    run_id = store.create_run(_config(), name="tagged", device="cpu", versions={})
    store.set_tags(run_id, ["mrpc", "Baseline", " baseline ", "", "BASELINE", "Seed"])

    assert store.get_run(run_id).tags == ("Baseline", "mrpc", "Seed")


def test_long_name_is_kept_whole(store):
    run_id = store.create_run(_config(), name="short", device="cpu", versions={})
    store.rename_run(run_id, "x" * 300)

    assert store.get_run(run_id).name == "x" * 300


def test_missing_run_is_a_clear_error(store):
    with pytest.raises(StoreError, match="Run 42 does not exist"):
        store.get_run(42)


def test_artifact_dir_ignores_run_names(store):
    run_id = store.create_run(_config(), name="../../etc", device="cpu", versions={})

    assert store.artifact_dir(run_id).name == f"run-{run_id}"
    assert store.artifact_dir(run_id).parent.parent == store.path.parent


def test_reader_and_writer_at_once(store):
    run_id = store.create_run(_config(), name="rw", device="cpu", versions={})
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        reader = RunStore(store.path, recover_interrupted=False)
        try:
            while not stop.is_set():
                reader.list_runs()
                reader.metric_series(run_id)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for step in range(200):
            store.log_metrics(run_id, [MetricPoint(step, 0.0, "train/loss_total", float(step))])
    finally:
        stop.set()
        thread.join()

    assert errors == []
    assert store.count_metrics(run_id) == 200


def _write_many(path: str, worker: int, rows: int, barrier) -> None:
    store = RunStore(path, recover_interrupted=False)
    run_id = store.create_run(_config(), name=f"writer-{worker}", device="cpu", versions={})
    barrier.wait()
    for start in range(0, rows, 50):
        store.log_metrics(run_id, [MetricPoint(step, 0.0, "train/loss_total", float(step)) for step in range(start, start + 50)])
    store.finish_run(run_id, "finished")
    store.close()


def test_two_processes_writing_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite3")
    RunStore(path).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_write_many, args=(path, i, 3000, barrier)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)

    assert [w.exitcode for w in workers] == [0, 0]
    store = RunStore(path)
    runs = store.list_runs()
    assert len(runs) == 2
    assert all(r.status == "finished" for r in runs)
    assert [store.count_metrics(r.id) for r in runs] == [3000, 3000]
    assert store.integrity_check() == "ok"


def test_dead_owner_marks_run_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(_config(), name="crashed", device="cpu", versions={})
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE runs SET owner_pid = ? WHERE id = ?", (_dead_pid(), run_id))

    reopened = RunStore(store.path)

    record = reopened.get_run(run_id)
    assert record.status == "interrupted"
    assert "stopped without finishing" in record.error


def test_live_owner_keeps_run_running(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(_config(), name="alive", device="cpu", versions={})

    reopened = RunStore(store.path)

    assert reopened.get_run(run_id).status == "running"


def test_stale_heartbeat_marks_run_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(_config(), name="other host", device="cpu", versions={})
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE runs SET owner_host = 'elsewhere', heartbeat_at = ? WHERE id = ?", (time.time() - 3600, run_id))

    assert RunStore(store.path).get_run(run_id).status == "interrupted"


def _dead_pid() -> int:
    process = multiprocessing.get_context("spawn").Process(target=os.getpid)
    process.start()
    process.join()
    return process.pid


def test_locked_database_times_out_with_clear_message(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3", busy_timeout_s=0.1, write_timeout_s=0.5)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as caught:
            store.create_run(_config(), name="blocked", device="cpu", versions={})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert "stayed locked" in str(caught.value)


def test_not_a_database_is_reported(tmp_path):
    path = tmp_path / "runs.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match="not a valid Lampreia run database"):
        RunStore(path)


def test_newer_schema_is_reported(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")

    with pytest.raises(StoreError, match="newer Lampreia"):
        RunStore(store.path)


def test_data_folder_that_is_a_file_is_named(tmp_path, monkeypatch):
    a_file = tmp_path / "afile"
    a_file.write_text("", encoding="utf-8")
    monkeypatch.setenv("LAMPREIA_DATA_DIR", str(a_file))

    with pytest.raises(StoreError) as raised:
        RunStore()

    assert f"{a_file} is a file, not a folder" in str(raised.value)
    assert "LAMPREIA_DATA_DIR" in str(raised.value)


class _Clock:
    """Stands in for time.time() in the run store, so that sessions have known lengths."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_resume_excludes_pause_from_duration(store, monkeypatch):
    clock = _Clock(1_000.0)
    monkeypatch.setattr("engine.run_store.time.time", clock)
    run_id = store.create_run(_config(), name="paused", device="cpu", versions={})
    clock.now = 1_060.0
    store.finish_run(run_id, "cancelled")
    assert store.get_run(run_id).duration_seconds == pytest.approx(60.0)

    clock.now = 50_000.0  # resumed the next day
    store.claim_run(run_id, "cpu")
    clock.now = 50_030.0
    store.heartbeat(run_id)
    assert store.get_run(run_id).duration_seconds == pytest.approx(90.0)

    clock.now = 50_045.0
    store.finish_run(run_id, "finished")
    record = store.get_run(run_id)
    assert record.duration_seconds == pytest.approx(105.0)
    assert record.started_at == pytest.approx(1_000.0)


def test_interrupted_session_ends_at_heartbeat(tmp_path, monkeypatch):
    clock = _Clock(1_000.0)
    monkeypatch.setattr("engine.run_store.time.time", clock)
    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(_config(), name="killed", device="cpu", versions={})
    clock.now = 1_200.0
    store.heartbeat(run_id)
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE runs SET owner_pid = ? WHERE id = ?", (_dead_pid(), run_id))

    clock.now = 9_000.0
    reopened = RunStore(store.path)
    assert reopened.get_run(run_id).status == "interrupted"
    reopened.claim_run(run_id, "cpu")
    clock.now = 9_010.0
    reopened.finish_run(run_id, "finished")

    assert reopened.get_run(run_id).duration_seconds == pytest.approx(210.0)


def _database_at_first_revision(path, *statements):
    """Create a database at schema revision 0001, as Lampreia wrote it before 0002, and run ``statements`` in it."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    config = Config()
    config.set_main_option("script_location", str(resources.files("engine.migrations")))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


def test_first_schema_database_is_migrated(tmp_path, caplog):
    path = tmp_path / "runs.sqlite3"
    _database_at_first_revision(
        path,
        "INSERT INTO runs (status, task, config_json, created_at, started_at, finished_at, heartbeat_at) "
        "VALUES ('finished', 'sst2', '{\"task\": \"sst2\"}', 900.0, 1000.0, 1100.0, 1090.0)",
    )

    with caplog.at_level("WARNING", logger="engine.run_store"):
        store = RunStore(path)
    try:
        (record,) = store.list_runs()
        assert record.duration_seconds == pytest.approx(100.0)
        assert record.config == {"task": "sst2"}
        store.claim_run(record.id, "cpu")
        assert store.get_run(record.id).active_seconds == pytest.approx(100.0)
    finally:
        store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0002"
    backup = tmp_path / "runs.sqlite3.backup-0001"
    with sqlite3.connect(backup) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
        assert connection.execute("SELECT finished_at FROM runs").fetchone()[0] == 1100.0
    assert "from schema revision 0001 to 0002" in caplog.text
    assert str(backup) in caplog.text


def test_current_database_is_not_backed_up(tmp_path, caplog):
    RunStore(tmp_path / "runs.sqlite3").close()

    with caplog.at_level("WARNING", logger="engine.run_store"):
        RunStore(tmp_path / "runs.sqlite3").close()

    assert [path.name for path in tmp_path.iterdir() if "backup" in path.name] == []
    assert "Upgraded" not in caplog.text


def test_folder_as_database_path_is_named(tmp_path):
    with pytest.raises(StoreError, match="is a folder") as caught:
        RunStore(tmp_path)

    assert str(tmp_path / "runs.sqlite3") in str(caught.value)


def test_read_only_store_reads_and_rejects_writes(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(_config(), name="kept", device="cpu", versions={})
    store.log_metrics(run_id, [MetricPoint(1, 0.1, "train/loss_total", 0.5)])
    store.close()
    before = (tmp_path / "runs.sqlite3").read_bytes()

    reader = RunStore(tmp_path / "runs.sqlite3", read_only=True)

    assert reader.get_run(run_id).name == "kept"
    assert [point.value for point in reader.metric_points(run_id)] == [0.5]
    with pytest.raises(StoreError, match="read-only"):
        reader.create_run(_config(), name="new", device="cpu", versions={})
    reader.close()
    assert (tmp_path / "runs.sqlite3").read_bytes() == before


def test_read_only_store_shows_lost_run_interrupted(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    run_id = store.create_run(_config(), name="killed on a cluster", device="cpu", versions={})
    store.close()
    with sqlite3.connect(tmp_path / "runs.sqlite3") as connection:  # its last heartbeat an hour ago
        connection.execute("UPDATE runs SET heartbeat_at = ?, owner_host = 'cluster-node-7' WHERE id = ?", (time.time() - 3600, run_id))
    connection.close()
    before = (tmp_path / "runs.sqlite3").read_bytes()

    reader = RunStore(tmp_path / "runs.sqlite3", read_only=True)
    listed, fetched = reader.list_runs()[0], reader.get_run(run_id)
    interrupted, running = reader.list_runs(["interrupted"]), reader.list_runs(["running"])
    reader.close()

    assert listed.status == "interrupted"
    assert fetched.status == "interrupted"
    assert fetched.error.endswith("The read-only database still records it as running.")
    assert [record.id for record in interrupted] == [run_id]
    assert running == []
    assert (tmp_path / "runs.sqlite3").read_bytes() == before


def test_read_only_store_leaves_no_files_beside_it(tmp_path):
    RunStore(tmp_path / "runs.sqlite3").close()

    reader = RunStore(tmp_path / "runs.sqlite3", read_only=True)
    runs = reader.list_runs()
    reader.close()

    assert runs == []
    # A -shm or -wal file made here would keep the database's read-only permissions.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["runs.sqlite3"]


def test_read_only_store_reads_wal_changes(tmp_path):
    import shutil

    writer = RunStore(tmp_path / "live" / "runs.sqlite3")
    run_id = writer.create_run(_config(), name="killed mid-run", device="cpu", versions={})
    # Copied while the writer is still open, as after a kill: the run is only in the -wal file.
    (tmp_path / "copy").mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(tmp_path / "live" / f"runs.sqlite3{suffix}", tmp_path / "copy" / f"runs.sqlite3{suffix}")
    writer.close()

    reader = RunStore(tmp_path / "copy" / "runs.sqlite3", read_only=True)

    assert reader.get_run(run_id).name == "killed mid-run"
    reader.close()
    assert sorted(path.name for path in (tmp_path / "copy").iterdir()) == ["runs.sqlite3", "runs.sqlite3-wal"]


def test_read_only_old_schema_asks_copy(tmp_path):
    path = tmp_path / "runs.sqlite3"
    _database_at_first_revision(path)

    with pytest.raises(StoreError, match="older schema revision 0001") as caught:
        RunStore(path, read_only=True)

    assert "Copy it, with its -wal file and its runs-artifacts folder" in str(caught.value)


def test_database_on_read_only_mount_is_listed(read_only_mount, capsys):
    from engine.cli import main

    assert main(["runs", "--db", str(read_only_mount)]) == 0

    assert "on a share" in capsys.readouterr().out


def test_second_upgrade_keeps_the_first_backup(tmp_path):
    path = tmp_path / "runs.sqlite3"
    _database_at_first_revision(path)
    RunStore(path).close()
    first_backup = (tmp_path / "runs.sqlite3.backup-0001").read_bytes()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"runs.sqlite3{suffix}").unlink(missing_ok=True)
    _database_at_first_revision(path)

    RunStore(path).close()

    backups = sorted(item.name for item in tmp_path.iterdir() if ".backup-0001" in item.name)
    assert len(backups) == 2
    assert (tmp_path / "runs.sqlite3.backup-0001").read_bytes() == first_backup


def test_database_on_read_only_mount_cannot_record(read_only_mount):
    with pytest.raises(StoreError, match="cannot write its folder") as caught:
        RunStore(read_only_mount)

    assert "can still read this one" in str(caught.value)


def test_metric_series_in_logged_order(store):
    run_id = store.create_run(_config(), name="three teachers", device="cpu", versions={})
    store.log_metrics(
        run_id,
        [
            MetricPoint(1, 0.1, "train/weight/roberta", 0.3),
            MetricPoint(1, 0.1, "train/weight/gpt2", 0.3),
            MetricPoint(1, 0.1, "train/weight/distilbert", 0.4),
            MetricPoint(2, 0.2, "train/weight/roberta", 0.2),
            MetricPoint(2, 0.2, "train/weight/gpt2", 0.5),
            MetricPoint(2, 0.2, "train/weight/distilbert", 0.3),
        ],
    )

    series = store.metric_series(run_id)

    assert list(series) == ["train/weight/roberta", "train/weight/gpt2", "train/weight/distilbert"]
    assert series["train/weight/gpt2"][1].tolist() == [0.3, 0.5]
