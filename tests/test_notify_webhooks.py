"""Notifications reach real webhooks: JSON with Slack's ``text``, retried, never in the way."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from activities.notify import (
    FanoutNotifier,
    NotifyActivities,
    OutboxNotifier,
    WebhookNotifier,
    webhook_body,
)
from drc.repair import Notification
from tests.support.monitor_world import GATEWAY, FakeWorld, failed, start_monitor, wait_decision
from tests.support.net import assert_eventually, free_port
from tests.support.temporal import DevServer, new_worker
from workflows.monitor import ServiceMonitorWorkflow
from workflows.report import IncidentReportWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

WORKFLOWS = [
    ServiceMonitorWorkflow,
    RestartReplicaWorkflow,
    RunbookWorkflow,
    IncidentReportWorkflow,
]


@dataclass
class Receiver:
    """A real HTTP server that records each POST; fails the first ``fail_first`` with 500."""

    url: str
    fail_first: int = 0
    always_fail: bool = False
    bodies: list[dict[str, object]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    attempts: int = 0


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    made: list[Receiver] = []
    runners: list[web.AppRunner] = []

    async def make(fail_first: int = 0, always_fail: bool = False) -> Receiver:
        port = free_port()
        receiver = Receiver(f"http://127.0.0.1:{port}/hook", fail_first, always_fail)

        async def hook(request: web.Request) -> web.Response:
            receiver.attempts += 1
            if receiver.always_fail or receiver.attempts <= receiver.fail_first:
                return web.Response(status=500, text="down for maintenance")
            receiver.bodies.append(await request.json())
            receiver.keys.append(request.headers["Idempotency-Key"])
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        made.append(receiver)
        return receiver

    await make()
    await make(fail_first=2)
    await make(always_fail=True)
    yield made
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    return dev_server


def test_webhook_body_carries_slack_text_and_iso_time() -> None:
    note = Notification(
        "frozen",
        "order-gateway",
        "og-a",
        "high",
        "og-a is flapping",
        1795690065.5,
        "monitor/x",
        incident_id="order-gateway-20261126T100000Z-ab12",
    )
    body = webhook_body(note, "k1")
    assert body["text"] == (
        "[drc] HIGH frozen order-gateway/og-a [order-gateway-20261126T100000Z-ab12]: "
        "og-a is flapping"
    )
    assert body["at"] == "2026-11-26T10:47:45.500Z"
    assert body["service"] == "order-gateway" and body["key"] == "k1"


async def test_incident_page_reaches_every_webhook_once_retried_by_temporal(
    env: DevServer, receivers: list[Receiver], tmp_path: Path
) -> None:
    good, flaky, dead = receivers
    world = FakeWorld()
    async with httpx.AsyncClient() as http:
        notifier = FanoutNotifier(
            OutboxNotifier(tmp_path / "notifications.jsonl"),
            WebhookNotifier([good.url, flaky.url, dead.url], http),
        )
        real = NotifyActivities(notifier)
        activities = [a for a in world.activities() if a != world.notify] + [real.notify]
        async with new_worker(env.client, WORKFLOWS, activities) as worker:
            handle = await start_monitor(env, worker.task_queue)
            await world.watch_results.put(failed(GATEWAY, "og-a", at=time.time()))
            # The failover is not held up by a webhook that never answers 2xx.
            await wait_decision(handle, "reprotect-done")

            async def delivered() -> None:
                kinds = [b["kind"] for b in flaky.bodies]
                assert "incident-opened" in kinds, (flaky.attempts, kinds)

            await assert_eventually(delivered, timeout=60)
            await handle.terminate()
    opened = [b for b in good.bodies if b["kind"] == "incident-opened"]
    assert len(opened) == 1, good.bodies  # the retries went only to the webhooks that failed
    assert str(opened[0]["text"]).startswith("[drc] CRITICAL incident-opened order-gateway/og-a")
    assert opened[0]["incident_id"] and str(opened[0]["at"]).endswith("Z")
    assert [b for b in flaky.bodies if b["kind"] == "incident-opened"] == opened
    assert flaky.attempts >= 3 and dead.attempts >= 2 and not dead.bodies
    assert len(set(good.keys)) == len(good.keys)
    outbox = [
        json.loads(line) for line in (tmp_path / "notifications.jsonl").read_text().splitlines()
    ]
    assert [o["kind"] for o in outbox].count("incident-opened") == 1
