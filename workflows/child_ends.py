"""How a child repair workflow ended, read from its handle: every end is an event.

A child can complete, fail, be cancelled, be terminated (an operator in the Web UI) or time
out; only the first two send the monitor their own finished signal. The handle's outcome says
which, so the monitor learns every end (design notes, "every end of a repair is an event").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
)
from temporalio.exceptions import TimeoutError as WorkflowTimeoutError

with workflow.unsafe.imports_passed_through():
    from drc.names import AWAIT_REPAIR_END
    from drc.repair import RepairEnd, RepairRef, RestartResult, RunbookResult
from workflows.runbook import result_from_failure

FOLLOW_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)


def follow_to_end(ref: RepairRef, on_end: Callable[[RepairEnd], None]) -> None:
    """Learn how a workflow whose handle is gone ends (``await_repair_end``), however it ends.

    ``on_end`` gets its ``RepairEnd`` (``failed``, "lost track of ...", if the following
    itself failed); it is not called when the following is cancelled: the run is ending
    (continue-as-new) and the next one follows it again.
    """
    handle = workflow.start_activity(
        AWAIT_REPAIR_END,
        ref,
        result_type=RepairEnd,
        start_to_close_timeout=timedelta(days=1),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=FOLLOW_RETRY,
        summary=f"follow {ref.workflow_id}",
    )

    def done(end: asyncio.Future[RepairEnd]) -> None:
        if end.cancelled():
            return
        if (error := end.exception()) is not None:
            message = f"lost track of {ref.workflow_id}: {error}"
            on_end(RepairEnd(ref.workflow_id, ref.run_id, "failed", message))
            return
        on_end(end.result())

    handle.add_done_callback(done)


def end_of_child(workflow_id: str, run_id: str | None, done: asyncio.Future[Any]) -> RepairEnd:
    """The ``RepairEnd`` of a finished child workflow handle (a done future)."""
    if done.cancelled():
        return RepairEnd(workflow_id, run_id, "cancelled", "the wait for it was cancelled")
    err = done.exception()
    if err is None:
        result = done.result()
        if isinstance(result, RunbookResult):
            return RepairEnd(workflow_id, run_id, "completed", result.reason, runbook=result)
        if isinstance(result, RestartResult):
            return RepairEnd(workflow_id, run_id, "completed", result.reason, restart=result)
        return RepairEnd(workflow_id, run_id, "completed", f"{workflow_id} completed")
    cause = err.cause if isinstance(err, ChildWorkflowError) else err
    if isinstance(cause, TerminatedError):
        said = f": {cause.message}" if cause.message not in ("", "Terminated") else ""
        return RepairEnd(workflow_id, run_id, "terminated", f"{workflow_id} was terminated{said}")
    if isinstance(cause, CancelledError):
        runbook = result_from_failure(err)
        return RepairEnd(
            workflow_id, run_id, "cancelled", f"{workflow_id} was cancelled", runbook=runbook
        )
    if isinstance(cause, WorkflowTimeoutError):
        return RepairEnd(workflow_id, run_id, "timed_out", f"{workflow_id} timed out")
    message = cause.message if isinstance(cause, ApplicationError) else str(cause)
    return RepairEnd(workflow_id, run_id, "failed", message, runbook=result_from_failure(err))
