"""Same-named fakes for every activity the monitor and its repairs call, scripted by a test."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from drc.catalog import Service
from drc.catalog_loader import parse_catalog
from drc.incident import Incident, IncidentUpdate
from drc.model import ProbeResult, ReplicaState, ReplicaTrack, Transition
from drc.repair import (
    ActionInput,
    ActionResult,
    Notification,
    ProcessInput,
    ProcessResult,
    RepairEnd,
    RepairRef,
    WaitHealthyInput,
)
from drc.report import ReportRequest, ReportResult
from drc.sync import SyncStats
from drc.watch import WatchInput, WatchResult
from runbooks.runbook import load_builtin_runbooks
from tests.support.net import assert_eventually
from workflows.monitor import ServiceMonitorWorkflow
from workflows.monitor_types import MonitorConfig, MonitorInput, MonitorState

_PORTS = iter(range(1, 1000))


def replica(name: str, region: str = "ldn", url: str | None = None) -> dict[str, Any]:
    """A replica entry; nothing listens at its (distinct) address: every probe is faked."""
    url = url or f"http://127.0.0.1:{next(_PORTS)}"
    return {"name": name, "region": region, "url": url, "process": name}


def service(spec: dict[str, Any]) -> Service:
    return parse_catalog({"services": [spec]}).services[0]


GATEWAY = service(
    {
        "name": "order-gateway",
        "redundancy": "active-standby",
        "primary": "og-a",
        "replicas": [replica("og-a"), replica("og-b", "nyc")],
        "restart": {"crash_loop_max": 3, "crash_loop_window_s": 300},
    }
)
STATE = service(
    {
        "name": "order-state",
        "redundancy": "active-standby",
        "primary": "redis-a",
        "replicas": [
            replica("redis-a", url="redis://127.0.0.1:18301"),
            replica("redis-b", "nyc", url="redis://127.0.0.1:18302"),
        ],
    }
)
QUOTES = service(
    {
        "name": "market-data",
        "redundancy": "active-active",
        "frontend": "127.0.0.1:9",
        "replicas": [replica("md-a"), replica("md-b"), replica("md-c")],
    }
)


class FakeWorld:
    """The activities, faked: the test feeds watch results and may hold any action."""

    def __init__(self) -> None:
        self.watch_results: asyncio.Queue[WatchResult] = asyncio.Queue()
        self.watch_inputs: list[WatchInput] = []
        self.calls: dict[str, list[str]] = defaultdict(list)
        self.exit_on_start: set[str] = set()
        self.notes: list[Notification] = []
        self.holds: dict[str, asyncio.Event] = {}
        """Action text (``replica.promote og-b``) -> released when set."""
        self.fail: dict[str, str] = {}
        """Action text -> the error it fails with (non-retryable)."""
        self.ran: list[str] = []
        self.updates: list[IncidentUpdate] = []
        self.incidents: dict[str, Incident] = {}
        """The store, faked: the highest version of each incident."""
        self.record_failures = 0
        """The next this many ``record_incident`` calls fail (retried by Temporal)."""
        self.reports: list[str] = []

    @activity.defn(name="watch_service")
    async def watch_service(self, inp: WatchInput) -> WatchResult:
        self.watch_inputs.append(inp)
        mine = len(self.watch_inputs)
        # Only the newest watch takes results: a cancelled one may still be polling for a moment
        # (cancellation reaches it at its next heartbeat), and what it took would be lost. And
        # polled, not `wait_for(queue.get(), ...)`: on Python 3.11 a get that completes as the
        # timeout fires is lost too.
        while self.watch_results.empty() or mine != len(self.watch_inputs):
            activity.heartbeat()
            await asyncio.sleep(0.05)
        return self.watch_results.get_nowait()

    @activity.defn(name="stop_process")
    async def stop_process(self, inp: ProcessInput) -> ProcessResult:
        self.calls["stop"].append(inp.process)
        return ProcessResult("stop", "RUNNING", "STOPPED")

    @activity.defn(name="start_process")
    async def start_process(self, inp: ProcessInput) -> ProcessResult:
        self.calls["start"].append(inp.process)
        await self._held(f"start {inp.process}")
        return ProcessResult("start", "STOPPED", "RUNNING", pid=42)

    @activity.defn(name="check_recovered")
    async def check_recovered(self, inp: WaitHealthyInput) -> ProbeResult:
        if inp.replica.name in self.exit_on_start:
            raise ApplicationError(
                f"{inp.replica.name} is EXITED after its start, exit status 3",
                type="ProcessExited",
                non_retryable=True,
            )
        return ProbeResult(ok=True, latency_ms=1.0)

    @activity.defn(name="notify")
    async def notify(self, note: Notification) -> None:
        self.notes.append(note)

    @activity.defn(name="record_incident")
    async def record_incident(self, update: IncidentUpdate) -> None:
        if self.record_failures > 0:
            self.record_failures -= 1
            raise RuntimeError("the store is away")
        self.updates.append(update)
        incident = update.incident
        if incident is not None:
            known = self.incidents.get(incident.id)
            if known is None or incident.version > known.version:
                self.incidents[incident.id] = incident

    @activity.defn(name="write_incident_report")
    async def write_incident_report(self, request: ReportRequest) -> ReportResult:
        self.reports.append(request.incident_id)
        return ReportResult(request.incident_id, "r.md", "r.html", 0)

    @activity.defn(name="await_repair_end")
    async def await_repair_end(self, ref: RepairRef) -> RepairEnd:
        client = activity.client()
        handle = client.get_workflow_handle(ref.workflow_id, run_id=ref.run_id)
        try:
            await handle.result()
        except Exception as exc:  # noqa: BLE001 - any end counts
            return RepairEnd(ref.workflow_id, ref.run_id, "failed", str(exc))
        return RepairEnd(ref.workflow_id, ref.run_id, "completed", "done")

    @activity.defn(dynamic=True)
    async def any_action(self, args: Sequence[RawValue]) -> ActionResult:
        inp = activity.payload_converter().from_payload(args[0].payload, ActionInput)
        words = " ".join(str(v) for v in inp.args.values())
        text = f"{inp.action} {words}".strip()
        self.ran.append(text)
        await self._held(text)
        if text in self.fail:
            raise ApplicationError(self.fail[text], type="Failed", non_retryable=True)
        return ActionResult(inp.action, f"{text} done")

    async def _held(self, text: str) -> None:
        event = self.holds.get(text)
        while event is not None and not event.is_set():
            activity.heartbeat()
            try:
                await asyncio.wait_for(event.wait(), 0.2)
            except TimeoutError:
                pass

    def hold(self, text: str) -> asyncio.Event:
        self.holds[text] = asyncio.Event()
        return self.holds[text]

    def activities(self) -> list[object]:
        return [
            self.watch_service,
            self.stop_process,
            self.start_process,
            self.check_recovered,
            self.notify,
            self.await_repair_end,
            self.any_action,
            self.record_incident,
            self.write_incident_report,
        ]


def track(state: ReplicaState, at: float = 0.0, **extra: Any) -> ReplicaTrack:
    return ReplicaTrack(state=state, since=at, **extra)


def failed(
    svc: Service,
    name: str,
    at: float = 0.0,
    flapping: bool = False,
    others: dict[str, ReplicaTrack] | None = None,
    sync: dict[str, SyncStats] | None = None,
) -> WatchResult:
    """A watch result: ``name`` just failed (connection refused); the others healthy."""
    dead = track(
        ReplicaState.FAILED,
        at,
        consecutive_failures=3,
        last_error="connection refused",
        flapping=flapping,
        last_ok_at=at - 0.75 if at else None,
    )
    reason = f"{name} missed 3 heartbeats in a row (last error: connection refused)"
    tracks = {r.name: track(ReplicaState.HEALTHY) for r in svc.replicas}
    tracks.update(others or {})
    tracks[name] = dead
    transition = Transition(name, ReplicaState.HEALTHY, ReplicaState.FAILED, reason, at, flapping)
    return WatchResult(transitions=[transition], tracks=tracks, sync=sync or {})


def healthy(svc: Service, name: str, tracks: dict[str, ReplicaTrack] | None = None) -> WatchResult:
    back = track(ReplicaState.HEALTHY, consecutive_successes=2, latency_ms=1.0)
    all_tracks = {r.name: track(ReplicaState.HEALTHY) for r in svc.replicas}
    all_tracks.update(tracks or {})
    all_tracks[name] = back
    transition = Transition(name, ReplicaState.FAILED, ReplicaState.HEALTHY, f"{name} back", 0.0)
    return WatchResult(transitions=[transition], tracks=all_tracks)


async def start_monitor(
    env: Any,
    task_queue: str,
    svc: Service = GATEWAY,
    runbooks: bool = True,
    state: MonitorState | None = None,
    **config: Any,
) -> WorkflowHandle[ServiceMonitorWorkflow, str]:
    cfg = MonitorConfig(
        service=svc,
        supervisor_url="http://127.0.0.1:9/RPC2",
        runbooks=load_builtin_runbooks() if runbooks else {},
        search_attributes=False,
        **config,
    )
    return await env.client.start_workflow(
        ServiceMonitorWorkflow.run,
        MonitorInput(cfg, state or MonitorState()),
        id=f"monitor/{svc.name}-{uuid.uuid4()}",
        task_queue=task_queue,
    )


def actions_of(handle: WorkflowHandle[ServiceMonitorWorkflow, str]):  # type: ignore[no-untyped-def]
    async def read() -> list[str]:
        status = await handle.query(ServiceMonitorWorkflow.status)
        return [d.action for d in status.decisions]

    return read


async def wait_decision(
    handle: WorkflowHandle[ServiceMonitorWorkflow, str], action: str, timeout: float = 30
) -> str:
    """Wait for a decision ``action``; its reason."""

    async def check() -> str:
        status = await handle.query(ServiceMonitorWorkflow.status)
        found = [d for d in status.decisions if d.action == action]
        assert found, [(d.action, d.reason) for d in status.decisions]
        return found[-1].reason

    return await assert_eventually(check, timeout=timeout)


def key(handle: WorkflowHandle[Any, Any]) -> str:
    """What the monitor names its repairs after (its id without ``monitor/``)."""
    return handle.id.removeprefix("monitor/")


def all_healthy(svc: Service) -> MonitorState:
    """A monitor state in which every replica was last seen healthy."""
    return MonitorState(tracks={r.name: track(ReplicaState.HEALTHY) for r in svc.replicas})
