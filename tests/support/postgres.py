"""A throwaway PostgreSQL database per test, on the machine's server (never its own databases).

The server is ``$DRC_TEST_POSTGRES_URL`` (an admin URL, default the local trust-auth
``postgres`` database). Each test gets ``drc_test_<random hex>``, created and dropped (with
``FORCE``, so a leaked connection cannot keep it alive) through an AUTOCOMMIT connection.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

ADMIN_URL = os.environ.get(
    "DRC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def admin_url() -> URL:
    """The admin URL, with psycopg 3 as the driver whatever the variable says."""
    url = make_url(ADMIN_URL)
    return url.set(drivername="postgresql+psycopg")


def server_problem() -> str | None:
    """Why the PostgreSQL server cannot be used for tests, or ``None`` when it can."""
    engine = create_engine(admin_url(), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        shown = admin_url().render_as_string(hide_password=True)
        return f"PostgreSQL at {shown} is not usable: {err.__class__.__name__}: {err}"
    finally:
        engine.dispose()
    return None


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its URL (password included), drop it afterwards."""
    name = f"drc_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url().set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
