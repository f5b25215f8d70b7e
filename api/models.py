"""The recovery API's request and response bodies: typed, so the OpenAPI document is complete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

SystemHealth = Literal["healthy", "degraded", "critical", "unknown"]
ServiceHealth = Literal["healthy", "degraded", "down", "paused", "unknown"]
Role = Literal["primary", "standby", "active"]


class ReplicaView(BaseModel):
    """One replica as the watch last saw it, and its place in the traffic."""

    name: str
    region: str
    url: str
    state: str = Field(description="healthy, suspect, degraded, failed, unknown, ...")
    role: Role = Field(description="primary and standby (active/standby) or active.")
    traffic: str | None = Field(
        None,
        description="What HAProxy does with it: 'serving', 'standby' (a backup server, ready "
        "to take over), 'drain', 'maint', or null (no traffic manager).",
    )
    latency_ms: float | None = None
    consecutive_failures: int = 0
    last_error: str | None = None


class ServiceView(BaseModel):
    """One catalog service with its replicas (the dashboard's grid row)."""

    name: str
    state: ServiceHealth
    redundancy: str
    regions: list[str]
    depends_on: list[str]
    primary: str | None
    frontend: str | None
    repairing: bool
    incident_id: str | None
    replicas: list[ReplicaView]


class HeartbeatStatus(BaseModel):
    """A service's heartbeats: how many replicas answer, and the slowest answer."""

    status: Literal["ok", "missed", "unknown"]
    alive: int
    replicas: int
    max_latency_ms: float | None


class FailureView(BaseModel):
    """One entry of the failures list (as ``drc failures``)."""

    service: str
    replica: str | None
    type: str
    severity: str
    description: str
    at: datetime
    incident_id: str | None


class OpenIncidentView(BaseModel):
    """An incident open now, with its root cause (the fleet's grouping)."""

    service: str
    incident_id: str | None
    root_cause: str
    held: list[str]


class RecoveryStatus(BaseModel):
    """``GET /recovery/status``: the whole deployment at a glance."""

    timestamp: datetime
    system_health: SystemHealth
    failure_rate: float
    heartbeat_status: dict[str, HeartbeatStatus]
    health_status: dict[str, ServiceHealth]
    failures: list[FailureView] = Field(description="Failures of the last hour, newest first.")
    open_incidents: list[OpenIncidentView]
    brake: str = Field(description="The storm brake: normal, paced or frozen, and why.")
    snapshot_age_s: float = Field(
        description="How old the live view was when this answer was made (the view is taken "
        "every second, and its answer made once; `timestamp` is when it was taken)."
    )


class FailuresView(BaseModel):
    """``GET /recovery/failures``: the seed's failures list."""

    failures: list[FailureView]
    total_count: int
    critical_count: int
    time_period_hours: float


class SyncView(BaseModel):
    """One standby's replication as the watch measures it."""

    service: str
    replica: str
    primary: str
    state: str = Field(description="in_sync, sync_degraded or unknown.")
    lag_ms: float | None
    lag_p99_ms: float | None
    link_up: bool
    offset_gap_bytes: int | None


class SynchronizationView(BaseModel):
    """``GET /recovery/synchronization``."""

    timestamp: datetime
    standbys: list[SyncView]
    all_in_sync: bool


DEFAULT_FAILOVER_REASON = "failover through the recovery API"


class FailoverBody(BaseModel):
    """``POST /recovery/failover/{service}``: as ``drc failover``."""

    to: str | None = Field(None, description="The standby to promote (default: drc chooses).")
    reason: str = Field(DEFAULT_FAILOVER_REASON, min_length=1, max_length=500)
    force: bool = Field(False, description="Skip the replication guards; needs a reason.")

    @model_validator(mode="after")
    def _forced_needs_a_reason(self) -> FailoverBody:
        if self.force and self.reason.strip() in ("", DEFAULT_FAILOVER_REASON):
            raise ValueError("force needs a reason of your own (it is recorded with the failover)")
        return self


class RestartBody(BaseModel):
    """``POST /recovery/restart/{service}``: as ``drc restart``."""

    replica: str = Field(min_length=1, max_length=200)
    reason: str = Field("restart through the recovery API", min_length=1, max_length=500)


SWITCHOVER_SLACK = timedelta(minutes=1)
"""How far in the past ``scheduled_at`` may be (clock skew: it then runs at once)."""
SWITCHOVER_HORIZON = timedelta(days=90)


class SwitchoverBody(BaseModel):
    """``POST /recovery/switchover/{service}``: a failover at a given time (Patroni's)."""

    scheduled_at: datetime = Field(description="When (ISO-8601 with a time zone).")
    to: str | None = None
    reason: str = Field("scheduled switchover", min_length=1, max_length=500)

    @field_validator("scheduled_at")
    @classmethod
    def _aware_and_ahead(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("scheduled_at needs a time zone (e.g. 2026-11-26T22:00:00Z)")
        ahead = value - datetime.now(UTC)
        if ahead < -SWITCHOVER_SLACK:
            raise ValueError(f"scheduled_at is in the past ({value.isoformat()})")
        if ahead > SWITCHOVER_HORIZON:
            raise ValueError(f"scheduled_at is more than {SWITCHOVER_HORIZON.days} days ahead")
        return value


class RepairStarted(BaseModel):
    """A repair (or a scheduled switchover) started: its workflow, and who asked."""

    service: str
    workflow_id: str
    operator: str
    web_ui: str = Field(description="The run in the Temporal Web UI.")
    note: str | None = Field(None, description="E.g. that it attached to a run already going.")


class SwitchoverView(BaseModel):
    """A scheduled switchover and where it stands."""

    service: str
    workflow_id: str
    status: str
    scheduled_at: datetime | None = None
    to: str | None = None
    operator: str | None = None


class Refusal(BaseModel):
    """Why a request was refused (4xx): one sentence naming the problem."""

    detail: str


class EndpointRole(BaseModel):
    """``GET /services/{name}/primary|replica``: the replica asked about and its role now."""

    service: str
    replica: str
    role: Role | None
    state: str
    reason: str


class IncidentSummary(BaseModel):
    """One incident (or near miss) as ``drc incidents`` lists it."""

    id: str
    service: str
    replica: str | None
    type: str
    severity: str
    status: str
    near_miss: bool
    cause: str
    started_at: datetime
    resolved_at: datetime | None
    ttd_s: float
    ttr_s: float | None
    report_md: str
    report_html: str


class ChaosRow(BaseModel):
    """An experiment: its schedule, next runs, last result and resilience score."""

    experiment: str
    schedule: str = Field(description="none, active, or 'paused: why'.")
    paused: bool
    next_runs: list[datetime]
    runs: int
    passed: int
    objective_met: int
    score: float | None = Field(description="Share of runs that passed (0..1).")
    last_verdict: str | None
    last_reason: str | None
    last_at: datetime | None


class ApiHealth(BaseModel):
    """``GET /health``: is the API itself fit to answer."""

    status: Literal["ok", "degraded"]
    temporal: bool
    store: bool
    snapshot_age_s: float | None
