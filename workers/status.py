"""Read every monitor's status: the ``status`` query, refreshed by its watch's last heartbeat."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from activities.traffic import HAProxyRuntime, TrafficError
from activities.watch import progress_from_details
from activities.watch_group import group_progress
from drc.catalog import Catalog
from drc.detector import is_suspect
from drc.model import ReplicaState, ReplicaTrack
from drc.names import WATCH_SERVICE, backend_name, monitor_id, server_name
from drc.status import MonitorStatus, ReplicaStatus
from drc.watch import GroupProgress, WatchProgress
from workflows.monitor import ServiceMonitorWorkflow

OVERLAY_STATES = {ReplicaState.RECOVERING, ReplicaState.CRASH_LOOPING, ReplicaState.FROZEN}


async def read_status(
    client: Client, catalog: Catalog, home: Path | None = None
) -> list[MonitorStatus | str]:
    """One entry per catalog service: its status, or a sentence saying why there is none.

    With ``home``, each replica's traffic state is read from HAProxy as well (if configured).
    """
    traffic = await traffic_states(catalog, home)
    groups: dict[str, GroupProgress | None] = {}
    out: list[MonitorStatus | str] = []
    for service in catalog.services:
        handle = client.get_workflow_handle_for(
            ServiceMonitorWorkflow.run, monitor_id(service.name)
        )
        try:
            status = await handle.query(ServiceMonitorWorkflow.status)
            progress = await _live(client, status, groups)
        except RPCError as exc:
            out.append(f"{service.name}: no monitor answers ({exc.message})")
            continue
        _refresh(status, progress.tracks if progress else {})
        status.tilt = progress.tilt if progress is not None else None
        if progress is not None and progress.sync:
            status.sync = list(progress.sync.values())
        for replica in status.replicas:
            replica.traffic = traffic.get((backend_name(service.name), server_name(replica.name)))
        out.append(status)
    return out


async def _live(
    client: Client, status: MonitorStatus, groups: dict[str, GroupProgress | None]
) -> WatchProgress | None:
    """The service's live watch progress: from its group's activity, or its own watch's."""
    if status.watch_group is None:
        return await _live_progress(client, monitor_id(status.name))
    if status.watch_group not in groups:
        groups[status.watch_group] = await group_progress(client, status.watch_group)
    found = groups[status.watch_group]
    member = found.members.get(status.name) if found is not None else None
    if member is None:
        return None
    return WatchProgress(member.tracks, member.sync, tilt=member.tilt)


async def traffic_states(catalog: Catalog, home: Path | None) -> dict[tuple[str, str], str]:
    """(backend, server) -> HAProxy's admin state; empty without HAProxy or when it is down."""
    socket = catalog.traffic_control.socket_path(home) if home is not None else None
    if socket is None:
        return {}
    try:
        servers = await HAProxyRuntime(socket).servers()
    except TrafficError:
        return {}  # HAProxy down or absent: traffic is unknown, the rest still answers
    return {(s.backend, s.server): s.admin.value for s in servers}


