"""Store the active seconds of a run's earlier sessions, so that a resumed run's duration leaves out its pauses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite can add a NOT NULL column only when it has a default.
    op.add_column("runs", sa.Column("active_seconds", sa.Float, nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("session_started_at", sa.Float, nullable=True))
    # Older runs had one session as far as the store knows: it began when the run started.
    op.execute("UPDATE runs SET session_started_at = started_at")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("session_started_at")
        batch.drop_column("active_seconds")
