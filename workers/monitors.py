"""One monitor per catalog service: start, hand the catalog to, replace, or retire monitors.

Used by every worker at boot and by ``drc reload``. Idempotent: signal-with-start attaches to
a running monitor, which ignores an unchanged configuration, so any number of workers booting
yields one monitor per service; a monitor whose service left the catalog is retired (it
records why and ends); one started by an older drc with another input layout is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from drc.catalog import Catalog, Service
from drc.fleet import FleetConfig, ServiceNode
from drc.names import (
    FLEET_ID,
    MONITOR_SCHEMA,
    MONITOR_WORKFLOW,
    SA_KIND,
    SA_SERVICE,
    WATCH_GROUP_WORKFLOW,
    monitor_id,
    watch_group_id,
)
from drc.operator import RetireRequest
from drc.watch import WatchGroupInput
from runbooks.runbook import Runbook, load_builtin_runbooks
from workflows.fleet import FleetInput, FleetWorkflow
from workflows.monitor import ServiceMonitorWorkflow
from workflows.monitor_types import MonitorConfig, MonitorInput
from workflows.watch_group import WatchGroupWorkflow

log = logging.getLogger("drc.monitors")

DEFAULT_GROUP_SIZE = 50
"""Services per watch group: measured at 1,000 services (bench/worker_scale.py)."""
START_CONCURRENCY = 25
"""Monitors started at once at boot (one at a time took a minute for 1,000)."""


@dataclass
class Applied:
    """What applying a catalog did, per monitor."""

    started_or_updated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{len(self.started_or_updated)} monitors started or updated"]
        if self.replaced:
            parts.append(f"replaced (older drc): {', '.join(self.replaced)}")
        if self.retired:
            parts.append(f"retired (left the catalog): {', '.join(self.retired)}")
        return "; ".join(parts)


def groups_for(catalog: Catalog, group_size: int) -> dict[str, str]:
    """Each service's watch group: ``ceil(services / group_size)`` groups, by a stable hash."""
    count = max(1, math.ceil(len(catalog.services) / max(group_size, 1)))
    return {s.name: watch_group_id(zlib.crc32(s.name.encode()) % count) for s in catalog.services}


def monitor_config(
    catalog: Catalog,
    service: Service,
    runbooks: dict[str, Runbook],
    search_attributes: bool,
    watch_group: str | None = None,
) -> MonitorConfig:
    """The configuration a service's monitor runs with, from the catalog and the runbooks."""
    return MonitorConfig(
        service=service,
        supervisor_url=str(catalog.process_control.supervisor_url),
        runbooks=runbooks,
        allowed_commands=list(catalog.allowed_commands),
        search_attributes=search_attributes,
        watch_group=watch_group,
        fleet=FLEET_ID,
        vantage_points=[v.name for v in catalog.vantage_points],
        watch_from=catalog.watch_from,
    )


def fleet_config(catalog: Catalog) -> FleetConfig:
    """The fleet's view of the catalog: dependencies, regions, the storm brake."""
    graph = {
        s.name: ServiceNode(
            depends_on=tuple(s.depends_on),
            regions=tuple(sorted({r.region for r in s.replicas})),
            replica_regions=tuple((r.name, r.region) for r in s.replicas),
            redundancy=s.redundancy.value,
        )
        for s in catalog.services
    }
    brake, evacuation = catalog.storm_brake, catalog.evacuation
    return FleetConfig(
        graph,
        brake.repairs_per_minute,
        brake.system_failure_share,
        evacuate=evacuation.enabled,
        return_check_s=evacuation.return_check_s,
    )


async def start_fleet(client: Client, catalog: Catalog, task_queue: str) -> None:
    """Signal-with-start the deployment's Fleet workflow with the catalog's view."""
    config = fleet_config(catalog)
    await client.start_workflow(
        FleetWorkflow.run,
        FleetInput(config),
        id=FLEET_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="reconfigure",
        start_signal_args=[config],
        static_summary="fleet: root causes across services, storm brake, system health",
    )


