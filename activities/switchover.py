"""The scheduled switchover's one side effect: the monitor's ``failover`` update."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from drc.names import REQUEST_FAILOVER, monitor_id
from drc.operator import FailoverRequest
from drc.switchover import FailoverCall, SwitchoverResult


@activity.defn(name=REQUEST_FAILOVER)
async def request_failover(call: FailoverCall) -> SwitchoverResult:
    """Ask the service's monitor to fail over, as ``drc failover`` does.

    Idempotent: the update carries ``call.update_id``, and Temporal runs an update of one id
    once per workflow run, so a retry after a lost answer attaches to the first one instead of
    failing over a second time. A refusal (no eligible standby, unknown replica) is a result,
    not an error: retrying would not change it.
    """
    handle = activity.client().get_workflow_handle(monitor_id(call.service))
    request = FailoverRequest(to=call.to, reason=call.reason, operator=call.operator, force=False)
    try:
        workflow_id = await handle.execute_update(
            "failover", request, id=call.update_id, result_type=str
        )
    except WorkflowUpdateFailedError as exc:
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        return SwitchoverResult(call.service, None, refused=cause)
    if not workflow_id:
        raise ApplicationError(f"{call.service}: the monitor answered no workflow id")
    return SwitchoverResult(call.service, workflow_id)
