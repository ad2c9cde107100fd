"""Alembic environment: migrates the connection that ``RunStore`` passes in ``config.attributes``."""

from alembic import context

from engine.store_schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
