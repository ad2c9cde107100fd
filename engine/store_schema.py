"""SQLAlchemy ORM tables of the run store. Schema changes go through ``engine/migrations``."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")


class Base(DeclarativeBase):
    pass


class SqlRun(Base):
    """One distillation run; JSON columns hold the config, versions and metric dicts."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), index=True)
    task: Mapped[str] = mapped_column(String(20))
    config_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # A resumed run has several sessions: the active seconds of the ended ones, and when the
    # current (or last) one began. Revision 0002.
    active_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    session_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner_host: Mapped[str] = mapped_column(String(200), default="")
    owner_pid: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str] = mapped_column(String(200), default="")
    versions_json: Mapped[str] = mapped_column(Text, default="{}")
    parameter_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    baseline_json: Mapped[str] = mapped_column(Text, default="{}")
    final_metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    best_metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    best_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    checkpoint_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    tags_json: Mapped[str] = mapped_column(Text, default="[]")

    metrics: Mapped[list["SqlMetric"]] = relationship(back_populates="run", cascade="all, delete-orphan", passive_deletes=True)
    attention_snapshots: Mapped[list["SqlAttentionSnapshot"]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    artifacts: Mapped[list["SqlArtifact"]] = relationship(back_populates="run", cascade="all, delete-orphan", passive_deletes=True)


class SqlMetric(Base):
    """One scalar (a loss, a weight, a dev metric) at one step."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_name_step", "run_id", "name", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float] = mapped_column(Float)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)

    run: Mapped[SqlRun] = relationship(back_populates="metrics")


class SqlAttentionSnapshot(Base):
    """Token-mixing matrix of one layer and head for the probe sentence, as float32 bytes."""

    __tablename__ = "attention_snapshots"
    __table_args__ = (Index("ix_attention_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    layer: Mapped[int] = mapped_column(Integer)
    head: Mapped[int] = mapped_column(Integer)
    tokens_json: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    run: Mapped[SqlRun] = relationship(back_populates="attention_snapshots")


class SqlArtifact(Base):
    """A file written by a run (checkpoint), by path relative to the store's artifact folder."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(Text)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)

    run: Mapped[SqlRun] = relationship(back_populates="artifacts")
