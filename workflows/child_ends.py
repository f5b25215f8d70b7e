"""How a child repair workflow ended, read from its handle: every end is an event.

A child can complete, fail, be cancelled, be terminated (an operator in the Web UI) or time
out; only the first two send the monitor their own finished signal. The handle's outcome says
which, so the monitor learns every end (design notes, "every end of a repair is an event").
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
)
from temporalio.exceptions import TimeoutError as WorkflowTimeoutError

with workflow.unsafe.imports_passed_through():
    from drc.repair import RepairEnd, RestartResult, RunbookResult
from workflows.runbook import result_from_failure


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
