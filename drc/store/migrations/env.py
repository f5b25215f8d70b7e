"""Alembic environment of the incident store.

Run by ``drc.store.migrate.upgrade`` on the connection (and inside the locked transaction) it
passes in ``config.attributes["connection"]``. Run from the command line
(``alembic -c drc/store/alembic.ini revision --autogenerate -m ...``), it connects to the URL
the store itself would open (``$DRC_DATABASE_URL``, else ``$DRC_HOME/drc.db``). It leaves
logging alone: the process that opens the store owns its logging configuration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from drc.store.engine import create, parse_url, resolve_url
from drc.store.models import Base

target_metadata = Base.metadata


def run(connection: Connection) -> None:
    """Run the pending migrations on ``connection``."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # Both backends roll DDL back (SQLite too, as drc.store.engine begins transactions):
        # a failed upgrade leaves the previous schema, not half of the new one.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Migrate the given connection, else the store's own database."""
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url") or resolve_url()
    engine = create(parse_url(url))
    try:
        with engine.connect() as connection:
            run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the store's migrations run online only (they need the dialect's upserts)")
main()
