"""Follow a repair workflow to its end, for a monitor that no longer holds its handle.

However it ends (completed, failed, cancelled, terminated, timed out), the monitor learns it:
after a continue-as-new, the new run follows the repairs the last one started this way.
"""

from __future__ import annotations

import asyncio

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.exceptions import TimeoutError as WorkflowTimeoutError
from temporalio.service import RPCError, RPCStatusCode

from drc.names import AWAIT_REPAIR_END
from drc.repair import EndStatus, RepairEnd, RepairRef, RestartResult, RunbookResult

POLL_S = 0.5
_STATUS: dict[WorkflowExecutionStatus, EndStatus] = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}


class RepairEndActivities:
    """The ``await_repair_end`` activity, with the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=AWAIT_REPAIR_END)
    async def await_repair_end(self, ref: RepairRef) -> RepairEnd:
        """Wait until the workflow ends and say how. Read-only, so any retry is safe."""
        return await wait_for_end(self._client, ref)


async def wait_for_end(client: Client, ref: RepairRef) -> RepairEnd:
    """Poll ``ref`` until it ends, heartbeating from inside an activity; how it ended."""
    handle = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
    while True:
        try:
            desc = await handle.describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return RepairEnd(
                    ref.workflow_id, ref.run_id, "failed", f"{ref.workflow_id} not found"
                )
            raise
        status = _STATUS.get(desc.status) if desc.status is not None else None
        if status is not None:
            return await _end(client, ref, desc.run_id, status)
        activity.heartbeat(desc.status.name if desc.status else "unknown")
        await asyncio.sleep(POLL_S)


async def _end(client: Client, ref: RepairRef, run_id: str, status: EndStatus) -> RepairEnd:
    handle = client.get_workflow_handle(ref.workflow_id, run_id=run_id)
    try:
        value = await handle.result(follow_runs=False)
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, TerminatedError):
            said = f": {cause.message}" if cause.message not in ("", "Terminated") else ""
            return RepairEnd(
                ref.workflow_id, run_id, "terminated", f"{ref.workflow_id} was terminated{said}"
            )
        if isinstance(cause, CancelledError):
            return RepairEnd(
                ref.workflow_id, run_id, "cancelled", f"{ref.workflow_id} was cancelled"
            )
        if isinstance(cause, WorkflowTimeoutError):
            return RepairEnd(ref.workflow_id, run_id, "timed_out", f"{ref.workflow_id} timed out")
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        runbook = _runbook_of(cause)
        return RepairEnd(ref.workflow_id, run_id, status, message, runbook=runbook)
    return _completed(ref.workflow_id, run_id, value)


def _runbook_of(cause: BaseException | None) -> RunbookResult | None:
    if isinstance(cause, ApplicationError) and cause.details:
        try:
            return TypeAdapter(RunbookResult).validate_python(cause.details[0])
        except ValueError:
            return None
    return None


def _completed(workflow_id: str, run_id: str, value: object) -> RepairEnd:
    try:
        runbook = TypeAdapter(RunbookResult).validate_python(value)
    except ValueError:
        pass
    else:
        return RepairEnd(workflow_id, run_id, "completed", runbook.reason, runbook=runbook)
    try:
        restart = TypeAdapter(RestartResult).validate_python(value)
    except ValueError:
        return RepairEnd(workflow_id, run_id, "completed", f"{workflow_id} completed")
    return RepairEnd(workflow_id, run_id, "completed", restart.reason, restart=restart)
