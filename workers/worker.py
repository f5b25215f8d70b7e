"""The drc worker: runs every workflow and activity, and makes sure each service is monitored."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.actions import RunbookActivities
from activities.probes.engine import ProbeEngine
from activities.process_control import ProcessActivities, SupervisorController
from activities.recovery import RecoveryActivities
from activities.state import RedisReplicator, StateReplicator
from activities.state_actions import StateActions
from activities.traffic import HAProxyRuntime, TrafficManager, UnconfiguredTrafficManager
from activities.watch import WatchActivities
from drc.catalog import Catalog
from drc.names import SA_KIND, SA_SERVICE, monitor_id
from drc.settings import Settings
from runbooks.runbook import load_builtin_runbooks
from workers.connect import connect
from workflows.monitor import MonitorInput, ServiceMonitorWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

log = logging.getLogger("drc.worker")

# Watches hold an activity slot each for as long as they run; repairs need slots beside them.
ACTIVITY_SLOTS_FOR_REPAIRS = 100


# Libraries the workflows reach only through types passed in (pydantic models) or through
# activity modules they import for type references: load them once, outside the sandbox,
# instead of re-importing them into every workflow's sandbox (slow, and noisy with warnings).
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "pydantic", "pydantic_core", "yaml", "redis", "aiohttp", "httpx", "psycopg", "anyio"
    )
)


def activity_slots(services: int) -> int:
    """Slots enough for one watch per service plus room for repairs (never the silent 101st)."""
    return services + ACTIVITY_SLOTS_FOR_REPAIRS


def build_worker(
    client: Client,
    catalog: Catalog,
    task_queue: str,
    engine: ProbeEngine,
    http: httpx.AsyncClient,
    traffic: TrafficManager,
    state: StateReplicator,
) -> Worker:
    """A worker with every drc workflow and activity, sized for the catalog."""
    controller = SupervisorController(http)
    watch = WatchActivities(engine, state)
    process = ProcessActivities(controller)
    recovery = RecoveryActivities(engine, controller)
    actions = RunbookActivities(traffic, controller, engine, http)
    state_actions = StateActions(state)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow],
        activities=[
            watch.watch_service,
            process.stop_process,
            process.start_process,
            recovery.check_recovered,
            *actions.activities(),
            *state_actions.activities(),
        ],
        max_concurrent_activities=activity_slots(len(catalog.services)),
        graceful_shutdown_timeout=timedelta(seconds=2),
        workflow_runner=SANDBOX,
    )


def traffic_manager(catalog: Catalog, home: Path) -> TrafficManager:
    """HAProxy at the catalog's socket, or a manager that refuses with the reason."""
    socket = catalog.traffic_control.socket_path(home.resolve())
    if socket is None:
        return UnconfiguredTrafficManager(
            "no traffic manager configured (catalog traffic_control.haproxy_socket)"
        )
    return HAProxyRuntime(socket)


async def ensure_monitors(
    client: Client, catalog: Catalog, task_queue: str, search_attributes: bool = True
) -> list[WorkflowHandle[ServiceMonitorWorkflow, None]]:
    """Start ``monitor/<service>`` for every service, or hand a running one its catalog entry.

    Idempotent: signal-with-start attaches to a running monitor instead of starting another,
    and a monitor ignores an unchanged entry, so any number of boots yields one monitor each.
    """
    handles = []
    supervisor_url = str(catalog.process_control.supervisor_url)
    runbooks = load_builtin_runbooks()
    for service in catalog.services:
        attributes = (
            TypedSearchAttributes(
                [
                    SearchAttributePair(SA_SERVICE, service.name),
                    SearchAttributePair(SA_KIND, "monitor"),
                ]
            )
            if search_attributes
            else None
        )
        handle = await client.start_workflow(
            ServiceMonitorWorkflow.run,
            MonitorInput(
                service=service,
                supervisor_url=supervisor_url,
                search_attributes=search_attributes,
                runbooks=runbooks,
                allowed_commands=list(catalog.allowed_commands),
            ),
            id=monitor_id(service.name),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=attributes,
            start_signal="reconfigure",
            start_signal_args=[service],
            static_summary=f"monitor of {service.name} ({service.redundancy.value})",
        )
        handles.append(handle)
    return handles


async def run_worker(settings: Settings, catalog: Catalog, stop: asyncio.Event) -> None:
    """Run the worker until ``stop`` is set, then shut down cleanly."""
    client = await connect(settings)
    async with httpx.AsyncClient(timeout=10) as http, ProbeEngine() as engine:
        traffic = traffic_manager(catalog, settings.home)
        state = RedisReplicator()
        worker = build_worker(client, catalog, settings.task_queue, engine, http, traffic, state)
        async with worker:
            await ensure_monitors(client, catalog, settings.task_queue)
            log.info(
                "worker on %s (queue %s): monitoring %d services",
                settings.temporal_address,
                settings.task_queue,
                len(catalog.services),
            )
            await stop.wait()
        await state.close()


def serve(settings: Settings, catalog: Catalog) -> None:
    """Run the worker in the foreground until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, catalog, stop)

    asyncio.run(main())
