"""The fleet's line on top of ``drc status``: system health, failure rate, brake, root causes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from drc.fleet import FleetStatus
from drc.names import FLEET_ID
from workflows.fleet import FleetWorkflow


async def read_fleet(client: Client) -> FleetStatus | str:
    """The fleet's ``status`` query, or a sentence saying why there is none."""
    handle = client.get_workflow_handle_for(FleetWorkflow.run, FLEET_ID)
    try:
        return await handle.query(FleetWorkflow.status)
    except RPCError as exc:
        return f"fleet: no fleet answers ({exc.message}); monitors judge alone"


def fleet_lines(fleet: FleetStatus | str) -> str:
    """Two or more lines: system health and brake, then each open incident's root cause."""
    if isinstance(fleet, str):
        return fleet
    down = f" ({', '.join(fleet.down)})" if fleet.down else ""
    lines = [
        f"SYSTEM {fleet.system_health.upper()}: {len(fleet.down)} of {fleet.services} services "
        f"down{down}, failure rate {fleet.failure_rate:.0%}",
        f"BRAKE {fleet.mode}: {fleet.brake_reason}"
        + (f"; {fleet.tokens:.1f} tokens" if fleet.tokens is not None else "")
        + (f"; waiting: {', '.join(fleet.waiting)}" if fleet.waiting else ""),
    ]
    for incident in fleet.incidents:
        held = f"; holds {', '.join(incident.held)}" if incident.held else ""
        lines.append(
            f"INCIDENT {incident.incident_id} on {incident.service}: root cause "
            f"{incident.root_cause}{held}"
        )
    for region, wid in fleet.evacuations.items():
        lines.append(f"EVACUATING {region}: {wid} (automatic repairs of its replicas wait for it)")
    return "\n".join(lines)


def fleet_json(fleet: FleetStatus | str) -> dict[str, Any]:
    """The fleet part of ``drc status --json``."""
    if isinstance(fleet, str):
        return {"error": fleet}
    data = asdict(fleet)
    data.pop("notes")
    return data
