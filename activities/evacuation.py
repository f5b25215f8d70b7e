"""A region's evacuation, one service at a time: through the service's own monitor.

Each activity asks the monitor (its ``status`` query) how the service stands and, when
something is owed, sends it the operator's update (``failover``, ``reprotect``,
``request_restart``) under the operator name ``fleet``, then follows the repair it started (or
attached to) to its end. The monitor stays the one owner of its repairs: its guards, fencing and
records apply to an evacuation as to any failover.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.repair_ends import wait_for_end
from drc.evacuation import EVACUATOR, EvacuationStep, EvacueeRequest, RestoreStep
from drc.model import ReplicaState
from drc.names import EVACUATE_SERVICE, RESTORE_SERVICE, monitor_id
from drc.operator import FailoverRequest, ReprotectRequest, RestartRequest
from drc.repair import RepairEnd, RepairRef
from drc.status import MonitorStatus


class EvacuationActivities:
    """``evacuate_service`` and ``restore_service``, with the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def _status(self, service: str) -> MonitorStatus:
        handle = self._client.get_workflow_handle(monitor_id(service))
        status: MonitorStatus = await handle.query("status", result_type=MonitorStatus)
        return status

    async def _update(self, service: str, name: str, request: object) -> str:
        """The update's answer (a workflow id); ``ApplicationError`` when refused."""
        handle = self._client.get_workflow_handle(monitor_id(service))
        try:
            wid: str = await handle.execute_update(name, request, result_type=str)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            said = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ApplicationError(f"{service}'s monitor refused {name}: {said}") from err
        return wid

    async def _repair(self, service: str, name: str, request: object) -> tuple[str, RepairEnd]:
        """Ask for the repair and follow it to its end.

        The answer is the repair's workflow id, or a sentence that starts with it (``... is
        already running``); one that names no run ends as "not found".
        """
        wid = (await self._update(service, name, request)).split(" ", 1)[0]
        return wid, await wait_for_end(self._client, RepairRef(wid, None))

    @activity.defn(name=EVACUATE_SERVICE)
    async def evacuate_service(self, request: EvacueeRequest) -> EvacuationStep:
        """Have the service served from outside the region; what was done.

        Idempotent: the monitor's ``failover`` update attaches to a failover already running,
        and a retry that finds the primary outside the region reports it and does nothing.
        """
        ev, region = request.evacuee, request.region
        status = await self._status(ev.service)
        if ev.redundancy != "active-standby":
            return _served(ev.service, region, ev.elsewhere, status)
        primary = status.primary
        if primary not in ev.in_region:
            detail = f"{ev.service} is already served by {primary}, outside {region}"
            return EvacuationStep(ev.service, "already-elsewhere", detail, primary)
        failover = FailoverRequest(reason=request.reason, operator=EVACUATOR)
        wid: str | None = None
        end: RepairEnd | None = None
        refused: str | None = None
        try:
            wid, end = await self._repair(ev.service, "failover", failover)
        except ApplicationError as err:
            refused = err.message
        after = await self._status(ev.service)
        if after.primary not in ev.in_region and after.primary is not None:
            if end is None:  # its monitor's own failover ended between our look and the update
                detail = f"{ev.service} was failed over to {after.primary} by its monitor"
                return EvacuationStep(ev.service, "already-elsewhere", detail, after.primary)
            detail = f"failed over from {primary} to {after.primary}: {end.message}"
            return EvacuationStep(ev.service, "failed-over", detail, after.primary, wid)
        said = refused or (end.message if end is not None else "no failover ran")
        detail = f"{ev.service} is still served by {after.primary} in {region}: {said}"
        return EvacuationStep(ev.service, "failed", detail, after.primary, wid)

    @activity.defn(name=RESTORE_SERVICE)
    async def restore_service(self, request: EvacueeRequest) -> RestoreStep:
        """Bring the region's replicas of the service back as standbys (or into rotation).

        One attempt; ``waiting`` when the region does not take them yet. Idempotent: the
        monitor's updates attach to a repair already running, and a replica already back is
        owed nothing.
        """
        ev, region = request.evacuee, request.region
        status = await self._status(ev.service)
        owed = [
            r.name
            for r in status.replicas
            if r.name in ev.in_region and r.state is not ReplicaState.HEALTHY
        ]
        unprotected = status.unprotected if status.unprotected in ev.in_region else None
        if unprotected is None and not owed:
            detail = f"{', '.join(ev.in_region)} of {ev.service} answer(s) in {region}"
            return RestoreStep(ev.service, "nothing-owed", detail)
        said: list[str] = []
        waiting = False
        reason = f"{region} returned? {request.reason}"
        try:
            if unprotected is not None:
                ask = ReprotectRequest(unprotected, reason=reason, operator=EVACUATOR)
                _, end = await self._repair(ev.service, "reprotect", ask)
                said.append(f"re-protect {unprotected}: {end.message}")
                waiting |= not end.succeeded
            for replica in (r for r in owed if r != unprotected):
                ask_restart = RestartRequest(replica, reason=reason, operator=EVACUATOR)
                _, end = await self._repair(ev.service, "request_restart", ask_restart)
                said.append(f"restart {replica}: {end.message}")
                waiting |= not end.succeeded
        except ApplicationError as err:
            said.append(err.message)
            waiting = True
        return RestoreStep(ev.service, "waiting" if waiting else "restored", "; ".join(said))


def _served(
    service: str, region: str, elsewhere: tuple[str, ...], status: MonitorStatus
) -> EvacuationStep:
    """An active-active or single service: served from outside if a replica there answers."""
    answering = [
        r.name
        for r in status.replicas
        if r.name in elsewhere and r.state in (ReplicaState.HEALTHY, ReplicaState.DEGRADED)
    ]
    if answering:
        detail = (
            f"{service} is served by {', '.join(answering)} outside {region}; its monitor "
            f"keeps the replicas in {region} out of rotation"
        )
        return EvacuationStep(service, "served-elsewhere", detail)
    if not elsewhere:
        detail = f"{service} has no replica outside {region}: it is down until {region} returns"
    else:
        detail = f"none of {', '.join(elsewhere)} (outside {region}) answers"
    return EvacuationStep(service, "stranded", detail)
