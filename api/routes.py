"""The recovery API's endpoints.

The seed's ``/recovery/*``, Patroni-style role checks, incidents and their reports, chaos
results, and the API's own health.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import TypeAdapter
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.reports import compose_report
from api.app import ApiContext, Context, Live, Operator
from api.models import (
    ApiHealth,
    ChaosRow,
    EndpointRole,
    FailoverBody,
    FailuresView,
    IncidentSummary,
    RecoveryStatus,
    Refusal,
    RepairStarted,
    RestartBody,
    ServiceView,
    SwitchoverBody,
    SwitchoverView,
    SynchronizationView,
)
from api.views import (
    failure_view,
    primary_check,
    recovery_status,
    replica_check,
    service_view,
    synchronization,
    when,
)
from drc.incident import Incident
from drc.names import SWITCHOVER_WORKFLOW, monitor_id, switchover_id
from drc.operator import FailoverRequest, RestartRequest
from drc.store.availability import failures_summary
from drc.switchover import SwitchoverInput, SwitchoverResult
from workers.chaos_views import chaos_rows

router = APIRouter()
SERVICES = TypeAdapter(list[ServiceView])

REFUSED: dict[int | str, dict[str, Any]] = {
    400: {"model": Refusal, "description": "The body is not JSON."},
    401: {"model": Refusal, "description": "No token, or not the API's token."},
    404: {"model": Refusal, "description": "Unknown service, replica or incident."},
    409: {"model": Refusal, "description": "The monitor refused the repair (the reason says why)."},
    503: {"model": Refusal, "description": "Temporal does not answer."},
}
HOUR_S = 3600.0


class MarkdownResponse(PlainTextResponse):
    """A Markdown document (``text/markdown``)."""

    media_type = "text/markdown"


AS_JSON = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}}}
REPORT_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident.", **AS_JSON},
    503: {"description": "Temporal does not answer.", **AS_JSON},
}


# --- reads -----------------------------------------------------------------------------------


@router.get("/recovery/status", response_model=RecoveryStatus, tags=["recovery"])
async def get_status(ctx: Context, live: Live) -> Response:
    """System health, every service's heartbeats and health, the last hour's failures."""
    body = live.render(
        "status",
        lambda: recovery_status(ctx.catalog, live, live.failures).model_dump_json().encode(),
    )
    return Response(body, media_type="application/json")


@router.get("/recovery/services", response_model=list[ServiceView], tags=["recovery"])
async def get_services(ctx: Context, live: Live) -> Response:
    """Every service: state, replicas, which replica takes traffic, latency, region."""
    body = live.render(
        "services",
        lambda: SERVICES.dump_json([service_view(s, live) for s in ctx.catalog.services]),
    )
    return Response(body, media_type="application/json")


@router.get(
    "/recovery/services/{service}", response_model=ServiceView, responses=REFUSED, tags=["recovery"]
)
async def get_service(service: str, ctx: Context, live: Live) -> ServiceView:
    """One service (404 names the known ones)."""
    return service_view(ctx.service(service), live)


@router.get("/recovery/failures", response_model=FailuresView, tags=["recovery"])
async def get_failures(
    ctx: Context, hours: Annotated[float, Query(gt=0, le=24 * 366)] = 24
) -> FailuresView:
    """Failed replicas, services down, refusals, freezes, crash loops of the last N hours."""
    found = await run_in_threadpool(ctx.store.failures, time.time() - hours * HOUR_S)
    summary = failures_summary(found, hours)
    return FailuresView(
        failures=[failure_view(f) for f in summary.failures],
        total_count=summary.total_count,
        critical_count=summary.critical_count,
        time_period_hours=summary.time_period_hours,
    )


@router.get("/recovery/synchronization", response_model=SynchronizationView, tags=["recovery"])
async def get_synchronization(ctx: Context, live: Live) -> SynchronizationView:
    """Every standby: sync state, lag now and p99, link, offset gap."""
    return synchronization(ctx.catalog, live)


# --- repairs (bearer token) ------------------------------------------------------------------


@router.post(
    "/recovery/failover/{service}",
    response_model=RepairStarted,
    status_code=202,
    responses=REFUSED,
    tags=["repairs"],
)
async def post_failover(
    service: str, ctx: Context, who: Operator, body: FailoverBody | None = None
) -> RepairStarted:
    """Fail an active/standby service over, as ``drc failover``; answers its workflow id."""
    body = body or FailoverBody()
    ctx.service(service)
    request = FailoverRequest(to=body.to, reason=body.reason, operator=who, force=body.force)
    wid = await _update(ctx, service, "failover", request)
    return _started(ctx, service, wid, who)


@router.post(
    "/recovery/restart/{service}",
    response_model=RepairStarted,
    status_code=202,
    responses=REFUSED,
    tags=["repairs"],
)
async def post_restart(
    service: str, body: RestartBody, ctx: Context, who: Operator
) -> RepairStarted:
    """Restart a replica now, as ``drc restart``; answers its workflow id."""
    ctx.replica_of(service, body.replica)
    request = RestartRequest(replica=body.replica, reason=body.reason, operator=who)
    answer = await _update(ctx, service, "request_restart", request)
    # The monitor answers a restart's workflow id, or "<id> is already running" (no second one).
    wid, running, _ = answer.partition(" is already running")
    started = _started(ctx, service, wid, who)
    if running:
        started.note = f"{wid} was already running: no second restart was started"
    return started


@router.post(
    "/recovery/switchover/{service}",
    response_model=RepairStarted,
    status_code=202,
    responses=REFUSED,
    tags=["repairs"],
)
async def post_switchover(
    service: str, body: SwitchoverBody, ctx: Context, who: Operator
) -> RepairStarted:
    """Schedule a failover at ``scheduled_at`` (a durable Temporal timer); one per service."""
    if body.to is not None:
        ctx.replica_of(service, body.to)
    else:
        ctx.service(service)
    inp = SwitchoverInput(service, body.scheduled_at.timestamp(), body.to, body.reason, who)
    wid = switchover_id(service)
    try:
        await ctx.client.start_workflow(
            SWITCHOVER_WORKFLOW,
            inp,
            id=wid,
            task_queue=ctx.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise HTTPException(
            409, f"a switchover of {service} is already scheduled (DELETE it first)"
        ) from None
    except RPCError as exc:
        raise HTTPException(503, f"Temporal does not answer: {exc.message}") from None
    return _started(ctx, service, wid, who)


@router.get(
    "/recovery/switchover/{service}",
    response_model=SwitchoverView,
    responses=REFUSED,
    tags=["repairs"],
)
async def get_switchover(service: str, ctx: Context) -> SwitchoverView:
    """The service's latest scheduled switchover and where it stands."""
    ctx.service(service)
    handle = ctx.client.get_workflow_handle(switchover_id(service))
    try:
        desc = await handle.describe()
    except RPCError:
        raise HTTPException(404, f"no switchover of {service} was scheduled") from None
    view = SwitchoverView(
        service=service,
        workflow_id=handle.id,
        status=desc.status.name.lower() if desc.status else "unknown",
    )
    if desc.status is WorkflowExecutionStatus.RUNNING:
        try:
            inp = await handle.query("scheduled", result_type=SwitchoverInput)
        except (RPCError, WorkflowQueryFailedError) as exc:
            raise HTTPException(503, f"the switchover does not answer: {exc}") from None
        if inp is not None:
            view.scheduled_at, view.to, view.operator = when(inp.scheduled_at), inp.to, inp.operator
    elif desc.status is WorkflowExecutionStatus.COMPLETED:
        done = await ctx.client.get_workflow_handle(
            handle.id, result_type=SwitchoverResult
        ).result()
        view.status = f"refused: {done.refused}" if done.refused else f"done: {done.workflow_id}"
    return view


