"""From a snapshot (and the store's records) to the API's models.

Pure, shared by the JSON endpoints and the dashboard.
"""

from __future__ import annotations

from datetime import UTC, datetime

from api.models import (
    EndpointRole,
    FailureView,
    HeartbeatStatus,
    OpenIncidentView,
    RecoveryStatus,
    ReplicaView,
    ServiceHealth,
    ServiceView,
    SynchronizationView,
    SyncView,
)
from api.snapshot import Snapshot, traffic_role
from drc.catalog import Catalog, Service
from drc.incident import FailureRecord
from drc.model import ReplicaState

ALIVE = {ReplicaState.HEALTHY, ReplicaState.DEGRADED, ReplicaState.SUSPECT}
"""States in which a replica answers its heartbeats (a suspect one missed fewer than N)."""

HEALTH: dict[str, ServiceHealth] = {"up": "healthy", "degraded": "degraded", "down": "down"}


def when(seconds: float) -> datetime:
    """Unix seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def service_health(service: Service, snapshot: Snapshot) -> ServiceHealth:
    """What the monitor last reported to the fleet; paused or unknown when so."""
    live = snapshot.live.get(service.name)
    if live is not None and live.paused:
        return "paused"
    if live is None or not live.tracks:
        return "unknown"  # not watched yet: the fleet counts a service it never heard of "up"
    fleet = snapshot.fleet
    if fleet is None or service.name not in fleet.health:
        return "unknown"
    return HEALTH[fleet.health[service.name]]


def service_view(service: Service, snapshot: Snapshot) -> ServiceView:
    """A grid row: the service, its replicas, their traffic roles."""
    fleet = snapshot.fleet
    incident = next(
        (i.incident_id for i in (fleet.incidents if fleet else []) if i.service == service.name),
        None,
    )
    live = snapshot.live.get(service.name)
    replicas = []
    for replica in service.replicas:
        track = live.tracks.get(replica.name) if live is not None else None
        role, traffic = traffic_role(service, replica.name, snapshot)
        replicas.append(
            ReplicaView(
                name=replica.name,
                region=replica.region,
                url=str(replica.url),
                state=snapshot.replica_state(service.name, replica.name).value,
                role=role,
                traffic=traffic,
                latency_ms=None if track is None else track.latency_ms,
                consecutive_failures=0 if track is None else track.consecutive_failures,
                last_error=None if track is None else track.last_error,
            )
        )
    return ServiceView(
        name=service.name,
        state=service_health(service, snapshot),
        redundancy=service.redundancy.value,
        regions=sorted({r.region for r in service.replicas}),
        depends_on=list(service.depends_on),
        primary=snapshot.primary(service),
        frontend=service.frontend,
        repairing=fleet is not None and service.name in fleet.repairing,
        incident_id=incident,
        replicas=replicas,
    )


def heartbeat_status(service: Service, snapshot: Snapshot) -> HeartbeatStatus:
    """How many replicas answer their heartbeats, and the slowest answer."""
    live = snapshot.live.get(service.name)
    if live is None or not live.tracks:
        return HeartbeatStatus(
            status="unknown", alive=0, replicas=len(service.replicas), max_latency_ms=None
        )
    states = [snapshot.replica_state(service.name, r.name) for r in service.replicas]
    alive = sum(s in ALIVE for s in states)
    latencies = [t.latency_ms for t in live.tracks.values() if t.latency_ms is not None]
    return HeartbeatStatus(
        status="ok" if alive == len(service.replicas) else "missed",
        alive=alive,
        replicas=len(service.replicas),
        max_latency_ms=max(latencies) if latencies else None,
    )


def failure_view(record: FailureRecord) -> FailureView:
    """One failures-list entry."""
    return FailureView(
        service=record.service,
        replica=record.replica,
        type=record.type,
        severity=record.severity,
        description=record.description,
        at=when(record.at),
        incident_id=record.incident_id,
    )


def recovery_status(
    catalog: Catalog, snapshot: Snapshot, recent: list[FailureRecord]
) -> RecoveryStatus:
    """``GET /recovery/status`` from the snapshot and the last hour's failures."""
    fleet = snapshot.fleet
    brake = "unknown: the fleet does not answer"
    if fleet is not None:
        brake = fleet.mode + (f": {fleet.brake_reason}" if fleet.brake_reason else "")
    return RecoveryStatus(
        timestamp=when(snapshot.taken_at),
        system_health=fleet.system_health if fleet is not None else "unknown",
        failure_rate=fleet.failure_rate if fleet is not None else 0.0,
        heartbeat_status={s.name: heartbeat_status(s, snapshot) for s in catalog.services},
        health_status={s.name: service_health(s, snapshot) for s in catalog.services},
        failures=[failure_view(f) for f in sorted(recent, key=lambda f: f.at, reverse=True)],
        open_incidents=[
            OpenIncidentView(
                service=i.service, incident_id=i.incident_id, root_cause=i.root_cause, held=i.held
            )
            for i in (fleet.incidents if fleet is not None else [])
        ],
        brake=brake,
        snapshot_age_s=round(max(0.0, datetime.now(UTC).timestamp() - snapshot.taken_at), 3),
    )


