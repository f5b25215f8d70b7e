"""A switchover scheduled for a given time (Patroni's ``scheduled_at``): input and result."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SwitchoverInput:
    """Fail ``service`` over at ``scheduled_at`` (Unix seconds), as ``operator`` asked."""

    service: str
    scheduled_at: float
    to: str | None
    reason: str
    operator: str


@dataclass(frozen=True)
class FailoverCall:
    """The monitor's ``failover`` update as the switchover's activity sends it, once."""

    service: str
    to: str | None
    reason: str
    operator: str
    update_id: str
    """Temporal runs an update of the same id once per monitor run: a retry attaches to it."""


@dataclass(frozen=True)
class SwitchoverResult:
    """The failover's workflow id, or why the monitor refused it."""

    service: str
    workflow_id: str | None
    refused: str | None = None