@router.delete(
    "/recovery/switchover/{service}",
    response_model=SwitchoverView,
    responses=REFUSED,
    tags=["repairs"],
)
async def delete_switchover(service: str, ctx: Context, who: Operator) -> SwitchoverView:
    """Call off a scheduled switchover that has not happened yet (409 once it has run)."""
    ctx.service(service)
    handle = ctx.client.get_workflow_handle(switchover_id(service))
    try:
        desc = await handle.describe()
        if desc.status is not WorkflowExecutionStatus.RUNNING:
            raise HTTPException(409, f"no pending switchover of {service}: it is {desc.status}")
        await handle.cancel()
    except RPCError:
        raise HTTPException(404, f"no switchover of {service} was scheduled") from None
    try:
        await handle.result()
    except WorkflowFailureError:
        pass  # cancelled: what was asked
    return SwitchoverView(service=service, workflow_id=handle.id, status="cancelled", operator=who)


async def _update(ctx: ApiContext, service: str, name: str, request: Any) -> str:
    handle = ctx.client.get_workflow_handle(monitor_id(service))
    try:
        answer: str = await handle.execute_update(name, request, result_type=str)
    except WorkflowUpdateFailedError as exc:
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        raise HTTPException(409, f"refused: {cause}") from None
    except RPCError as exc:
        why = f"the monitor of {service} does not answer: {exc.message}"
        raise HTTPException(503, why) from None
    return answer


