"""Alembic migrations of the run store; ``RunStore`` applies them when it opens a database."""