async def ensure_monitors(
    client: Client,
    catalog: Catalog,
    task_queue: str,
    search_attributes: bool = True,
    retire_others: bool = True,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> Applied:
    """Bring the running monitors in line with ``catalog`` (see the module docstring).

    Services are watched in groups of about ``group_size`` (one watch activity each, so the
    Temporal server is not sent one heartbeat stream per service); 0 watches each service
    with an activity of its own.
    """
    applied = Applied()
    runbooks = load_builtin_runbooks()
    groups = groups_for(catalog, group_size) if group_size > 0 else {}
    await start_fleet(client, catalog, task_queue)
    for group in sorted(set(groups.values())):
        await start_group(client, group, task_queue)
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(service: Service) -> None:
        async with gate:
            if await _replace_if_old(client, service.name):
                applied.replaced.append(service.name)
            config = monitor_config(
                catalog, service, runbooks, search_attributes, groups.get(service.name)
            )
            await start_monitor(client, config, task_queue)
            applied.started_or_updated.append(service.name)

    await asyncio.gather(*(one(s) for s in catalog.services))
    if retire_others:
        applied.retired = await _retire_others(client, catalog)
        await _end_unused_groups(client, set(groups.values()))
    return applied


async def start_group(client: Client, group: str, task_queue: str) -> None:
    """Start the watch group ``group`` unless it runs; its members register themselves."""
    await client.start_workflow(
        WatchGroupWorkflow.run,
        WatchGroupInput(group=group),
        id=group,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        memo={"version": 0},
        static_summary=f"watch group {group}: one watch activity for its services",
    )


async def _end_unused_groups(client: Client, wanted: set[str]) -> None:
    """Terminate watch groups the catalog no longer needs (their members moved)."""
    query = f'WorkflowType = "{WATCH_GROUP_WORKFLOW}" AND ExecutionStatus = "Running"'
    async for execution in client.list_workflows(query):
        if execution.id not in wanted:
            handle = client.get_workflow_handle(execution.id)
            await handle.terminate(reason="no service of the catalog is in this group any more")


async def start_monitor(
    client: Client, config: MonitorConfig, task_queue: str
) -> WorkflowHandle[ServiceMonitorWorkflow, str]:
    """Signal-with-start ``monitor/<service>``: started once, later only reconfigured."""
    service = config.service
    attributes = None
    if config.search_attributes:
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(SA_SERVICE, service.name),
                SearchAttributePair(SA_KIND, "monitor"),
            ]
        )
    return await client.start_workflow(
        ServiceMonitorWorkflow.run,
        MonitorInput(config),
        id=monitor_id(service.name),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=attributes,
        memo={"schema": MONITOR_SCHEMA},
        start_signal="reconfigure",
        start_signal_args=[config],
        static_summary=f"monitor of {service.name} ({service.redundancy.value})",
    )


async def _replace_if_old(client: Client, service: str) -> bool:
    """Terminate a running monitor of another input layout; whether one was terminated."""
    handle = client.get_workflow_handle(monitor_id(service))
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    if desc.status is None or desc.status.name != "RUNNING":
        return False
    memo = await desc.memo()
    if memo.get("schema") == MONITOR_SCHEMA:
        return False
    reason = f"monitor schema {memo.get('schema', 1)} replaced by {MONITOR_SCHEMA} (drc upgraded)"
    log.warning("replacing %s: %s", monitor_id(service), reason)
    await handle.terminate(reason=reason)
    return True


async def _retire_others(client: Client, catalog: Catalog) -> list[str]:
    """Retire every running monitor whose service is not in ``catalog``."""
    wanted = {monitor_id(s.name) for s in catalog.services}
    query = f'WorkflowType = "{MONITOR_WORKFLOW}" AND ExecutionStatus = "Running"'
    retired = []
    async for execution in client.list_workflows(query):
        if execution.id in wanted:
            continue
        handle = client.get_workflow_handle(execution.id)
        await handle.execute_update(ServiceMonitorWorkflow.retire, RetireRequest())
        retired.append(execution.id.removeprefix("monitor/"))
    return retired