def _started(ctx: ApiContext, service: str, wid: str, who: str) -> RepairStarted:
    link = web_ui_link(ctx, wid)
    return RepairStarted(service=service, workflow_id=wid, operator=who, web_ui=link)


def web_ui_link(ctx: ApiContext, workflow_id: str) -> str:
    """The workflow's page in the Temporal Web UI."""
    namespace = quote(ctx.settings.temporal_namespace, safe="")
    return f"{ctx.settings.web_ui}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


# --- Patroni-style role checks for a load balancer ---------------------------------------------


@router.get(
    "/services/{service}/primary",
    response_model=EndpointRole,
    responses={503: {"model": EndpointRole, "description": "Not the writer."}, 404: REFUSED[404]},
    tags=["health checks"],
)
async def get_primary(
    service: str,
    ctx: Context,
    live: Live,
    response: Response,
    replica: Annotated[str, Query(min_length=1, description="The replica asking (its name).")],
) -> EndpointRole:
    """200 on the replica that should take writes, 503 on every other one."""
    ok, role = primary_check(ctx.replica_of(service, replica), replica, live)
    response.status_code = 200 if ok else 503
    return role


@router.get(
    "/services/{service}/replica",
    response_model=EndpointRole,
    responses={503: {"model": EndpointRole, "description": "Not usable."}, 404: REFUSED[404]},
    tags=["health checks"],
)
async def get_replica(
    service: str,
    ctx: Context,
    live: Live,
    response: Response,
    replica: Annotated[str, Query(min_length=1, description="The replica asking (its name).")],
    max_lag_ms: Annotated[float | None, Query(ge=0)] = None,
) -> EndpointRole:
    """200 on a healthy standby in sync (within ``max_lag_ms``), 503 otherwise."""
    ok, role = replica_check(ctx.replica_of(service, replica), replica, live, max_lag_ms)
    response.status_code = 200 if ok else 503
    return role


# --- incidents, reports, chaos, health ---------------------------------------------------------


@router.get("/incidents", response_model=list[IncidentSummary], tags=["incidents"])
async def get_incidents(
    ctx: Context, hours: Annotated[float, Query(gt=0, le=24 * 366)] = 24
) -> list[IncidentSummary]:
    """Incidents and near misses of the last N hours, newest first."""
    found = await run_in_threadpool(ctx.store.incidents, time.time() - hours * HOUR_S)
    return [incident_summary(i) for i in found]


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentSummary,
    responses=REFUSED,
    tags=["incidents"],
)
async def get_incident(incident_id: str, ctx: Context) -> IncidentSummary:
    """One incident."""
    return incident_summary(await _incident(ctx, incident_id))


