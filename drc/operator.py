"""What operators send a monitor (updates and signals) and the plans it answers dry runs with."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartRequest:
    """An operator's request to restart a replica; clears its crash loop and its freeze."""

    replica: str
    reason: str = "requested by an operator"
    operator: str = "operator"


@dataclass(frozen=True)
class PauseRequest:
    """An operator's request to pause, or to resume (which also lifts every freeze)."""

    reason: str = ""
    operator: str = "operator"


@dataclass(frozen=True)
class FailoverRequest:
    """An operator's request to fail an active/standby service over (to a chosen standby).

    The same input for the ``failover`` update and the ``request_failover`` signal.
    """

    to: str | None = None
    reason: str = "requested by an operator"
    operator: str = "operator"
    force: bool = False
    """Skip the replication guards: promote a standby that may not have every write.

    Needs a reason of the operator's own; the failover is recorded as forced.
    """


@dataclass(frozen=True)
class ReprotectRequest:
    """An operator's request to bring a former primary back as a standby of the current one."""

    replica: str | None = None
    """The replica to re-protect; by default the one the last failover left unprotected."""
    reason: str = "requested by an operator"
    operator: str = "operator"


@dataclass(frozen=True)
class RetireRequest:
    """The service left the catalog: its monitor records why and ends."""

    reason: str = "removed from the catalog"
    operator: str = "drc reload"


@dataclass
class GuardCheck:
    """One condition a plan depends on, evaluated on the monitor's latest knowledge."""

    name: str
    ok: bool
    detail: str


@dataclass
class Plan:
    """What a repair would do now, and why; a dry run changes nothing."""

    action: str
    service: str
    target: str | None
    because: str
    guards: list[GuardCheck] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    refusal: str | None = None
    """Why the repair would be refused; None when it would run."""
    workflow_id: str | None = None
