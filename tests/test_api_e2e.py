"""The recovery API end to end: a real ``drc api`` process over a real drc and demo platform.

Every seed endpoint with the seed's fields; repairs only with the token (the token's name is
the operator on record); Patroni-style role checks before and after a failover; a scheduled
switchover that runs and one that is called off; schemathesis over the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from drc.names import monitor_id, switchover_id
from drc.status import MonitorStatus
from drc.switchover import SwitchoverResult
from tests.support.net import assert_eventually, free_port, wait_port
from tests.support.stack import DrcStack, healthy_drc
from workers.devstack import Child, spawn

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-the-api-e2e-0123456789"
TOKEN = {"Authorization": f"Bearer {SECRET}"}
GATEWAY = ("og-a", "og-b")


@dataclass
class Api:
    drc: DrcStack
    http: httpx.AsyncClient
    base: str
    child: Child


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with healthy_drc(tmp_path_factory.mktemp("api")) as drc:
        port = free_port()
        env = {**drc.env(), "DRC_API_PORT": str(port), "DRC_API_TOKEN": f"tester:{SECRET}"}
        argv = [sys.executable, "-m", "workers.cli", "api"]
        child = spawn("api", argv, drc.home / "logs", env=env)
        try:
            wait_port(port, timeout=60)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                await _until_all_watched(http)
                yield Api(drc, http, base, child)
        finally:
            child.stop()


async def _until_all_watched(http: httpx.AsyncClient) -> None:
    async def watched() -> None:
        body = (await http.get("/recovery/status")).json()
        assert all(h["status"] == "ok" for h in body["heartbeat_status"].values()), body
        assert set(body["health_status"].values()) == {"healthy"}, body

    await assert_eventually(watched, timeout=60)


async def _writers(api: Api) -> list[str]:
    """The gateway replicas whose ``/primary`` check answers 200."""
    found = []
    for replica in GATEWAY:
        answer = await api.http.get(f"/services/order-gateway/primary?replica={replica}")
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 200:
            found.append(replica)
    return found


async def _status(api: Api, service: str) -> MonitorStatus:
    handle = api.drc.client.get_workflow_handle(monitor_id(service))
    found: MonitorStatus = await handle.query("status", result_type=MonitorStatus)
    return found


async def test_every_seed_endpoint_answers_with_the_seeds_fields(api: Api) -> None:
    status = (await api.http.get("/recovery/status")).json()
    for field in ("timestamp", "system_health", "heartbeat_status", "health_status", "failures"):
        assert field in status, status
    assert status["system_health"] == "healthy"
    names = {s.name for s in api.drc.catalog.services}
    assert set(status["heartbeat_status"]) == names == set(status["health_status"])

    services = (await api.http.get("/recovery/services")).json()
    assert {s["name"] for s in services} == names
    gateway = next(s for s in services if s["name"] == "order-gateway")
    roles = {r["name"]: (r["role"], r["traffic"]) for r in gateway["replicas"]}
    assert sorted(roles.values()) == [("primary", "serving"), ("standby", "standby")], roles

    failures = (await api.http.get("/recovery/failures", params={"hours": 24})).json()
    assert set(failures) == {"failures", "total_count", "critical_count", "time_period_hours"}
    assert failures["time_period_hours"] == 24

    sync = (await api.http.get("/recovery/synchronization")).json()
    assert {"timestamp", "standbys", "all_in_sync"} <= set(sync)

    health = await api.http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    assert (await api.http.get("/incidents")).status_code == 200
    chaos = (await api.http.get("/chaos")).json()
    assert "primary-crash" in {row["experiment"] for row in chaos}
    metrics = (await api.http.get("/metrics")).text
    assert 'drc_system_health{state="healthy"} 1.0' in metrics
    assert 'drc_service_health{service="order-gateway",state="healthy"} 1.0' in metrics
    openapi = (await api.http.get("/openapi.json")).json()
    assert "/recovery/failover/{service}" in openapi["paths"]


async def test_a_repair_without_the_right_token_is_refused_and_starts_nothing(api: Api) -> None:
    primary = (await _status(api, "order-gateway")).primary
    wrong = ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": SECRET})
    for headers in wrong:
        answer = await api.http.post("/recovery/failover/order-gateway", headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        restart = await api.http.post(
            "/recovery/restart/order-gateway", json={"replica": "og-b"}, headers=headers
        )
        assert restart.status_code == 401, restart.text
    with pytest.raises(RPCError):
        await api.drc.client.get_workflow_handle("failover/order-gateway").describe()
    assert (await _status(api, "order-gateway")).primary == primary


async def test_bad_requests_name_the_problem(api: Api) -> None:
    unknown = await api.http.post("/recovery/failover/nope", headers=TOKEN)
    assert unknown.status_code == 404 and "known: market-data" in unknown.json()["detail"]
    replica = await api.http.post(
        "/recovery/restart/order-gateway", json={"replica": "og-z"}, headers=TOKEN
    )
    assert replica.status_code == 404 and "og-a, og-b" in replica.json()["detail"]
    naive = await api.http.post(
        "/recovery/switchover/order-gateway",
        json={"scheduled_at": "2030-01-01T00:00:00"},
        headers=TOKEN,
    )
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"][0]["msg"]
    forced = await api.http.post(
        "/recovery/failover/order-gateway", json={"force": True}, headers=TOKEN
    )
    assert forced.status_code == 422 and "reason" in forced.json()["detail"][0]["msg"]
    check = await api.http.get("/services/order-gateway/primary", params={"replica": "og-z"})
    assert check.status_code == 404


async def test_failover_with_the_token_is_the_cli_failover_and_one_replica_takes_writes(
    api: Api,
) -> None:
    before = await _writers(api)
    assert len(before) == 1, before
    answer = await api.http.post(
        "/recovery/failover/order-gateway", json={"reason": "api e2e"}, headers=TOKEN
    )
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["workflow_id"] == "failover/order-gateway" and started["operator"] == "tester"
    assert started["web_ui"].endswith("/workflows/failover%2Forder-gateway")
    await api.drc.client.get_workflow_handle(started["workflow_id"]).result()
    status = await _status(api, "order-gateway")
    assert status.primary != before[0]
    assert any("tester asked: api e2e" in d.reason for d in status.decisions), status.decisions

    async def flipped() -> None:
        assert await _writers(api) == [status.primary]

    await assert_eventually(flipped, timeout=15)


async def test_restart_through_the_api_records_the_tokens_name(api: Api) -> None:
    answer = await api.http.post(
        "/recovery/restart/market-data",
        json={"replica": "md-b", "reason": "api restart"},
        headers=TOKEN,
    )
    assert answer.status_code == 202, answer.text
    wid = answer.json()["workflow_id"]
    await api.drc.client.get_workflow_handle(wid).result()
    decisions = (await _status(api, "market-data")).decisions
    assert any("tester" in d.reason and d.replica == "md-b" for d in decisions), decisions


async def test_a_scheduled_switchover_runs_at_its_time_and_one_called_off_does_nothing(
    api: Api,
) -> None:
    await assert_eventually(lambda: _one_writer(api), timeout=30)
    primary = (await _status(api, "order-gateway")).primary
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await api.http.post(
        "/recovery/switchover/order-gateway",
        json={"scheduled_at": later.isoformat(), "reason": "maintenance window"},
        headers=TOKEN,
    )
    assert scheduled.status_code == 202, scheduled.text
    again = await api.http.post(
        "/recovery/switchover/order-gateway",
        json={"scheduled_at": later.isoformat()},
        headers=TOKEN,
    )
    assert again.status_code == 409 and "already scheduled" in again.json()["detail"]
    shown = (await api.http.get("/recovery/switchover/order-gateway")).json()
    assert shown["status"] == "running" and shown["operator"] == "tester", shown
    assert (await api.http.delete("/recovery/switchover/order-gateway")).status_code == 401
    called_off = await api.http.delete("/recovery/switchover/order-gateway", headers=TOKEN)
    assert called_off.status_code == 200 and called_off.json()["status"] == "cancelled"
    desc = await api.drc.client.get_workflow_handle(switchover_id("order-gateway")).describe()
    assert desc.status is WorkflowExecutionStatus.CANCELED
    assert (await _status(api, "order-gateway")).primary == primary

    soon = datetime.now(UTC) + timedelta(seconds=2)
    answer = await api.http.post(
        "/recovery/switchover/order-gateway",
        json={"scheduled_at": soon.isoformat(), "reason": "now-ish"},
        headers=TOKEN,
    )
    assert answer.status_code == 202, answer.text
    done = await api.drc.client.get_workflow_handle(
        switchover_id("order-gateway"), result_type=SwitchoverResult
    ).result()
    assert time.time() >= soon.timestamp() and done.workflow_id == "failover/order-gateway", done
    await api.drc.client.get_workflow_handle(done.workflow_id).result()
    status = await _status(api, "order-gateway")
    assert status.primary != primary
    assert any("scheduled switchover: now-ish" in d.reason for d in status.decisions)
    shown = (await api.http.get("/recovery/switchover/order-gateway")).json()
    assert shown["status"] == "done: failover/order-gateway", shown


async def _one_writer(api: Api) -> None:
    assert len(await _writers(api)) == 1
    assert not (await _status(api, "order-gateway")).repairs_running


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api: Api, tmp_path: Path
) -> None:
    await assert_eventually(lambda: _one_writer(api), timeout=30)
    st = Path(sys.executable).with_name("st")
    common = [
        str(st),
        "run",
        f"{api.base}/openapi.json",
        "--header",
        f"Authorization: Bearer {SECRET}",
        "--max-examples",
        "15",
        "--seed",
        "7",
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
    ]
    conformance = "response_schema_conformance,status_code_conformance,content_type_conformance"
    # The role checks answer 503 by design (Patroni's: "not the primary"): documented, so they
    # are held to the schema and the documented codes, not to "no 5xx".
    for extra in (
        ["--exclude-tag", "health checks", "--checks", f"not_a_server_error,{conformance}"],
        ["--include-tag", "health checks", "--checks", conformance],
    ):
        run = await asyncio.to_thread(
            subprocess.run,
            common + extra,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


async def test_drc_api_serves_on_the_host_and_port_its_options_name(api: Api) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "workers.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    env = {**api.drc.env(), "DRC_API_TOKEN": f"tester:{SECRET}"}
    child = spawn("api-options", argv, api.drc.home / "logs", env=env)
    try:
        wait_port(port, timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def healthy() -> None:
                answer = await http.get("/health")
                assert answer.status_code == 200, answer.text

            await assert_eventually(healthy, timeout=30)
    finally:
        child.stop()
