"""Initial schema: incidents, their runs, failures, availability changes, reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:45:41
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The models' UTCDateTime stores as this; a migration must not import the models, which move on.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the five tables and the indexes of the store's queries."""
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("replica", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("detected_at", UTC_DATETIME, nullable=False),
        sa.Column("mitigated_at", UTC_DATETIME, nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.Column("near_miss", sa.Boolean(), nullable=False),
        sa.Column("forced_by", sa.String(), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_service_started_at", "incidents", ["service", "started_at"])
    op.create_index("ix_incidents_started_at", "incidents", ["started_at"])
    op.create_index("ix_incidents_status", "incidents", ["status"])

    op.create_table(
        "incident_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_runs_incident_id_incidents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_runs"),
        sa.UniqueConstraint(
            "incident_id",
            "workflow_id",
            "run_id",
            name="uq_incident_runs_incident_id_workflow_id_run_id",
        ),
    )
    op.create_index(
        "uq_incident_runs_pending",
        "incident_runs",
        ["incident_id", "workflow_id"],
        unique=True,
        sqlite_where=sa.text("run_id IS NULL"),
        postgresql_where=sa.text("run_id IS NULL"),
    )

    op.create_table(
        "failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("replica", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("incident_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_failures"),
        sa.UniqueConstraint("key", name="uq_failures_key"),
    )
    op.create_index("ix_failures_at", "failures", ["at"])
    op.create_index("ix_failures_incident_id", "failures", ["incident_id"])

    op.create_table(
        "availability_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_availability_changes"),
        sa.UniqueConstraint(
            "service", "at", "state", name="uq_availability_changes_service_at_state"
        ),
    )
    op.create_index("ix_availability_changes_at", "availability_changes", ["at"])

    op.create_table(
        "reports",
        sa.Column("incident_id", sa.String(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("generated_at", UTC_DATETIME, nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_reports_incident_id_incidents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name="pk_reports"),
    )


def downgrade() -> None:
    """Drop everything (the data with it)."""
    op.drop_table("reports")
    op.drop_table("availability_changes")
    op.drop_table("failures")
    op.drop_table("incident_runs")
    op.drop_table("incidents")
