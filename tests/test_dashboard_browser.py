"""The on-call dashboard in a real browser, against a real drc: a kill -9 shows up, and the
replica is restarted through the page with the API's token (and refused without it).

Real Temporal, supervisord with the demo services, HAProxy, the drc worker and ``drc api`` as
processes; Debian's chromium (``apt-get install chromium``, as ``make test-deps`` does) driven
by Playwright for Python, never a downloaded browser. Nothing here is skipped when chromium or
playwright is missing: the test fails, in CI as anywhere. The screenshots are kept in the
test's tmp directory, and copied to ``$DRC_DASHBOARD_SCREENSHOTS`` when set, to be looked at.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.client import WorkflowExecutionStatus

from drc.model import ReplicaState
from drc.names import monitor_id, restart_id
from drc.status import MonitorStatus
from tests.support.browser import ARGS, CHROMIUM
from tests.support.net import assert_eventually, free_port, wait_port
from tests.support.stack import DrcStack, demo_like_catalog, healthy_drc
from workers.devstack import spawn

pytestmark = pytest.mark.integration

SERVICES = ("market-data", "risk-engine", "order-state", "order-gateway")
SERVICE, VICTIM = "order-gateway", "og-b"  # the standby: its death needs no failover
SECRET = secrets.token_urlsafe(24)
SEEN_S = 30_000  # ms: how long the page may take to show what drc did


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with healthy_drc(tmp_path, demo_like_catalog(services=SERVICES)) as stack:
        yield stack


@pytest.fixture
async def api(drc: DrcStack) -> AsyncIterator[str]:
    """``drc api`` as its own process, with a token named ``tester``."""
    port = free_port()
    env = {**drc.env(), "DRC_API_PORT": str(port), "DRC_API_TOKEN": f"tester:{SECRET}"}
    argv = [sys.executable, "-m", "workers.cli", "api"]
    child = spawn("api", argv, drc.home / "logs", env=env)
    try:
        await asyncio.to_thread(wait_port, port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _restart_runs(drc: DrcStack) -> list[WorkflowExecutionStatus | None]:
    query = f'WorkflowId = "{restart_id(SERVICE, VICTIM)}"'
    return [w.status async for w in drc.client.list_workflows(query)]


async def _decisions(drc: DrcStack) -> list[str]:
    handle = drc.client.get_workflow_handle(monitor_id(SERVICE))
    status = await handle.query("status", result_type=MonitorStatus)
    return [d.reason for d in status.decisions]


async def _keep(page: Page, where: Path, name: str) -> None:
    shot = where / name
    await page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("DRC_DASHBOARD_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / name)


async def test_a_killed_replica_shows_up_and_is_restarted_from_the_dashboard(
    drc: DrcStack, api: str, browser: Browser, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(api + "/")
    await page.evaluate("window.notReloaded = true")  # gone if the page reloads itself

    # Every service, the system's health, and a backup server shown as the standby it is.
    for service in drc.catalog.services:
        await expect(page.locator(f'tbody.service[data-service="{service.name}"]')).to_be_visible()
    health = page.locator("#health")
    await expect(health).to_have_attribute("data-health", "healthy", timeout=SEEN_S)
    await expect(health).to_contain_text("system healthy")
    victim = page.locator(f'tr.replica[data-replica="{VICTIM}"]')
    await expect(victim).to_have_attribute("data-traffic", "standby")
    await expect(victim.locator("td.traffic")).to_have_text("standby")
    await expect(page.locator('tr.replica[data-replica="og-a"]')).to_have_attribute(
        "data-traffic", "serving"
    )
    await expect(page.locator('#synchronization tr[data-replica="redis-b"]')).to_contain_text(
        "in_sync", timeout=SEEN_S
    )

    # kill -9: drc restarts it within a second or so; the failures list keeps the record.
    old = drc.pid(VICTIM)
    os.kill(old, signal.SIGKILL)
    failure = page.locator(f'#failures tr[data-type="replica_failed"][data-replica="{VICTIM}"]')
    await expect(failure).to_be_visible(timeout=SEEN_S)
    await expect(failure).to_contain_text(VICTIM)
    assert await page.evaluate("window.notReloaded === true"), "refreshed in place, not reloaded"

    async def healed() -> None:
        replica = await drc.replica_status(SERVICE, VICTIM)
        assert replica.state is ReplicaState.HEALTHY and drc.pid(VICTIM) != old, replica
        assert await _restart_runs(drc) == [WorkflowExecutionStatus.COMPLETED]

    await assert_eventually(healed, timeout=60)
    await expect(victim).to_have_attribute("data-state", "healthy", timeout=SEEN_S)
    await _keep(page, tmp_path, "dashboard.png")
    healed_pid = drc.pid(VICTIM)

    # Restart from the page: a wrong token is refused, names why, and starts nothing.
    await page.locator(f'button[data-action="restart"][data-replica="{VICTIM}"]').click()
    dialog = page.locator("dialog#repair")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#what")).to_have_text(f"restart {VICTIM} of {SERVICE}?")
    await expect(page.locator("#reason")).to_have_value("restart from the dashboard")
    await page.locator("#token").fill("not-the-token-0123456789")
    await page.locator("#confirm").click()
    answer = page.locator("#answer")
    await expect(answer).to_have_text("the token is not valid")
    await expect(answer).to_have_class("refused")
    async with page.expect_response(lambda r: r.url.endswith("/dashboard/fragment")):
        pass  # a refresh happens while the dialog is open...
    await expect(dialog).to_be_visible()  # ...and leaves it as it was
    await expect(answer).to_have_text("the token is not valid")
    assert await _restart_runs(drc) == [WorkflowExecutionStatus.COMPLETED]
    assert not any("tester asked" in d for d in await _decisions(drc))

    # The right token: the restart workflow starts, linked to its run in the Web UI.
    await page.locator("#token").fill(SECRET)
    await page.locator("#reason").fill("dashboard test restarts og-b")
    await page.locator("#confirm").click()
    link = page.locator("#answer a#workflow")
    await expect(link).to_have_text(restart_id(SERVICE, VICTIM), timeout=SEEN_S)
    await expect(link).to_have_attribute(
        "href", re.compile(r"/namespaces/default/workflows/restart%2Forder-gateway%2Fog-b$")
    )
    await expect(answer).to_contain_text("as tester")
    await _keep(page, tmp_path, "dashboard-restart.png")

    async def restarted_by_tester() -> None:
        reasons = await _decisions(drc)
        wanted = f"restarting {VICTIM}: tester asked: dashboard test restarts og-b"
        assert any(wanted in r for r in reasons), reasons
        assert await _restart_runs(drc) == [WorkflowExecutionStatus.COMPLETED] * 2
        assert drc.pid(VICTIM) != healed_pid

    await assert_eventually(restarted_by_tester, timeout=60)

    # The token is kept for the tab: the next dialog asks only for the confirmation.
    await page.locator("#cancel").click()
    await expect(dialog).to_be_hidden()
    await page.locator(f'button[data-action="restart"][data-replica="{VICTIM}"]').click()
    await expect(page.locator("#token")).to_have_value(SECRET)
    await page.locator("#cancel").click()

    assert await page.evaluate("window.notReloaded === true")
    sizes = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert sizes[0] <= sizes[1], f"the page scrolls sideways: {sizes}"
    assert all(url.startswith(api + "/") for url in requests), "nothing fetched from elsewhere"
    # The one error the browser may report is the refused POST of the wrong token.
    assert [p for p in problems if "status of 401" not in p] == [], problems
