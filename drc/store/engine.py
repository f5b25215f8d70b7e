"""Where the store lives and how to connect to it: URL resolution, engines, error wording.

Only SQLite and PostgreSQL are supported, because ``apply`` relies on their
``INSERT ... ON CONFLICT``. SQLite connections get WAL and a busy timeout so several processes
(a worker, the CLI, a report) can share one file; write transactions begin ``IMMEDIATE`` so
they queue for the lock up front instead of failing when a read has to turn into a write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError

from drc.store.errors import StoreError

DEFAULT_HOME = Path(".drc")
BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write to finish before failing."""
CONNECT_TIMEOUT_S = 10
"""How long opening a PostgreSQL connection may take before the store reports it unreachable."""
WRITE = {"drc_begin": "BEGIN IMMEDIATE"}
"""Execution options of a connection that will write (see ``_begin``)."""


def resolve_url(url: str | None = None, home: Path | None = None) -> str:
    """The database URL: ``url``, else ``$DRC_DATABASE_URL``, else SQLite under the home.

    The home is ``home``, else ``$DRC_HOME``, else ``.drc``; the environment is read here
    rather than through ``drc.settings`` so that opening the store never fails on an unrelated
    setting.
    """
    if url:
        return url
    if env_url := os.environ.get("DRC_DATABASE_URL"):
        return env_url
    home = home or Path(os.environ.get("DRC_HOME") or DEFAULT_HOME)
    return f"sqlite:///{home / 'drc.db'}"


def parse_url(url: str) -> URL:
    """Parse and normalise ``url``: bare ``postgresql://`` means psycopg 3 (the one installed)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:  # ValueError: a port that is not a number
        raise StoreError(f"bad database URL {redact(url)!r}: {err}") from err
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {parsed.render_as_string(hide_password=True)!r}: "
            "the store runs on sqlite:/// or postgresql:// URLs"
        )
    return parsed


def redact(url: str) -> str:
    """``url`` as it may be shown in messages and logs: with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Unparsable: hide everything between "://" and "@", where a password would be.
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url


def create(url: URL) -> Engine:
    """An engine for ``url`` (from ``parse_url``), with the SQLite settings described above.

    The SQLite file's directory is created; nothing is connected yet.
    """
    connect_args: dict[str, Any] = {}
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            # Each connection would get a database of its own: a second thread (to_thread)
            # would find no tables. A file under a temporary directory does what was meant.
            raise StoreError(f"in-memory SQLite ({shown!r}) cannot be shared; use a file")
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the directory of {shown!r}: {err}") from err
    else:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (the module
    # would begin them late, and never before DDL, which would make migrations non-atomic).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("drc_begin", "BEGIN"))


@contextmanager
def translated(url: URL, doing: str) -> Iterator[None]:
    """Turn database errors raised while ``doing`` something into a ``StoreError``.

    The message names the URL (password hidden) and the driver's first line, which says what
    went wrong (refused connection, unknown database, constraint...).
    """
    try:
        yield
    except SQLAlchemyError as err:
        shown = url.render_as_string(hide_password=True)
        cause = err.orig if isinstance(err, DBAPIError) else err
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if url.password:
            detail = detail.replace(str(url.password), "***")
        kind = "refused" if isinstance(err, IntegrityError) else "failed"
        raise StoreError(f"{doing} {kind} on {shown!r}: {detail}") from err