def synchronization(catalog: Catalog, snapshot: Snapshot) -> SynchronizationView:
    """Every standby's replication as the watch measures it."""
    standbys: list[SyncView] = []
    for service in catalog.services:
        live = snapshot.live.get(service.name)
        for stats in live.sync.values() if live is not None else []:
            gap = None
            if stats.primary_offset >= 0 and stats.replica_offset >= 0:
                gap = max(0, stats.primary_offset - stats.replica_offset)
            standbys.append(
                SyncView(
                    service=service.name,
                    replica=stats.replica,
                    primary=stats.primary,
                    state=stats.state,
                    lag_ms=stats.last_lag_ms,
                    lag_p99_ms=stats.percentile(99),
                    link_up=stats.link_up,
                    offset_gap_bytes=gap,
                )
            )
    return SynchronizationView(
        timestamp=when(snapshot.taken_at),
        standbys=standbys,
        all_in_sync=all(s.state == "in_sync" for s in standbys),
    )


def primary_check(service: Service, replica: str, snapshot: Snapshot) -> tuple[bool, EndpointRole]:
    """Whether ``replica`` takes writes now (Patroni's ``GET /primary``: 200 or 503)."""
    state = snapshot.replica_state(service.name, replica)
    role, _ = traffic_role(service, replica, snapshot)
    if role == "standby":
        ok, reason = False, f"{replica} is a standby; {snapshot.primary(service)} takes writes"
    elif state not in ALIVE:
        ok, reason = False, f"{replica} is {state.value}"
    else:
        ok, reason = True, f"{replica} takes writes ({state.value})"
    return ok, EndpointRole(
        service=service.name, replica=replica, role=role, state=state.value, reason=reason
    )


def replica_check(
    service: Service, replica: str, snapshot: Snapshot, max_lag_ms: float | None
) -> tuple[bool, EndpointRole]:
    """Whether ``replica`` is a healthy standby in sync within ``max_lag_ms`` (``/replica``)."""
    state = snapshot.replica_state(service.name, replica)
    role, _ = traffic_role(service, replica, snapshot)
    live = snapshot.live.get(service.name)
    stats = live.sync.get(replica) if live is not None else None
    if role != "standby":
        ok, reason = False, f"{replica} is not a standby (it is {role})"
    elif state not in ALIVE:
        ok, reason = False, f"{replica} is {state.value}"
    elif stats is None:
        ok, reason = False, f"{replica}'s replication is not measured"
    elif stats.state != "in_sync":
        ok, reason = False, f"{replica} is {stats.state}"
    elif max_lag_ms is not None and (stats.last_lag_ms is None or stats.last_lag_ms > max_lag_ms):
        ok, reason = False, f"{replica} lags {stats.last_lag_ms} ms (max_lag_ms {max_lag_ms:g})"
    else:
        ok, reason = True, f"{replica} is in sync (lag {stats.last_lag_ms} ms)"
    return ok, EndpointRole(
        service=service.name, replica=replica, role=role, state=state.value, reason=reason
    )
