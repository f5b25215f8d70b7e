"""Whether a replica that misses heartbeats is only still starting (process control says so)."""

from __future__ import annotations

from activities.process_control import ProcessController
from drc.catalog import Replica
from drc.errors import ProcessControlError


class StartupGate:
    """Asks process control about a replica that missed a heartbeat.

    A replica that supervisord reports ``STARTING``, or ``RUNNING`` for less than the service's
    ``startup_grace_s``, is loading, not dead: a stack that resumes (drc up on existing state)
    must not restart every replica it has just started. Read-only.
    """

    def __init__(self, controller: ProcessController) -> None:
        self._controller = controller

    async def starting(self, supervisor_url: str, replica: Replica, grace_s: float) -> str | None:
        """Why the replica counts as starting, or None (not under control, dead, or up long)."""
        if replica.process is None:
            return None
        try:
            info = await self._controller.info(supervisor_url, replica.process)
        except ProcessControlError:
            return None  # process control cannot tell: the miss counts, as it would without it
        if info.state == "STARTING":
            return f"{replica.name} is STARTING (process control)"
        if info.state == "RUNNING" and info.uptime_s is not None and info.uptime_s < grace_s:
            return f"{replica.name} started {info.uptime_s:.0f} s ago (grace {grace_s:g} s)"
        return None
