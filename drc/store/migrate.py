"""Bring a database's schema to the latest Alembic revision, safely from several processes.

The migrations ship inside the package and are found from this file, never from the current
directory. The upgrade runs in one transaction that first takes a database-wide lock (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), so two processes opening
a fresh database at once do not both try to create it: the second waits, then finds it at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from drc.store.engine import WRITE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x0D12C5_7012E
"""PostgreSQL advisory lock key held while upgrading ("drc store"); any constant would do."""


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the store's migrations on ``url``, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates "%": a percent-encoded password must be escaped.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Upgrade the schema to head; a no-op when it is there already. Safe to run concurrently."""
    url = engine.url.render_as_string(hide_password=False)
    config = alembic_config(url)
    with engine.connect() as connection:
        connection.execution_options(**WRITE)
        with connection.begin():
            _lock(connection)
            # env.py runs on this connection, inside this transaction (and lock).
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    # SQLite: the transaction began IMMEDIATE (WRITE), which already holds the write lock.