@router.get(
    "/incidents/{incident_id}/report.md",
    response_class=MarkdownResponse,
    responses=REPORT_REFUSED,
    tags=["incidents"],
)
async def get_report_md(incident_id: str, ctx: Context) -> MarkdownResponse:
    """The post-incident report in Markdown, rendered now from the workflow histories."""
    composed = await _compose(ctx, incident_id)
    return MarkdownResponse(composed.markdown)


@router.get(
    "/incidents/{incident_id}/report.html",
    response_class=HTMLResponse,
    responses=REPORT_REFUSED,
    tags=["incidents"],
)
async def get_report_html(incident_id: str, ctx: Context) -> HTMLResponse:
    """The post-incident report as one HTML page."""
    composed = await _compose(ctx, incident_id)
    return HTMLResponse(composed.html)


async def _incident(ctx: ApiContext, incident_id: str) -> Incident:
    found = await run_in_threadpool(ctx.store.incident, incident_id)
    if found is None:
        raise HTTPException(404, f"no incident {incident_id!r} (GET /incidents lists them)")
    return found


async def _compose(ctx: ApiContext, incident_id: str) -> Any:
    incident = await _incident(ctx, incident_id)
    try:
        return await compose_report(
            ctx.client, ctx.store, incident, ctx.settings.web_ui, ctx.settings.temporal_namespace
        )
    except RPCError as exc:
        raise HTTPException(503, f"Temporal does not answer: {exc.message}") from None


def incident_summary(i: Incident) -> IncidentSummary:
    """An incident with its TTD/TTR and report links."""
    return IncidentSummary(
        id=i.id,
        service=i.service,
        replica=i.replica,
        type=i.type,
        severity=i.severity,
        status=i.status,
        near_miss=i.near_miss,
        cause=i.cause,
        started_at=when(i.started_at),
        resolved_at=None if i.resolved_at is None else when(i.resolved_at),
        ttd_s=round(i.detected_at - i.started_at, 3),
        ttr_s=None if i.resolved_at is None else round(i.resolved_at - i.started_at, 3),
        report_md=f"/incidents/{quote(i.id, safe='')}/report.md",
        report_html=f"/incidents/{quote(i.id, safe='')}/report.html",
    )


@router.get("/chaos", response_model=list[ChaosRow], tags=["chaos"])
async def get_chaos(ctx: Context) -> list[ChaosRow]:
    """Every experiment: schedule, next runs, last verdict and resilience score."""
    try:
        rows = await chaos_rows(ctx.client, ctx.settings.chaos_dir, ctx.settings.home.resolve())
    except RPCError as exc:
        raise HTTPException(503, f"Temporal does not answer: {exc.message}") from None
    return [
        ChaosRow(
            experiment=r.experiment,
            schedule=r.schedule,
            paused=r.paused,
            next_runs=[when(t) for t in r.next_runs],
            runs=r.runs,
            passed=r.passed,
            objective_met=r.objective_met,
            score=r.score,
            last_verdict=r.last_verdict,
            last_reason=r.last_reason,
            last_at=None if r.last_at is None else when(r.last_at),
        )
        for r in rows
    ]


@router.get("/health", response_model=ApiHealth, tags=["health checks"])
async def get_health(ctx: Context, response: Response) -> ApiHealth:
    """The API itself: 200 when Temporal and the store answered the last snapshot, else 503."""
    latest = ctx.snapshots.latest
    age = None if latest is None else round(datetime.now(UTC).timestamp() - latest.taken_at, 3)
    temporal = latest is not None and latest.fleet is not None and (age or 0) < 10
    store = latest is not None and latest.store_ok  # read with the snapshot, each second
    ok = temporal and store
    response.status_code = 200 if ok else 503
    status = "ok" if ok else "degraded"
    return ApiHealth(status=status, temporal=temporal, store=store, snapshot_age_s=age)
