"""What process control says about a replica that missed a heartbeat: starting, or dead.

A second, independent source for the detector (design notes, "dead vs unreachable"): a miss
while supervisord reports the process STARTING, or RUNNING for less than the service's
``startup_grace_s``, is a replica still loading, not a failure (a stack that resumes must not
restart every replica it has just started) — unless it already answered since that start: as
with Kubernetes' startup probe, the grace ends with the first answer, so a replica that hangs
in its first seconds is failed like any other; a miss while it reports the process EXITED, FATAL
or BACKOFF is a death, not a blip, and fails the replica at once. STOPPED is neither: an
operator or drc stopped it, or supervisord was restarted and an orphan still serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.process_control import ProcessController
from drc.catalog import Replica
from drc.errors import ProcessControlError

GONE = frozenset({"EXITED", "FATAL", "BACKOFF"})
UPTIME_RESOLUTION_S = 1.0
"""supervisord reports start and now in whole seconds: an uptime may read up to 1 s long, so an
answer counts as since the start only when it came more than that after it (else the last
answer of the previous process, a moment before a restart, would end the new one's grace)."""


@dataclass(frozen=True)
class ProcessVerdict:
    """Why a miss is forgiven (``starting``) or confirmed (``dead``); both None: just a miss."""

    starting: str | None = None
    dead: str | None = None


class ProcessView:
    """Asks process control about replicas that missed a heartbeat; read-only."""

    def __init__(self, controller: ProcessController) -> None:
        self._controller = controller

    async def verdict(
        self,
        supervisor_url: str,
        replica: Replica,
        grace_s: float,
        answered_ago_s: float | None = None,
    ) -> ProcessVerdict:
        """What process control says of ``replica`` (nothing when it cannot tell).

        ``answered_ago_s``: how long ago the watch last saw it answer (None: not seen); an
        answer since the process started ends its startup grace.
        """
        if replica.process is None:
            return ProcessVerdict()
        try:
            info = await self._controller.info(supervisor_url, replica.process)
        except ProcessControlError:
            return ProcessVerdict()  # it cannot tell: the miss counts as a plain miss
        if info.state == "STARTING":
            return ProcessVerdict(starting=f"{replica.name} is STARTING (process control)")
        answered_since_start = (
            answered_ago_s is not None
            and info.uptime_s is not None
            and answered_ago_s + UPTIME_RESOLUTION_S < info.uptime_s
        )
        in_grace = info.uptime_s is not None and info.uptime_s < grace_s
        if info.state == "RUNNING" and in_grace and not answered_since_start:
            why = f"{replica.name} started {info.uptime_s:.0f} s ago (grace {grace_s:g} s)"
            return ProcessVerdict(starting=why)
        if info.state in GONE:
            status = f", exit status {info.exitstatus}" if info.exitstatus is not None else ""
            return ProcessVerdict(dead=f"process control reports it {info.state}{status}")
        return ProcessVerdict()
