"""The incident store: what the monitor recorded, kept in SQLite or PostgreSQL.

Writes are idempotent upserts (``INSERT ... ON CONFLICT``), never read-then-write, so the
``record_incident`` activity can be retried, or run twice at once, and leave one copy of
everything. The API is synchronous and thread-safe (one engine, one session per call):
asynchronous callers run it in ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Update, exists, select, union
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from drc.incident import AvailabilityChange, FailureRecord, Incident, IncidentRun, IncidentUpdate
from drc.store import convert, engine
from drc.store.migrate import upgrade
from drc.store.models import (
    AvailabilityChangeRow,
    Base,
    FailureRow,
    IncidentRow,
    IncidentRunRow,
    ReportRow,
)


@dataclass(frozen=True)
class StoredReport:
    """An incident's generated report as last saved."""

    incident_id: str
    markdown: str
    html: str
    generated_at: float
    """Unix seconds."""
    missing: list[str]
    """What the report had to go without (an expired workflow history...), one line each."""


class IncidentStore:
    """Incidents, their runs, failures, availability changes and reports; see ``open``."""

    def __init__(self, db: Engine) -> None:
        """Wrap an engine whose schema is at head; ``IncidentStore.open`` is the usual way."""
        self._engine = db
        self._writer = db.execution_options(**engine.WRITE)
        self._postgres = db.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str | None = None, home: Path | None = None) -> IncidentStore:
        """Open the store and upgrade its schema to the latest migration.

        The URL is ``url``, else ``$DRC_DATABASE_URL``, else ``sqlite:///<home>/drc.db`` with
        ``home`` from the argument, else ``$DRC_HOME``, else ``.drc`` (created if missing).
        Several processes may open a fresh database at once. A bad URL or an unreachable
        database raises ``StoreError`` naming the URL (never its password) and the cause.
        """
        parsed = engine.parse_url(engine.resolve_url(url, home))
        db = engine.create(parsed)
        try:
            with engine.translated(parsed, "opening the store"):
                upgrade(db)
        except BaseException:
            db.dispose()
            raise
        return cls(db)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection; the store must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> IncidentStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writes --------------------------------------------------------------------------

    def apply(self, update: IncidentUpdate) -> None:
        """Record an update in one transaction; idempotent, and safe to run concurrently.

        The incident (and its runs and notes) is written only if its ``version`` is higher
        than the stored one, so a late, older snapshot changes nothing. Runs are upserted by
        (incident, workflow id, run id), a pending run getting its run id when one is known.
        Failures (by key) and availability changes (by service, time, state) are inserted
        once, whatever the incident's version.
        """
        with engine.translated(self._engine.url, "recording an update"), self._write() as conn:
            if update.incident is not None:
                self._apply_incident(conn, update.incident)
            # Sorted, so that concurrent writers lock conflicting rows in the same order.
            failures = sorted(update.failures, key=lambda f: f.key)
            self._insert_new(conn, FailureRow, ["key"], map(convert.failure_values, failures))
            changes = sorted(update.changes, key=lambda c: (c.service, c.at, c.state))
            values = map(convert.change_values, changes)
            self._insert_new(conn, AvailabilityChangeRow, ["service", "at", "state"], values)

    def save_report(
        self, incident_id: str, markdown: str, html: str, generated_at: float, missing: list[str]
    ) -> None:
        """Save an incident's report, replacing any earlier one; the incident must be stored."""
        values = {
            "incident_id": incident_id,
            "markdown": markdown,
            "html": html,
            "generated_at": convert.to_utc(generated_at),
            "missing": list(missing),
        }
        stmt = self._insert(ReportRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["incident_id"],
            set_={key: stmt.excluded[key] for key in values if key != "incident_id"},
        )
        doing = f"saving the report of incident {incident_id!r}"
        with engine.translated(self._engine.url, doing), self._write() as conn:
            conn.execute(stmt)

    def _apply_incident(self, conn: Connection, incident: Incident) -> None:
        values = convert.incident_values(incident)
        stmt = self._insert(IncidentRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={key: stmt.excluded[key] for key in values if key != "id"},
            where=IncidentRow.version < stmt.excluded.version,
        )
        # A row comes back only if it was inserted or updated: an older (or the same)
        # snapshot leaves the incident and its runs as they are.
        if conn.execute(stmt.returning(IncidentRow.id)).first() is None:
            return
        for run in incident.runs:
            self._upsert_run(conn, incident.id, run)

    def _upsert_run(self, conn: Connection, incident_id: str, run: IncidentRun) -> None:
        values = convert.run_values(incident_id, run)
        stmt = self._insert(IncidentRunRow).values(values)
        refresh = {"kind": stmt.excluded.kind, "started_at": stmt.excluded.started_at}
        if run.run_id is None:
            stmt = stmt.on_conflict_do_update(
                index_elements=["incident_id", "workflow_id"],
                index_where=IncidentRunRow.run_id.is_(None),
                set_=refresh,
            )
        else:
            conn.execute(self._fill_run_id(incident_id, run.workflow_id, run.run_id))
            stmt = stmt.on_conflict_do_update(
                index_elements=["incident_id", "workflow_id", "run_id"], set_=refresh
            )
        conn.execute(stmt)

    @staticmethod
    def _fill_run_id(incident_id: str, workflow_id: str, run_id: str) -> Update:
        # The run recorded while pending becomes this run, unless this run is stored already.
        known = aliased(IncidentRunRow)
        return (
            sql_update(IncidentRunRow)
            .where(
                IncidentRunRow.incident_id == incident_id,
                IncidentRunRow.workflow_id == workflow_id,
                IncidentRunRow.run_id.is_(None),
                ~exists().where(
                    known.incident_id == incident_id,
                    known.workflow_id == workflow_id,
                    known.run_id == run_id,
                ),
            )
            .values(run_id=run_id)
        )

    def _insert_new(
        self, conn: Connection, model: type[Base], unique: list[str], rows: Iterator[dict[str, Any]]
    ) -> None:
        values = list(rows)
        if values:
            stmt = self._insert(model).values(values)
            conn.execute(stmt.on_conflict_do_nothing(index_elements=unique))

    def _insert(self, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
        return postgresql.insert(model) if self._postgres else sqlite.insert(model)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    # -- reads ---------------------------------------------------------------------------

    def incident(self, incident_id: str) -> Incident | None:
        """The incident's latest snapshot, runs ordered by start, or ``None`` if unknown."""
        found = self._incidents([IncidentRow.id == incident_id])
        return found[0] if found else None

    def incidents(
        self, since: float | None = None, service: str | None = None, near_misses: bool = True
    ) -> list[Incident]:
        """Incidents started at or after ``since``, newest first, optionally of one service."""
        where: list[ColumnElement[bool]] = []
        if since is not None:
            where.append(IncidentRow.started_at >= convert.to_utc(since))
        if service is not None:
            where.append(IncidentRow.service == service)
        if not near_misses:
            where.append(IncidentRow.near_miss.is_(False))
        return self._incidents(where)

    def open_incidents(self, service: str | None = None) -> list[Incident]:
        """Incidents not resolved yet, newest first, optionally of one service."""
        where = [IncidentRow.status == "open"]
        if service is not None:
            where.append(IncidentRow.service == service)
        return self._incidents(where)

    def _incidents(self, where: Sequence[ColumnElement[bool]]) -> list[Incident]:
        order = (IncidentRow.started_at.desc(), IncidentRow.id)
        runs_order = (IncidentRunRow.started_at, IncidentRunRow.id)
        with self._read() as session:
            rows = session.scalars(select(IncidentRow).where(*where).order_by(*order)).all()
            runs: dict[str, list[IncidentRunRow]] = defaultdict(list)
            # The same filter as a join, rather than a list of ids that could grow too long.
            query = select(IncidentRunRow).join(IncidentRow).where(*where).order_by(*runs_order)
            for run in session.scalars(query):
                runs[run.incident_id].append(run)
            return [convert.incident(row, runs[row.id]) for row in rows]

    def failures(self, since: float, service: str | None = None) -> list[FailureRecord]:
        """Failures at or after ``since``, newest first, optionally of one service."""
        query = select(FailureRow).where(FailureRow.at >= convert.to_utc(since))
        if service is not None:
            query = query.where(FailureRow.service == service)
        with self._read() as session:
            rows = session.scalars(query.order_by(FailureRow.at.desc(), FailureRow.key))
            return [convert.failure(row) for row in rows]

    def changes(
        self, service: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[AvailabilityChange]:
        """Availability changes with ``since <= at < until``, oldest first.

        With ``last_change_before(service, since)`` this is everything needed to compute the
        service's availability over the window.
        """
        query = select(AvailabilityChangeRow)
        if service is not None:
            query = query.where(AvailabilityChangeRow.service == service)
        if since is not None:
            query = query.where(AvailabilityChangeRow.at >= convert.to_utc(since))
        if until is not None:
            query = query.where(AvailabilityChangeRow.at < convert.to_utc(until))
        query = query.order_by(AvailabilityChangeRow.at, AvailabilityChangeRow.id)
        with self._read() as session:
            return [convert.change(row) for row in session.scalars(query)]

    def last_change_before(self, service: str, at: float) -> AvailabilityChange | None:
        """The service's last availability change strictly before ``at``: its state then."""
        query = (
            select(AvailabilityChangeRow)
            .where(AvailabilityChangeRow.service == service)
            .where(AvailabilityChangeRow.at < convert.to_utc(at))
            .order_by(AvailabilityChangeRow.at.desc(), AvailabilityChangeRow.id.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.scalars(query).first()
            return None if row is None else convert.change(row)

    def services(self) -> list[str]:
        """Every service with an availability change or an incident recorded, sorted."""
        query = union(select(IncidentRow.service), select(AvailabilityChangeRow.service))
        with self._read() as session:
            return sorted(session.scalars(query))

    def report(self, incident_id: str) -> StoredReport | None:
        """The incident's last saved report, or ``None``."""
        with self._read() as session:
            row = session.get(ReportRow, incident_id)
            if row is None:
                return None
            generated_at = convert.to_seconds(row.generated_at)
            return StoredReport(row.incident_id, row.markdown, row.html, generated_at, row.missing)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with engine.translated(self._engine.url, "reading"), Session(self._engine) as session:
            yield session