async def _live_progress(client: Client, workflow_id: str) -> WatchProgress | None:
    """The running watch's last heartbeat: live latencies, counters and sync stats."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    for pending in desc.raw_description.pending_activities:
        if pending.activity_type.name == WATCH_SERVICE and pending.heartbeat_details.payloads:
            values = await client.data_converter.decode(pending.heartbeat_details.payloads)
            return progress_from_details(values[0])
    return None


def _refresh(status: MonitorStatus, live: dict[str, ReplicaTrack]) -> None:
    """Overlay the watch's live counters on the monitor's view, unless they are older.

    The watch heartbeats its tracks at most every few seconds; a track whose state began
    before the state the monitor already applied is stale, and must not hide it.
    """
    for replica in status.replicas:
        track = live.get(replica.name)
        if track is None or track.since < replica.since:
            continue
        replica.latency_ms = track.latency_ms
        replica.consecutive_failures = track.consecutive_failures
        replica.last_error = track.last_error
        if track.starting is not None:
            replica.note = track.starting
        if replica.state not in OVERLAY_STATES and not status.paused:
            replica.state = ReplicaState.SUSPECT if is_suspect(track) else track.state


def status_json(entries: list[MonitorStatus | str]) -> dict[str, Any]:
    """The stable JSON form of ``drc status --json`` (documented in the README)."""
    services: list[dict[str, Any]] = []
    errors: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            errors.append(entry)
            continue
        services.append(
            {
                "name": entry.name,
                "state": entry.state.value,
                "redundancy": entry.redundancy,
                "frontend": entry.frontend,
                "primary": entry.primary,
                "repairs_running": entry.repairs_running,
                "paused": entry.paused,
                "frozen": entry.frozen,
                "unprotected": entry.unprotected,
                "tilt": entry.tilt,
                "replicas": [{**asdict(r), "state": r.state.value} for r in entry.replicas],
                "decisions": [asdict(d) for d in entry.decisions[-5:]],
            }
        )
    return {"services": services, "errors": errors}


def status_table(entries: list[MonitorStatus | str]) -> str:
    """A screen-wide table of services and replicas."""
    head = (
        "SERVICE",
        "STATE",
        "REPLICA",
        "REGION",
        "REPLICA STATE",
        "TRAFFIC",
        "LATENCY",
        "FAILS",
        "LAST ERROR",
    )
    rows: list[tuple[str, ...]] = [head]
    for entry in entries:
        if isinstance(entry, str):
            rows.append((entry, *[""] * (len(head) - 1)))
            continue
        for i, r in enumerate(entry.replicas):
            latency = "-" if r.latency_ms is None else f"{r.latency_ms:.1f} ms"
            name = f"{r.name}*" if r.name == entry.primary else r.name
            first = (entry.name, entry.state.value) if i == 0 else ("", "")
            rows.append(
                (
                    *first,
                    name,
                    r.region,
                    r.state.value,
                    r.traffic or "-",
                    latency,
                    str(r.consecutive_failures),
                    _problem(r),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    tilted = [
        f"TILT {e.name}: {e.tilt}" for e in entries if isinstance(e, MonitorStatus) and e.tilt
    ]
    return "\n".join([*lines, "(* = primary)", *tilted])


def _problem(replica: ReplicaStatus) -> str:
    """The note, or the last error while the replica is not healthy."""
    if replica.note:
        return replica.note[:80]
    if replica.state is ReplicaState.HEALTHY:
        return ""
    return (replica.last_error or "")[:80]


def sync_json(entries: list[MonitorStatus | str]) -> dict[str, Any]:
    """The JSON form of ``drc sync``: per replicated-state service, each standby's sync."""
    services = []
    for entry in entries:
        if isinstance(entry, str) or not entry.sync:
            continue
        standbys = []
        for stats in entry.sync:
            standbys.append(
                {
                    "replica": stats.replica,
                    "primary": stats.primary,
                    "state": stats.state,
                    "lag_ms": {
                        "last": stats.last_lag_ms,
                        "p50": stats.percentile(50),
                        "p99": stats.percentile(99),
                        "samples": len(stats.lags_ms),
                    },
                    "primary_offset": stats.primary_offset,
                    "replica_offset": stats.replica_offset,
                    "offset_gap": stats.primary_offset - stats.replica_offset,
                    "link_up": stats.link_up,
                    "last_error": stats.last_error,
                    "consistency": asdict(stats.consistency) if stats.consistency else None,
                }
            )
        services.append({"name": entry.name, "primary": entry.primary, "standbys": standbys})
    return {"services": services}


def sync_table(entries: list[MonitorStatus | str]) -> str:
    """One line per standby of a replicated-state service."""
    lines = [
        "SERVICE        STANDBY   STATE          LAG p50/p99/last ms     OFFSET GAP  LINK  "
        "CONSISTENCY"
    ]
    for service in sync_json(entries)["services"]:
        for s in service["standbys"]:
            lag = s["lag_ms"]
            figures = "/".join(
                "-" if v is None else f"{v:.2f}" for v in (lag["p50"], lag["p99"], lag["last"])
            )
            check = s["consistency"]
            checked = "-" if check is None else ("ok" if check["ok"] else check["detail"])
            lines.append(
                f"{service['name']:<14} {s['replica']:<9} {s['state']:<14} "
                f"{figures:<23} {s['offset_gap']:<11} {'up' if s['link_up'] else 'down':<5} "
                f"{checked}"
            )
    return "\n".join(lines)
