"""Worker metrics on the SDK runtime's Prometheus exporter, and decisions as JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Replayer

from drc.logs import configure_logging
from drc.metrics import (
    ALL,
    DETECTIONS,
    PROBE_LATENCY,
    REPAIR_DURATION,
    REPAIRS,
    REPLICATION_LAG,
)
from drc.model import ReplicaState
from drc.repair import RepairEnd, RestartResult, RunbookResult
from drc.settings import Settings
from tests.support.monitor_world import GATEWAY, FakeWorld, failed, start_monitor, wait_decision
from tests.support.net import assert_eventually, free_port
from tests.support.stack import demo_like_catalog, healthy_drc
from tests.support.temporal import DevServer, new_worker
from workers.sandbox import SANDBOX
from workers.telemetry import worker_runtime
from workers.workflows import WORKFLOWS as ALL_WORKFLOWS
from workflows.monitor import ServiceMonitorWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.telemetry import repair_outcome

WORKFLOWS = [ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow]
HISTORIES = sorted((Path(__file__).parent / "replay" / "histories").glob("*/*.json"))
STATE_SERVICES = ("market-data", "risk-engine", "order-state", "order-gateway")


# --- reading an exposition -------------------------------------------------------------------


def samples(text: str) -> list[Sample]:
    """Every sample of a /metrics page, parsed by Prometheus' own client (so: valid)."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        s.value
        for s in found
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def names(found: list[Sample]) -> set[str]:
    return {s.name for s in found}


async def scrape(address: str) -> list[Sample]:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"http://{address}/metrics")
    response.raise_for_status()
    return samples(response.text)


# --- the definitions ---------------------------------------------------------------------------


def test_every_metric_follows_prometheus_naming() -> None:
    for metric in ALL:
        assert metric.name.startswith("drc_"), metric
        if metric.kind == "counter":
            assert metric.exposed.endswith("_total") and not metric.name.endswith("_total")
        if metric.kind == "histogram":
            assert metric.exposed.endswith("_seconds") and metric.buckets, metric
            assert list(metric.buckets) == sorted(metric.buckets)
    assert REPAIR_DURATION.buckets is not None
    assert REPAIR_DURATION.buckets[0] == 0.05 and REPAIR_DURATION.buckets[-1] == 60.0
    assert REPLICATION_LAG.exposed == "drc_replication_lag_seconds"
    with pytest.raises(ValueError, match="takes labels"):
        DETECTIONS.attributes(service="s", kind="failed")


def test_a_repair_outcome_names_how_it_ended() -> None:
    def runbook(outcome: Any) -> RunbookResult:
        return RunbookResult("failover", outcome, "why", [])

    def end(status: Any, **result: Any) -> RepairEnd:
        return RepairEnd("failover/s", None, status, "message", **result)

    restarted = RestartResult("s", "r", True, "ok", datetime.now(UTC), datetime.now(UTC))
    assert repair_outcome(end("completed", restart=restarted)) == "succeeded"
    assert repair_outcome(end("completed", runbook=runbook("succeeded"))) == "succeeded"
    assert repair_outcome(end("failed", runbook=runbook("compensated"))) == "compensated"
    assert repair_outcome(end("failed", runbook=runbook("rejected"))) == "rejected"
    assert repair_outcome(end("cancelled", runbook=runbook("compensated"))) == "cancelled"
    assert repair_outcome(end("terminated")) == "terminated"
    assert repair_outcome(end("timed_out")) == "timed_out"
    assert repair_outcome(end("failed")) == "failed"


def test_no_metrics_address_means_the_sdks_own_runtime() -> None:
    assert worker_runtime(Settings(metrics_address=None)) is None
    with pytest.raises(ValueError, match="DRC_METRICS_ADDRESS=nonsense"):
        worker_runtime(Settings(metrics_address="nonsense"))


# --- replay ------------------------------------------------------------------------------------


