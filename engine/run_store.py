"""The run store: every run, its metrics, attention snapshots and checkpoints, in one SQLite file.

SQLite runs in WAL mode, in which readers (the GUI's history panel) do not block the writer (the
trainer) and the writer does not block readers. Write transactions start
with ``BEGIN IMMEDIATE``: a deferred transaction that upgrades to a write lock can fail at once with
"database is locked" instead of waiting, which loses rows when two processes write at the same
time. Each write unit is retried until ``write_timeout_s`` has passed, then raises ``StoreError``.

A ``RunStore`` may be shared between threads: every method opens its own short session.
"""

from __future__ import annotations


import json
import logging
import math
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import numpy as np
from sqlalchemy import create_engine, delete, event, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import StoreError
from engine.paths import default_database_path
from engine.store_schema import RUN_STATUSES, SqlArtifact, SqlAttentionSnapshot, SqlMetric, SqlRun

log = logging.getLogger(__name__)

T = TypeVar("T")

# A run whose owner stops updating its heartbeat for this long is considered dead even if the
# owner's process id is in use again (another host, or a reused pid).
STALE_HEARTBEAT_S = 600.0
LOST_RUN_ERROR = "The process running this run stopped without finishing it (killed, crashed or powered off)."

ACTIVE_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: the decoded row of the ``runs`` table."""

    id: int
    name: str
    status: str
    task: str
    config: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    device: str
    versions: dict[str, str]
    parameter_count: int | None
    baseline: dict[str, float]
    final_metrics: dict[str, float]
    best_metrics: dict[str, float]
    best_step: int | None
    checkpoint_step: int | None
    error: str | None
    notes: str
    tags: tuple[str, ...]
    owner_host: str = ""
    owner_pid: int = 0
    active_seconds: float = 0.0  # of the sessions before a resume
    session_started_at: float | None = None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds the run was active: its earlier sessions plus the current (or last) one.

        The time a run sat cancelled or interrupted before a resume is not counted.
        """
        if self.started_at is None:
            return None
        return self.active_seconds + _session_seconds(self.session_started_at or self.started_at, self.finished_at, self.heartbeat_at)

    @property
    def teachers(self) -> tuple[str, ...]:
        return tuple(self.config.get("distillation", {}).get("teachers", ()))

    @property
    def student_size(self) -> str:
        student = self.config.get("student", {})
        return f"d{student.get('d_model', '?')}×{student.get('n_layers', '?')}L×{student.get('n_heads', '?')}H"


@dataclass(frozen=True)
class MetricPoint:
    """One scalar to store: ``name`` like ``train/loss_total`` or ``dev/accuracy``."""

    step: int
    epoch: float
    name: str
    value: float
    wall_time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class AttentionSnapshot:
    """The mixing matrices of one evaluation: ``maps`` has shape (layers, heads, T, T)."""

    step: int
    tokens: tuple[str, ...]
    maps: np.ndarray


def _is_busy(error: BaseException) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def writable(path: Path) -> bool:
    """Return whether this process may write the file or folder ``path``."""
    return os.access(path, os.W_OK)


def readable_only(path: Path) -> bool:
    """Return whether ``path`` is an existing database that this user can read but not write.

    SQLite needs to write the folder too (its -wal and -shm files), so an unwritable folder counts.
    Such a database (a copy from a cluster, a read-only share) opens with ``read_only=True``.
    """
    return path.is_file() and not (writable(path) and writable(path.parent))


def open_store(path: Path | None = None) -> RunStore:
    """Open the run database at ``path`` (default: the user's), read-only when this user cannot write it or its folder."""
    target = path if path is not None else default_database_path()
    if readable_only(target):
        log.info("Opening %s read-only: this user cannot write it or its folder", target)
        return RunStore(target, read_only=True)
    return RunStore(target)


