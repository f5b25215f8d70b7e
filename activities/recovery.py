"""Activities that watch a repair take hold: a restarted replica passing its health probe."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.probes.engine import ProbeEngine
from activities.process_control import ProcessController
from drc.model import ProbeResult
from drc.repair import WaitHealthyInput

DEAD_STATES = frozenset({"EXITED", "FATAL", "BACKOFF", "STOPPED"})


class RecoveryActivities:
    """Owns the probe engine and process controller that a recovery check needs."""

    def __init__(self, engine: ProbeEngine, controller: ProcessController) -> None:
        self._engine = engine
        self._controller = controller

    @activity.defn(name="check_recovered")
    async def check_recovered(self, inp: WaitHealthyInput) -> ProbeResult:
        """One look at a restarted replica: healthy, not yet, or dead.

        Called under a retry policy that acts as the poller: "not yet" is a retryable, benign
        error; a process that exited after its start is non-retryable, since waiting longer
        cannot make it healthy. It only reads, so any number of retries is safe.
        """
        replica = inp.replica
        if inp.supervisor_url and replica.process:
            info = await self._controller.info(inp.supervisor_url, replica.process)
            if info.state in DEAD_STATES:
                status = f", exit status {info.exitstatus}" if info.exitstatus is not None else ""
                raise ApplicationError(
                    f"{replica.name} is {info.state} after its start{status}: {info.description}",
                    type="ProcessExited",
                    non_retryable=True,
                )
        result = await self._engine.health(replica, inp.timeout_ms)
        if not result.ok:
            raise ApplicationError(
                f"{replica.name} not healthy yet: {result.error}",
                type="NotHealthyYet",
                category=ApplicationErrorCategory.BENIGN,
            )
        return result
