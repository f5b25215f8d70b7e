"""Read every monitor's status: the ``status`` query, refreshed by its watch's last heartbeat."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from activities.watch import progress_from_details
from drc.detector import is_suspect
from drc.model import MonitorStatus, ReplicaState, ReplicaStatus, ReplicaTrack
from drc.names import monitor_id
from runbooks.catalog import Catalog
from workflows.monitor import ServiceMonitorWorkflow

OVERLAY_STATES = {ReplicaState.RECOVERING, ReplicaState.CRASH_LOOPING}


async def read_status(client: Client, catalog: Catalog) -> list[MonitorStatus | str]:
    """One entry per catalog service: its status, or a sentence saying why there is none."""
    out: list[MonitorStatus | str] = []
    for service in catalog.services:
        handle = client.get_workflow_handle_for(
            ServiceMonitorWorkflow.run, monitor_id(service.name)
        )
        try:
            status = await handle.query(ServiceMonitorWorkflow.status)
            live = await _live_tracks(client, monitor_id(service.name))
        except RPCError as exc:
            out.append(f"{service.name}: no monitor answers ({exc.message})")
            continue
        _refresh(status, live)
        out.append(status)
    return out


async def _live_tracks(client: Client, workflow_id: str) -> dict[str, ReplicaTrack]:
    desc = await client.get_workflow_handle(workflow_id).describe()
    for pending in desc.raw_description.pending_activities:
        if pending.activity_type.name == "watch_service" and pending.heartbeat_details.payloads:
            values = await client.data_converter.decode(pending.heartbeat_details.payloads)
            return progress_from_details(values[0]).tracks
    return {}


def _refresh(status: MonitorStatus, live: dict[str, ReplicaTrack]) -> None:
    for replica in status.replicas:
        track = live.get(replica.name)
        if track is None:
            continue
        replica.latency_ms = track.latency_ms
        replica.consecutive_failures = track.consecutive_failures
        replica.last_error = track.last_error
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
                "paused": entry.paused,
                "replicas": [{**asdict(r), "state": r.state.value} for r in entry.replicas],
                "decisions": [asdict(d) for d in entry.decisions[-5:]],
            }
        )
    return {"services": services, "errors": errors}


def status_table(entries: list[MonitorStatus | str]) -> str:
    """A screen-wide table of services and replicas."""
    rows = [
        ("SERVICE", "STATE", "REPLICA", "REGION", "REPLICA STATE", "LATENCY", "FAILS", "LAST ERROR")
    ]
    for entry in entries:
        if isinstance(entry, str):
            rows.append((entry, "", "", "", "", "", "", ""))
            continue
        for i, r in enumerate(entry.replicas):
            latency = "-" if r.latency_ms is None else f"{r.latency_ms:.1f} ms"
            head = (entry.name, entry.state.value) if i == 0 else ("", "")
            rows.append(
                (
                    *head,
                    r.name,
                    r.region,
                    r.state.value,
                    latency,
                    str(r.consecutive_failures),
                    _problem(r),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _problem(replica: ReplicaStatus) -> str:
    """The note, or the last error while the replica is not healthy."""
    if replica.note:
        return replica.note[:80]
    if replica.state is ReplicaState.HEALTHY:
        return ""
    return (replica.last_error or "")[:80]
