"""The store's tables as typed SQLAlchemy models; the Alembic migrations must produce exactly these.

Times are ``UTCDateTime``: timezone-aware UTC on the way in and out on every backend, so
SQLite (which keeps no offset) and PostgreSQL (``timestamptz``) read back the same instant.
Constraint names come from a naming convention, so migrations can name them without guessing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The value converted to UTC; a naive datetime raises ``ValueError``."""
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive time is ambiguous: refuse it rather than guess the machine's zone.
            raise ValueError(f"naive datetime {value!r}: the store keeps UTC instants")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The stored instant as an aware UTC datetime."""
        if value is None:
            return None
        # SQLite returns what was written (UTC) without its offset.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The store's declarative base; its metadata is Alembic's autogenerate target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IncidentRow(Base):
    """The latest snapshot of an incident seen by the store (the highest ``version``)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(None, "service", "started_at"),
        Index(None, "started_at"),
        Index(None, "status"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    service: Mapped[str] = mapped_column(String)
    type: Mapped[str] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String)
    cause: Mapped[str] = mapped_column(Text)
    replica: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    detected_at: Mapped[datetime]
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    near_miss: Mapped[bool]
    forced_by: Mapped[str | None] = mapped_column(String)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    version: Mapped[int]


class IncidentRunRow(Base):
    """A workflow run that belongs to an incident; ``run_id`` may be learnt after the run."""

    __tablename__ = "incident_runs"
    __table_args__ = (UniqueConstraint("incident_id", "workflow_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String)
    run_id: Mapped[str | None] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    started_at: Mapped[datetime]


# NULLs are distinct in a unique constraint, so a run whose id is not known yet needs an index
# of its own to be upserted (and its id filled in later) rather than inserted twice.
PENDING_RUN = Index(
    "uq_incident_runs_pending",
    IncidentRunRow.incident_id,
    IncidentRunRow.workflow_id,
    unique=True,
    sqlite_where=IncidentRunRow.run_id.is_(None),
    postgresql_where=IncidentRunRow.run_id.is_(None),
)


class FailureRow(Base):
    """One entry of the failures list, unique by its stable ``key``.

    ``incident_id`` is no foreign key on purpose: a failure is recorded when it happens, which
    may be before (or without) the incident snapshot that names it.
    """

    __tablename__ = "failures"
    __table_args__ = (Index(None, "at"), Index(None, "incident_id"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String, unique=True)
    service: Mapped[str] = mapped_column(String)
    replica: Mapped[str | None] = mapped_column(String)
    type: Mapped[str] = mapped_column(String)
    severity: Mapped[str] = mapped_column(String)
    description: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    incident_id: Mapped[str | None] = mapped_column(String)


class AvailabilityChangeRow(Base):
    """A service's availability changed; unique by (service, at, state).

    The unique constraint's index also serves the per-service time-range queries (its leading
    columns are service, at); ``at`` alone serves the all-services ones.
    """

    __tablename__ = "availability_changes"
    __table_args__ = (UniqueConstraint("service", "at", "state"), Index(None, "at"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String)
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)


class ReportRow(Base):
    """The generated report of one incident (the latest generation replaces the previous)."""

    __tablename__ = "reports"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    markdown: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    generated_at: Mapped[datetime]
    missing: Mapped[list[str]] = mapped_column(JSON)
