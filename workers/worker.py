"""The drc worker: runs every workflow and activity, and makes sure each service is monitored."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.actions import RunbookActivities
from activities.chaos_faults import FaultActivities
from activities.chaos_journal import ChaosJournalActivities
from activities.chaos_observe import ChaosObserveActivities
from activities.evacuation import EvacuationActivities
from activities.incidents import IncidentActivities
from activities.notify import (
    FanoutNotifier,
    Notifier,
    NotifyActivities,
    OutboxNotifier,
    WebhookNotifier,
)
from activities.probes.engine import ProbeEngine
from activities.process_control import ProcessActivities, SupervisorController
from activities.process_view import ProcessView
from activities.recovery import RecoveryActivities
from activities.repair_ends import RepairEndActivities
from activities.reports import ReportActivities
from activities.state import RedisReplicator, StateReplicator
from activities.state_actions import StateActions
from activities.switchover import request_failover
from activities.traffic import HAProxyRuntime, TrafficManager, UnconfiguredTrafficManager
from activities.vantage import VantageActivities
from activities.watch import WatchActivities
from activities.watch_group import GroupWatchActivities
from drc.catalog import Catalog
from drc.credentials import Credentials, supervisor_credentials
from drc.logs import configure_logging
from drc.names import vantage_queue
from drc.settings import DEFAULT_CHAOS_DIR, Settings
from drc.store.store import IncidentStore
from workers.connect import connect
from workers.heap import freeze_heap
from workers.monitors import ensure_monitors
from workers.sandbox import SANDBOX
from workers.telemetry import worker_runtime
from workers.workflows import WORKFLOWS

log = logging.getLogger("drc.worker")


# Watches hold an activity slot each for as long as they run; repairs need slots beside them.
ACTIVITY_SLOTS_FOR_REPAIRS = 100


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
    notifier: Notifier,
    incidents: IncidentActivities,
    reports: ReportActivities,
    home: Path,
    chaos_dir: Path = DEFAULT_CHAOS_DIR,
    supervisor_login: Credentials | None = None,
) -> Worker:
    """A worker with every drc workflow and activity, sized for the catalog.

    ``supervisor_login``: what process control logs in to supervisord with (None: no login).
    """
    controller = SupervisorController(http, credentials=supervisor_login)
    faults = FaultActivities(controller, home.resolve())
    chaos = ChaosObserveActivities(client, http, catalog, chaos_dir)
    journal = ChaosJournalActivities(home, catalog, chaos_dir)
    watch = WatchActivities(engine, state, ProcessView(controller))
    notify = NotifyActivities(notifier)
    ends = RepairEndActivities(client)
    groups = GroupWatchActivities(watch, client)
    process = ProcessActivities(controller)
    recovery = RecoveryActivities(engine, controller)
    actions = RunbookActivities(traffic, controller, engine, http)
    state_actions = StateActions(state)
    evacuation = EvacuationActivities(client)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[
            watch.watch_service,
            groups.watch_group,
            process.stop_process,
            process.start_process,
            recovery.check_recovered,
            notify.notify,
            ends.await_repair_end,
            incidents.record_incident,
            reports.write_incident_report,
            evacuation.evacuate_service,
            evacuation.restore_service,
            request_failover,
            faults.chaos_inject,
            faults.chaos_undo,
            chaos.chaos_prepare,
            chaos.chaos_steady_state,
            chaos.chaos_watch,
            journal.chaos_write_journal,
            *actions.activities(),
            *state_actions.activities(),
        ],
        max_concurrent_activities=activity_slots(len(catalog.services)),
        graceful_shutdown_timeout=timedelta(seconds=2),
        workflow_runner=SANDBOX,
    )


def traffic_manager(catalog: Catalog, home: Path) -> TrafficManager:
    """HAProxy at the catalog's socket, or a manager that refuses with the reason.

    With the catalog's ``haproxy_state_file``, every traffic change is also saved there for
    HAProxy's next start.
    """
    socket = catalog.traffic_control.socket_path(home.resolve())
    if socket is None:
        return UnconfiguredTrafficManager(
            "no traffic manager configured (catalog traffic_control.haproxy_socket)"
        )
    return HAProxyRuntime(
        socket, state_file=catalog.traffic_control.state_file_path(home.resolve())
    )


async def run_worker(settings: Settings, catalog: Catalog, stop: asyncio.Event) -> None:
    """Run the worker until ``stop`` is set, then shut down cleanly.

    Settings that cannot be used (a supervisord login file others may read, half a TLS
    pair) raise ``CredentialsError`` here, before anything runs.
    """
    supervisor_login = supervisor_credentials(settings)
    client = await connect(settings, runtime=worker_runtime(settings))
    source = vantage_source(catalog, catalog.watch_from)  # drc's own watch probes from there
    async with httpx.AsyncClient(timeout=10) as http, ProbeEngine(source_address=source) as engine:
        traffic = traffic_manager(catalog, settings.home)
        state = RedisReplicator()
        notifier = notifier_of(settings, http)
        incidents = IncidentActivities(
            lambda: IncidentStore.open(settings.database_url, settings.home.resolve()), client
        )
        reports = ReportActivities(
            client,
            incidents.store,
            settings.home,
            settings.web_ui,
            settings.temporal_namespace,
        )
        worker = build_worker(
            client,
            catalog,
            settings.task_queue,
            engine,
            http,
            traffic,
            state,
            notifier,
            incidents,
            reports,
            settings.home,
            settings.chaos_dir,
            supervisor_login,
        )
        async with worker:
            applied = await ensure_monitors(
                client, catalog, settings.task_queue, group_size=settings.watch_group_size
            )
            freezing = asyncio.create_task(freeze_heap())
            log.info(
                "worker on %s (queue %s): %s",
                settings.temporal_address,
                settings.task_queue,
                applied,
            )
            await stop.wait()
            freezing.cancel()
        await state.close()
        incidents.close()


async def run_vantage_worker(
    settings: Settings, catalog: Catalog, region: str, stop: asyncio.Event
) -> None:
    """A vantage point's probe worker: ``vantage_probe`` on ``drc-probes-<region>`` only."""
    source = vantage_source(catalog, region)
    client = await connect(settings, runtime=worker_runtime(settings))
    async with ProbeEngine(source_address=source) as engine:
        probes = VantageActivities(region, engine)
        worker = Worker(
            client,
            task_queue=vantage_queue(region),
            activities=[probes.vantage_probe],
            graceful_shutdown_timeout=timedelta(seconds=2),
        )
        async with worker:
            log.info("vantage point %s (source %s) on %s", region, source, vantage_queue(region))
            await stop.wait()


def vantage_source(catalog: Catalog, name: str | None) -> str | None:
    """The source address vantage point ``name``'s probes leave from (None: the system's)."""
    vantage = catalog.vantage(name) if name else None
    return str(vantage.source_address) if vantage and vantage.source_address else None


def notifier_of(settings: Settings, http: httpx.AsyncClient) -> Notifier:
    """The outbox under ``$DRC_HOME``, and the webhooks of ``DRC_WEBHOOKS`` if any."""
    outbox = OutboxNotifier(settings.home.resolve() / "notifications.jsonl")
    if not settings.webhooks:
        return outbox
    return FanoutNotifier(outbox, WebhookNotifier(settings.webhooks, http))


def serve(settings: Settings, catalog: Catalog, region: str | None = None) -> None:
    """Run the worker (or vantage point ``region``'s) in the foreground until SIGINT/SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if region is None:
            await run_worker(settings, catalog, stop)
        else:
            await run_vantage_worker(settings, catalog, region, stop)

    configure_logging()
    asyncio.run(main())