async def test_replaying_every_recorded_history_records_no_drc_metric() -> None:
    # The SDK's workflow meter skips recording while replaying: a worker that rebuilds a
    # monitor from its history (cache eviction, another worker) does not count again.
    buffer = MetricBuffer(100_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    replayer = Replayer(
        workflows=list(ALL_WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=SANDBOX,
        runtime=runtime,
    )
    assert HISTORIES
    for path in HISTORIES:
        record = json.loads(path.read_text())
        history = WorkflowHistory.from_json(record["workflow_id"], record["history"])
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
    drc = [u.metric.name for u in buffer.retrieve_updates() if u.metric.name.startswith("drc_")]
    assert drc == []


# --- workflows on the dev server, with the exporter ------------------------------------------


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log line of this process as JSON, as a worker writes to a file."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(stream, json_lines=True)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level


async def test_a_detection_and_its_restart_are_counted_on_the_exporter(env: DevServer) -> None:
    address = f"127.0.0.1:{free_port()}"
    runtime = worker_runtime(Settings(metrics_address=address))
    client = await Client.connect(
        env.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    world = FakeWorld()
    async with new_worker(client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await wait_decision(handle, "restarted")
        found = await scrape(address)
        await handle.terminate()
    service = GATEWAY.name
    assert value(found, DETECTIONS.exposed, service=service, kind="failed") == 1
    repairs = {"service": service, "runbook": "restart", "outcome": "succeeded"}
    assert value(found, REPAIRS.exposed, **repairs) == 1
    assert value(found, f"{REPAIR_DURATION.exposed}_count", **repairs) == 1
    buckets = {
        float(s.labels["le"]) for s in found if s.name == f"{REPAIR_DURATION.exposed}_bucket"
    }
    assert buckets == {*(REPAIR_DURATION.buckets or ()), float("inf")}, buckets
    # The SDK's own metrics, on the same page and after the same rules.
    assert value(found, "temporal_workflow_completed_total") >= 1
    assert "temporal_workflow_task_execution_latency_seconds_count" in names(found)


async def test_a_decision_is_a_json_line_with_service_incident_and_run(
    env: DevServer, json_log: io.StringIO
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await wait_decision(handle, "restarted")

        async def recorded() -> str:
            assert len(world.incidents) == 1, world.incidents
            return next(iter(world.incidents))

        incident = await assert_eventually(recorded)
        await handle.terminate()
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [r for r in lines if r.get("drc", {}).get("workflow_id") == handle.id]
    restart = next(r for r in mine if r["drc"]["action"] == "restart")
    assert restart["drc"]["service"] == GATEWAY.name and restart["drc"]["replica"] == "og-b"
    assert restart["drc"]["incident"] == incident
    assert restart["drc"]["run_id"] and restart["level"] == "INFO"
    assert restart["message"].startswith("restart: restarting og-b: og-b failed")
    assert restart["temporal_workflow"]["workflow_id"] == handle.id  # the SDK's own, kept
    # The restart run names the incident too (its search attribute), in its own lines.
    started = next(r for r in lines if r.get("drc", {}).get("action") == "restart-started")
    assert started["drc"]["service"] == GATEWAY.name and started["drc"]["replica"] == "og-b"


# --- the real worker process -----------------------------------------------------------------


@pytest.mark.integration
async def test_the_worker_serves_drc_and_sdk_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("DRC_METRICS_ADDRESS", address)  # the worker's environment
    catalog = demo_like_catalog(services=STATE_SERVICES)
    async with healthy_drc(tmp_path, catalog) as drc:
        old = drc.pid("og-b")
        os.kill(old, signal.SIGKILL)

        async def restarted() -> None:
            replica = await drc.replica_status("order-gateway", "og-b")
            assert replica.state is ReplicaState.HEALTHY and replica.restarts_in_window == 1
            assert drc.pid("og-b") != old

        await assert_eventually(restarted, timeout=60)

        async def counted() -> list[Sample]:
            found = await scrape(address)
            gateway = {"service": "order-gateway"}
            assert value(found, DETECTIONS.exposed, **gateway) >= 1
            assert value(found, REPAIRS.exposed, **gateway, outcome="succeeded") >= 1
            return found

        found = await assert_eventually(counted, timeout=10)
    probes = f"{PROBE_LATENCY.exposed}_count"
    assert value(found, probes, service="order-gateway", replica="og-b", probe="heartbeat") > 0
    assert value(found, probes, probe="health", result="ok") > 0
    assert f"{REPAIR_DURATION.exposed}_bucket" in names(found)
    lag = [s for s in found if s.name == REPLICATION_LAG.exposed]
    assert [s.labels["replica"] for s in lag] == ["redis-b"], lag
    assert 0 <= lag[0].value < 1, lag
    assert value(found, "temporal_request_total") > 0
    assert value(found, "temporal_workflow_completed_total") >= 1
    _no_unsuffixed_durations(found)


def _no_unsuffixed_durations(found: list[Sample]) -> None:
    """Every histogram on the page, the SDK's included, is in seconds and says so."""
    histograms = {s.name.removesuffix("_bucket") for s in found if s.name.endswith("_bucket")}
    unsuffixed = sorted(h for h in histograms if not h.endswith("_seconds"))
    assert unsuffixed == [], unsuffixed