def _migration_scripts() -> tuple[Any, Any]:
    """Return the Alembic config and script directory of ``engine/migrations``."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(importlib_resources.files("engine.migrations")))
    return config, ScriptDirectory.from_config(config)


def _store_error(path: Path, error: BaseException) -> StoreError:
    text = str(getattr(error, "orig", error))
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(
            f"The run database {path} is read-only ({text}).",
            "Make the file and its folder writable, or choose another database (CLI: --db, or set LAMPREIA_DATA_DIR).",
        )
    if "disk is full" in lowered or "disk i/o" in lowered or "no space" in lowered:
        return StoreError(
            f"Cannot write to the run database {path}: {text}.",
            "Free disk space on that drive or choose a database on another drive (CLI: --db).",
        )
    if "unable to open" in lowered:
        if path.parent.is_dir() and not writable(path.parent):
            return StoreError(
                f"Cannot open the run database {path} for writing: this user cannot write its folder {path.parent}, as on a read-only share.",
                "Choose a database in a writable folder (CLI: --db). `lampreia runs`, `show`, `compare` and `export` can still read this one.",
            )
        return StoreError(
            f"Cannot open the run database {path}: {text}.",
            "Check that the folder exists and is writable, or choose another database (CLI: --db).",
        )
    if "not a database" in lowered or "malformed" in lowered:
        return StoreError(
            f"{path} is not a valid Lampreia run database ({text}).",
            "Choose another file, or restore this one from a backup.",
        )
    return StoreError(f"Run database {path} failed: {text}.", "See the log for details.")


class RunStore:
    """Read and write runs in one SQLite database; safe to share between threads."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        busy_timeout_s: float = 5.0,
        write_timeout_s: float = 60.0,
        recover_interrupted: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else default_database_path()
        self.write_timeout_s = write_timeout_s
        self.read_only = read_only
        self._scratch: tempfile.TemporaryDirectory | None = None  # a read-only database's copy
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        if self.path.is_dir():
            raise StoreError(
                f"The run database path {self.path} is a folder.",
                f"Give the path of a database file, e.g. {self.path / 'runs.sqlite3'} (CLI: --db).",
            )

        if read_only:
            self._open_read_only()
            return

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            blocking_file = next((folder for folder in (self.path.parent, *self.path.parent.parents) if folder.is_file()), None)
            if blocking_file is not None:
                raise StoreError(
                    f"The run database's folder {self.path.parent} cannot be created: {blocking_file} is a file, not a folder.",
                    "Choose a database path under a folder (CLI: --db), or point LAMPREIA_DATA_DIR at a folder.",
                ) from None
            raise StoreError(
                f"Cannot create the folder {self.path.parent} for the run database: {error.strerror}.",
                "Choose a database in a writable folder (CLI: --db, or set LAMPREIA_DATA_DIR).",
            ) from None

        self._write_engine = self._make_engine(begin="BEGIN IMMEDIATE")
        self._read_engine = self._make_engine(begin="BEGIN")
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

        self._migrate()
        if recover_interrupted:
            recovered = self.recover_interrupted_runs()
            if recovered:
                log.warning("Marked runs %s as interrupted: their process is gone.", recovered)

    # Connection setup

    def _open_read_only(self) -> None:
        """Open an existing database for reading only: no migration, no recovery, every write rejected.

        For a database that this user cannot write, e.g. one copied from a cluster or on a
        read-only share. The file is opened as immutable, so SQLite creates no ``-shm`` or
        ``-wal`` file beside it (they would keep its read-only permissions and block later
        writers). Changes that a killed process left in the ``-wal`` file are invisible to an
        immutable open, so such a database is read through a copy in a temporary folder.
        """
        if not self.path.is_file():
            raise StoreError(f"There is no run database at {self.path}.", "Check the path (CLI: --db).")
        source, immutable = self.path, True
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            self._scratch = tempfile.TemporaryDirectory(prefix="lampreia-read-only-")
            source = Path(self._scratch.name) / self.path.name
            try:
                shutil.copyfile(self.path, source)
                shutil.copyfile(wal, source.with_name(source.name + "-wal"))
            except OSError as error:
                raise StoreError(
                    f"Could not copy the read-only run database {self.path} and its -wal file to a temporary folder: {error.strerror}.",
                    "Free space in the temporary folder (TMPDIR), or copy the database with its -wal file to a writable folder.",
                ) from None
            immutable = False
            log.info("Reading %s through a temporary copy, because its -wal file contains changes not yet in the database", self.path)
        self._write_engine = self._make_engine(begin="BEGIN IMMEDIATE", read_only=True, immutable=immutable, source=source)
        self._read_engine = self._make_engine(begin="BEGIN", read_only=True, immutable=immutable, source=source)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        self._check_revision_read_only()

    def _make_engine(self, begin: str, read_only: bool = False, immutable: bool = False, source: Path | None = None) -> Engine:
        if read_only:
            options = "mode=ro&immutable=1" if immutable else "mode=ro"
            url = f"sqlite:///file:{urllib.parse.quote(str(source or self.path))}?{options}&uri=true"
        else:
            url = f"sqlite:///{self.path}"
        engine = create_engine(url, connect_args={"timeout": self._busy_timeout_ms / 1000, "check_same_thread": False})
        busy_timeout_ms = self._busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            # Autocommit at the driver level, so that the "begin" hook below decides how each
            # transaction starts instead of pysqlite's implicit deferred BEGIN.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            if not read_only:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine

    def _migrate(self) -> None:
        # Alembic logs every migration step at INFO; a store opened per run would flood the log.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        config, script = _migration_scripts()
        known = {rev.revision for rev in script.walk_revisions()}
        head = script.get_current_head()

        def upgrade(session: Session) -> str | None:
            connection = session.connection()
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in known:
                raise self._newer_schema_error(current)
            if current != head:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            return current

        current = self._read(lambda session: MigrationContext.configure(session.connection()).get_current_revision())
        if current == head:
            return
        backup = self._back_up_before_migration(current) if current is not None else None
        migrated_from = self._write(upgrade)
        if migrated_from is not None and migrated_from != head:
            log.warning(
                "Upgraded the run database %s from schema revision %s to %s. Lampreia versions that predate revision %s "
                "can no longer open it; the file as it was is kept at %s.",
                self.path, migrated_from, head, head, backup,
            )

    def _check_revision_read_only(self) -> None:
        """Raise StoreError unless the read-only database has this version's schema, which it cannot migrate."""
        from alembic.runtime.migration import MigrationContext

        _, script = _migration_scripts()
        head = script.get_current_head()
        current = self._read(lambda session: MigrationContext.configure(session.connection()).get_current_revision())
        if current == head:
            return
        if current is None:
            raise StoreError(f"{self.path} is not a Lampreia run database: it has no schema revision.", "Choose another file.")
        if current not in {rev.revision for rev in script.walk_revisions()}:
            raise self._newer_schema_error(current)
        raise StoreError(
            f"The run database {self.path} cannot be written and has the older schema revision {current} (this version reads {head}).",
            f"Copy it, with its -wal file and its {self.path.stem}-artifacts folder if they exist, to a writable folder "
            "and open the copy (CLI: --db COPY), which upgrades it.",
        )

    def _newer_schema_error(self, revision: str) -> StoreError:
        return StoreError(
            f"The run database {self.path} has schema revision {revision}, which this version of Lampreia does not know.",
            "It was written by a newer Lampreia Workbench: upgrade lampreia-workbench, or choose another database.",
        )

    def _back_up_before_migration(self, revision: str) -> Path:
        """Copy the database, at schema ``revision``, to ``<name>.backup-<revision>`` beside it and return that path."""
        target = self.path.with_name(f"{self.path.name}.backup-{revision}")
        if target.exists():
            # An earlier upgrade of another database at this path left its copy here; keep it.
            target = self.path.with_name(f"{self.path.name}.backup-{revision}-{time.strftime('%Y%m%d-%H%M%S')}")
        source = sqlite3.connect(self.path)
        try:
            copy = sqlite3.connect(target)
            try:
                # The backup API copies a consistent snapshot, WAL contents included.
                source.backup(copy)
            finally:
                copy.close()
        except sqlite3.Error as error:
            raise StoreError(
                f"Could not copy the run database {self.path} to {target} before upgrading its schema: {error}.",
                "Free disk space or make the folder writable, then open the database again; it was not changed.",
            ) from error
        finally:
            source.close()
        return target

    def close(self) -> None:
        self._write_engine.dispose()
        self._read_engine.dispose()
        if self._scratch is not None:
            self._scratch.cleanup()

    # Transactions

    def _write(self, unit: Callable[[Session], T]) -> T:
        """Run ``unit`` in one write transaction, retrying while another writer holds the lock."""
        deadline = time.monotonic() + self.write_timeout_s
        delay = 0.05
        while True:
            try:
                with self._write_sessions() as session, session.begin():
                    return unit(session)
            except OperationalError as error:
                if not _is_busy(error) or time.monotonic() + delay > deadline:
                    if _is_busy(error):
                        raise StoreError(
                            f"The run database {self.path} stayed locked by another program for {self.write_timeout_s:.0f} s.",
                            "Close other programs that write to it, or choose another database (CLI: --db).",
                        ) from error
                    raise _store_error(self.path, error) from error
                log.info("Run database busy; retrying in %.2f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except SQLAlchemyError as error:
                raise _store_error(self.path, error) from error

    def _read(self, unit: Callable[[Session], T]) -> T:
        try:
            with self._read_sessions() as session, session.begin():
                return unit(session)
        except SQLAlchemyError as error:
            raise _store_error(self.path, error) from error

    # Runs

    def create_run(self, config: dict[str, Any], *, name: str, device: str, versions: dict[str, str], status: str = "running") -> int:
        """Insert a run owned by this process and return its id."""
        now = time.time()

        def insert(session: Session) -> int:
            row = SqlRun(
                name=name,
                status=status,
                task=str(config.get("task", "")),
                config_json=json.dumps(config, ensure_ascii=False),
                created_at=now,
                started_at=now if status == "running" else None,
                session_started_at=now if status == "running" else None,
                active_seconds=0.0,
                heartbeat_at=now,
                owner_host=socket.gethostname(),
                owner_pid=os.getpid(),
                device=device,
                versions_json=json.dumps(versions),
                notes="",
                tags_json="[]",
                baseline_json="{}",
                final_metrics_json="{}",
                best_metrics_json="{}",
            )
            session.add(row)
            session.flush()
            return row.id

        return self._write(insert)

    def claim_run(self, run_id: int, device: str) -> None:
        """Mark an existing run as running in this process (used by resume), starting a new session."""
        now = time.time()

        def claim(session: Session) -> None:
            row = session.get(SqlRun, run_id)
            if row is None:
                raise StoreError(f"Run {run_id} does not exist in {self.path}.", "List the runs with `lampreia runs`.")
            # The previous session ended at its finish or, when its process died, at its last heartbeat.
            if row.started_at is not None:
                row.active_seconds = (row.active_seconds or 0.0) + _session_seconds(
                    row.session_started_at or row.started_at, row.finished_at, row.heartbeat_at
                )
            row.started_at = row.started_at or now
            row.session_started_at = now
            row.status = "running"
            row.error = None
            row.finished_at = None
            row.heartbeat_at = now
            row.owner_host = socket.gethostname()
            row.owner_pid = os.getpid()
            row.device = device

        self._write(claim)

    def set_prepared(self, run_id: int, *, parameter_count: int, baseline: dict[str, float]) -> None:
        self._update_run(run_id, parameter_count=parameter_count, baseline_json=json.dumps(baseline))

    def set_checkpoint(self, run_id: int, step: int, best_step: int | None, best_metrics: dict[str, float]) -> None:
        self._update_run(
            run_id,
            checkpoint_step=step,
            best_step=best_step,
            best_metrics_json=json.dumps(_finite(best_metrics)),
            heartbeat_at=time.time(),
        )

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        final_metrics: dict[str, float] | None = None,
        best_metrics: dict[str, float] | None = None,
        best_step: int | None = None,
        error: str | None = None,
    ) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        values: dict[str, Any] = {"status": status, "finished_at": time.time(), "error": error}
        if final_metrics is not None:
            values["final_metrics_json"] = json.dumps(_finite(final_metrics))
        if best_metrics is not None:
            values["best_metrics_json"] = json.dumps(_finite(best_metrics))
        if best_step is not None:
            values["best_step"] = best_step
        self._update_run(run_id, **values)

    def heartbeat(self, run_id: int) -> None:
        self._update_run(run_id, heartbeat_at=time.time())

    def rename_run(self, run_id: int, name: str) -> None:
        # Not cut: a run started with --name keeps a name of any length too, and SQLite does not
        # enforce the column's declared length.
        self._update_run(run_id, name=name.strip())

    def set_notes(self, run_id: int, notes: str) -> None:
        self._update_run(run_id, notes=notes)

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Store a run's tags: stripped, without empty ones, and once each ignoring case (the first spelling stays)."""
        unique: dict[str, str] = {}
        for tag in (t.strip() for t in tags):
            if tag:
                unique.setdefault(tag.casefold(), tag)
        self._update_run(run_id, tags_json=json.dumps(sorted(unique.values(), key=str.casefold)))

    def _update_run(self, run_id: int, **values: Any) -> None:
        def apply(session: Session) -> None:
            result = session.execute(update(SqlRun).where(SqlRun.id == run_id).values(**values))
            if result.rowcount == 0:
                raise StoreError(f"Run {run_id} does not exist in {self.path}.", "List the runs with `lampreia runs`.")

        self._write(apply)

    def delete_run(self, run_id: int) -> None:
        """Delete a run, its rows and its artifact folder."""

        def remove(session: Session) -> None:
            row = session.get(SqlRun, run_id)
            if row is None:
                raise StoreError(f"Run {run_id} does not exist in {self.path}.", "List the runs with `lampreia runs`.")
            session.delete(row)

        self._write(remove)
        shutil.rmtree(self.artifact_dir(run_id), ignore_errors=True)

    def recover_interrupted_runs(self) -> list[int]:
        """Mark runs whose owning process is gone as ``interrupted`` and return their ids."""
        host = socket.gethostname()
        now = time.time()

        def recover(session: Session) -> list[int]:
            rows = session.scalars(select(SqlRun).where(SqlRun.status.in_(ACTIVE_STATUSES))).all()
            lost = []
            for row in rows:
                if _owner_lost(row.heartbeat_at, row.owner_host, row.owner_pid, host, now):
                    row.status = "interrupted"
                    row.error = LOST_RUN_ERROR
                    lost.append(row.id)
            return lost

        return self._write(recover)

    def _as_read(self, record: RunRecord) -> RunRecord:
        """Show a run whose process is gone as ``interrupted`` where the store cannot record it (read-only)."""
        if not self.read_only or record.status not in ACTIVE_STATUSES:
            return record
        if not _owner_lost(record.heartbeat_at, record.owner_host, record.owner_pid, socket.gethostname(), time.time()):
            return record
        return replace(record, status="interrupted", error=f"{LOST_RUN_ERROR} The read-only database still records it as running.")

    def get_run(self, run_id: int) -> RunRecord:
        def fetch(session: Session) -> RunRecord:
            row = session.get(SqlRun, run_id)
            if row is None:
                raise StoreError(f"Run {run_id} does not exist in {self.path}.", "List the runs with `lampreia runs`.")
            return self._as_read(_record(row))

        return self._read(fetch)

    def list_runs(self, statuses: Iterable[str] | None = None) -> list[RunRecord]:
        """Return all runs, newest first, optionally only those with the given statuses."""

        requested = None if statuses is None else set(statuses)

        def fetch(session: Session) -> list[RunRecord]:
            query = select(SqlRun).order_by(SqlRun.id.desc())
            if requested is not None and not self.read_only:
                query = query.where(SqlRun.status.in_(requested))
            records = [self._as_read(_record(row)) for row in session.scalars(query)]
            # A read-only store may show a stored "running" as "interrupted", so it filters what it shows.
            return [record for record in records if requested is None or record.status in requested]

        return self._read(fetch)

    # Metrics

    def log_metrics(self, run_id: int, points: list[MetricPoint]) -> None:
        """Insert metric rows in one transaction and refresh the run's heartbeat.

        Non-finite values are dropped with a warning: the trainer stops a run before it would
        log one, so a non-finite value here means a caller bug, and it must not poison plots.
        """
        rows = []
        for point in points:
            if not math.isfinite(point.value):
                log.warning("Dropped non-finite metric %s = %s at step %d of run %d", point.name, point.value, point.step, run_id)
                continue
            rows.append(
                {"run_id": run_id, "step": point.step, "epoch": point.epoch, "name": point.name, "value": float(point.value), "wall_time": point.wall_time}
            )
        now = time.time()

        def insert(session: Session) -> None:
            if rows:
                session.execute(SqlMetric.__table__.insert(), rows)
            session.execute(update(SqlRun).where(SqlRun.id == run_id).values(heartbeat_at=now))

        self._write(insert)

    def metric_names(self, run_id: int) -> list[str]:
        return self._read(lambda s: list(s.scalars(select(SqlMetric.name).where(SqlMetric.run_id == run_id).distinct().order_by(SqlMetric.name))))

    def metric_series(self, run_id: int, names: Iterable[str] | None = None, since_id: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return {name: (steps, values)} ordered by step, the names in the order the run first logged them.

        The trainer logs per-teacher series in teacher order, so legends built from this order
        list the teachers as the run's config does.
        """

        def fetch(session: Session) -> dict[str, tuple[np.ndarray, np.ndarray]]:
            query = select(SqlMetric.name, SqlMetric.step, SqlMetric.value, SqlMetric.id).where(SqlMetric.run_id == run_id, SqlMetric.id > since_id)
            if names is not None:
                query = query.where(SqlMetric.name.in_(list(names)))
            grouped: dict[str, list[tuple[int, float]]] = {}
            first_id: dict[str, int] = {}
            for name, step, value, row_id in session.execute(query.order_by(SqlMetric.name, SqlMetric.step, SqlMetric.id)):
                grouped.setdefault(name, []).append((step, value))
                first_id[name] = min(first_id.get(name, row_id), row_id)
            return {
                name: (np.array([p[0] for p in grouped[name]], dtype=np.int64), np.array([p[1] for p in grouped[name]], dtype=np.float64))
                for name in sorted(grouped, key=first_id.__getitem__)
            }

        return self._read(fetch)

    def metric_points(self, run_id: int) -> list[MetricPoint]:
        def fetch(session: Session) -> list[MetricPoint]:
            query = select(SqlMetric).where(SqlMetric.run_id == run_id).order_by(SqlMetric.step, SqlMetric.id)
            return [MetricPoint(r.step, r.epoch, r.name, r.value, r.wall_time) for r in session.scalars(query)]

        return self._read(fetch)

    def last_evaluation(self, run_id: int) -> dict[str, float]:
        """Return the latest value of each evaluation metric (``dev/…`` and ``heldout/…``) of a run.

        A run stores its last evaluation as ``final_metrics`` when it ends; a run whose process
        was killed has these rows only.
        """

        def fetch(session: Session) -> dict[str, float]:
            query = (
                select(SqlMetric.name, SqlMetric.value)
                .where(SqlMetric.run_id == run_id, or_(SqlMetric.name.startswith("dev/"), SqlMetric.name.startswith("heldout/")))
                .order_by(SqlMetric.step, SqlMetric.id)
            )
            return {name: value for name, value in session.execute(query)}

        return self._read(fetch)

    def count_metrics(self, run_id: int) -> int:
        return self._read(lambda s: s.scalar(select(func.count()).select_from(SqlMetric).where(SqlMetric.run_id == run_id)) or 0)

    def discard_after_step(self, run_id: int, step: int) -> None:
        """Delete metrics and attention snapshots logged after ``step`` (before a resume replays them)."""

        def remove(session: Session) -> None:
            session.execute(delete(SqlMetric).where(SqlMetric.run_id == run_id, SqlMetric.step > step))
            session.execute(delete(SqlAttentionSnapshot).where(SqlAttentionSnapshot.run_id == run_id, SqlAttentionSnapshot.step > step))

        self._write(remove)

    # Attention snapshots

    def log_attention(self, run_id: int, snapshot: AttentionSnapshot) -> None:
        maps = np.asarray(snapshot.maps, dtype=np.float32)
        layers, heads, size, _ = maps.shape
        tokens_json = json.dumps(list(snapshot.tokens), ensure_ascii=False)
        rows = [
            {
                "run_id": run_id,
                "step": snapshot.step,
                "layer": layer,
                "head": head,
                "tokens_json": tokens_json,
                "size": size,
                "data": np.ascontiguousarray(maps[layer, head]).tobytes(),
            }
            for layer in range(layers)
            for head in range(heads)
        ]
        self._write(lambda session: session.execute(SqlAttentionSnapshot.__table__.insert(), rows))

    def attention_steps(self, run_id: int) -> list[int]:
        return self._read(
            lambda s: list(
                s.scalars(select(SqlAttentionSnapshot.step).where(SqlAttentionSnapshot.run_id == run_id).distinct().order_by(SqlAttentionSnapshot.step))
            )
        )

    def attention_snapshot(self, run_id: int, step: int | None = None) -> AttentionSnapshot | None:
        """Return the snapshot at ``step`` (default: the latest), or None if the run has none."""

        def fetch(session: Session) -> AttentionSnapshot | None:
            wanted = step
            if wanted is None:
                wanted = session.scalar(select(func.max(SqlAttentionSnapshot.step)).where(SqlAttentionSnapshot.run_id == run_id))
                if wanted is None:
                    return None
            rows = session.scalars(
                select(SqlAttentionSnapshot).where(SqlAttentionSnapshot.run_id == run_id, SqlAttentionSnapshot.step == wanted)
            ).all()
            if not rows:
                return None
            layers = max(r.layer for r in rows) + 1
            heads = max(r.head for r in rows) + 1
            size = rows[0].size
            maps = np.zeros((layers, heads, size, size), dtype=np.float32)
            for r in rows:
                maps[r.layer, r.head] = np.frombuffer(r.data, dtype=np.float32).reshape(size, size)
            return AttentionSnapshot(step=wanted, tokens=tuple(json.loads(rows[0].tokens_json)), maps=maps)

        return self._read(fetch)

    # Artifacts

    def artifact_dir(self, run_id: int) -> Path:
        """Folder for the run's files; named by the numeric id only, so user text never reaches the path."""
        return self.path.parent / f"{self.path.stem}-artifacts" / f"run-{int(run_id)}"

    def log_artifact(self, run_id: int, kind: str, path: Path, step: int | None) -> None:
        relative = str(Path(path).resolve().relative_to(self.artifact_dir(run_id).resolve()))
        size = Path(path).stat().st_size if Path(path).is_file() else 0

        def upsert(session: Session) -> None:
            session.execute(delete(SqlArtifact).where(SqlArtifact.run_id == run_id, SqlArtifact.kind == kind))
            session.add(SqlArtifact(run_id=run_id, kind=kind, path=relative, step=step, created_at=time.time(), size_bytes=size))

        self._write(upsert)

    def artifacts(self, run_id: int) -> dict[str, tuple[Path, int | None]]:
        """Return {kind: (absolute path, step)} for the run's recorded files."""

        def fetch(session: Session) -> dict[str, tuple[Path, int | None]]:
            rows = session.scalars(select(SqlArtifact).where(SqlArtifact.run_id == run_id)).all()
            return {r.kind: (self.artifact_dir(run_id) / r.path, r.step) for r in rows}

        return self._read(fetch)

    def integrity_check(self) -> str:
        with self._read_engine.connect() as connection:
            return str(connection.exec_driver_sql("PRAGMA integrity_check").scalar())


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # On Linux, signal 0 to a killed child that its parent has not reaped yet still succeeds.
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return True


def _owner_lost(heartbeat_at: float | None, owner_host: str, owner_pid: int, host: str, now: float) -> bool:
    """Return whether the process of an active run is gone: dead on this host, or silent for too long."""
    stale = heartbeat_at is None or now - heartbeat_at > STALE_HEARTBEAT_S
    dead = owner_host == host and not _process_alive(owner_pid)
    return dead or stale


def _record(row: SqlRun) -> RunRecord:
    return RunRecord(
        id=row.id,
        name=row.name,
        status=row.status,
        task=row.task,
        config=json.loads(row.config_json),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        device=row.device,
        versions=json.loads(row.versions_json or "{}"),
        parameter_count=row.parameter_count,
        baseline=json.loads(row.baseline_json or "{}"),
        final_metrics=json.loads(row.final_metrics_json or "{}"),
        best_metrics=json.loads(row.best_metrics_json or "{}"),
        best_step=row.best_step,
        checkpoint_step=row.checkpoint_step,
        error=row.error,
        notes=row.notes or "",
        tags=tuple(json.loads(row.tags_json or "[]")),
        owner_host=row.owner_host,
        owner_pid=row.owner_pid,
        active_seconds=row.active_seconds or 0.0,
        session_started_at=row.session_started_at,
    )


def _session_seconds(started: float, finished: float | None, heartbeat: float | None) -> float:
    """Length of one session: to its finish, else to its last heartbeat (a running or lost process)."""
    end = finished or heartbeat or started
    return max(0.0, end - started)
