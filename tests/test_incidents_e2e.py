"""Incidents end to end: a real failover leaves an incident, a report that matches its
histories event for event, and availability that matches what a client was refused."""

from __future__ import annotations

import asyncio
import html
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from drc.incident import Incident
from tests.support.incidents import incidents_of
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, healthy_drc, run_drc
from tests.test_failover_e2e import OrderClient

pytestmark = pytest.mark.integration

SERVICE = "order-gateway"
NOISE = {
    "WorkflowTaskScheduled",
    "WorkflowTaskStarted",
    "WorkflowTaskCompleted",
    "ActivityTaskStarted",
    "ActivityTaskCancelRequested",
    "TimerStarted",
    "TimerCanceled",
    "MarkerRecorded",
    "UpsertWorkflowSearchAttributes",
    "WorkflowPropertiesModified",
    "ExternalWorkflowExecutionSignaled",
    "StartChildWorkflowExecutionInitiated",
    "WorkflowExecutionUpdateAdmitted",
}
"""Bookkeeping a report leaves out (reports/timeline.py states the same rule)."""
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
ROW = re.compile(
    r'<td class="t">([^<]+)</td><td>([^<]+)</td><td[^>]*><a href="[^"]*/([^/"]+)/history">'
    r"[^<]*</a></td><td>(?:<strong>)?#?(\d+)"
)


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with healthy_drc(tmp_path) as stack:
        yield stack


def _drc(stack: DrcStack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_drc(stack, *args)


async def _resolved(stack: DrcStack, count: int) -> list[Incident]:
    found = [i for i in await incidents_of(stack.home, SERVICE) if not i.near_miss]
    assert len(found) == count and all(i.status == "resolved" for i in found), found
    return found


def _iso(nanos: int) -> str:
    from datetime import datetime

    seconds, rest = divmod(nanos, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}"


async def _expected_rows(
    stack: DrcStack, incident: Incident, before: str
) -> set[tuple[str, str, str, int]]:
    """Re-selected from the raw histories: (time to the ms, workflow id, run id, event id).

    Only events dated before ``before`` (an ISO time to the ms): the monitor goes on writing
    events inside the window after the report read its history.
    """
    low = int((incident.started_at - 5) * 1e9)
    high = int(((incident.resolved_at or 0) + 5) * 1e9)
    rows: set[tuple[str, str, str, int]] = set()
    for run in incident.runs:
        handle = stack.client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        history: WorkflowHistory = await handle.fetch_history()
        run_id = history.run_id
        for event in history.events:
            kind = type_name(event)
            at = event.event_time.ToNanoseconds()
            if kind in NOISE or (run.kind == "monitor" and not low <= at <= high):
                continue
            if _iso(at) < before:
                rows.add((_iso(at), run.workflow_id, run_id, event.event_id))
    return rows


def type_name(event: object) -> str:
    from temporalio.api.enums.v1 import EventType

    raw = EventType.Name(event.event_type)  # type: ignore[attr-defined]
    return "".join(part.title() for part in raw.removeprefix("EVENT_TYPE_").split("_"))


async def test_a_gateway_failover_leaves_an_incident_whose_report_matches_its_histories(
    drc: DrcStack, tmp_path: Path
) -> None:
    client = OrderClient(f"http://{drc.catalog.service(SERVICE).frontend}/orders")  # type: ignore[union-attr]
    using = asyncio.create_task(client.run())
    drc.supervisor().signalProcess("og-a", "KILL")
    [incident] = await assert_eventually(lambda: _resolved(drc, 1), timeout=90)
    client.running = False
    await using

    assert incident.type == "service_down" and incident.severity == "critical"
    assert incident.started_at <= incident.detected_at <= (incident.mitigated_at or 0)
    assert (incident.mitigated_at or 0) <= (incident.resolved_at or 0)
    assert [r.kind for r in incident.runs][:3] == ["monitor", "failover", "reprotect"]

    # One filter lists every run of the incident in the Web UI: its repairs and its report.
    async def listed() -> None:
        query = f'incident = "{incident.id}"'
        ids = sorted([w.id async for w in drc.client.list_workflows(query)])
        assert ids == [
            "failover/order-gateway",
            f"report/{incident.id}",
            "reprotect/order-gateway",
        ], ids

    await assert_eventually(listed, timeout=30)

    # The failover's result, as the Web UI shows it, dates its steps in ISO-8601.
    failover = drc.client.get_workflow_handle("failover/order-gateway")
    history = await failover.fetch_history()
    done_event = history.events[-1].workflow_execution_completed_event_attributes
    result = json.loads(done_event.result.payloads[0].data)
    assert all(ISO.match(step["started_at"]) for step in result["steps"]), result["steps"]

    # The report workflow wrote both forms under DRC_HOME/reports once the incident resolved.
    written = drc.home / "reports" / f"{incident.id}.html"
    await assert_eventually(lambda: _exists(written), timeout=60)
    markdown = (drc.home / "reports" / f"{incident.id}.md").read_text()
    for metric in (
        "**TTD** = detected − started",
        "**TTM** = mitigated − started",
        "**TTR** = resolved − started",
    ):
        assert metric in markdown, metric
    assert "| Time" in markdown and incident.id in markdown

    # drc report renders the same from the histories, and the page's timeline is theirs.
    out = tmp_path / "report.html"
    before = _iso(time.time_ns())
    done = _drc(drc, "report", incident.id, "--format", "html", "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    found = [(t[:23], html.unescape(w), r, int(e)) for t, w, r, e in ROW.findall(page)]
    shown = {row for row in found if row[0] < before}
    expected = await _expected_rows(drc, incident, before)
    assert shown == expected, (sorted(shown - expected)[:5], sorted(expected - shown)[:5])
    assert len([row for row in found if row[0] < before]) == len(expected), "one row per event"

    md = _drc(drc, "report", incident.id)
    assert md.returncode == 0 and md.stdout.startswith("#"), md.stderr
    unknown = _drc(drc, "report", "no-such-incident")
    assert unknown.returncode == 2 and "no incident 'no-such-incident'" in unknown.stderr
    listed = json.loads(_drc(drc, "incidents", "--json").stdout)
    mine = next(i for i in listed if i["id"] == incident.id)
    assert mine["ttd_s"] is not None and mine["ttr_s"] >= mine["ttm_s"] >= mine["ttd_s"] >= 0
    assert mine["started_at"].endswith("Z")
    failures = json.loads(_drc(drc, "failures", "--json").stdout)
    assert failures["total_count"] >= 1 and failures["critical_count"] >= 1
    assert failures["time_period_hours"] == 24


async def _exists(path: Path) -> None:
    assert path.exists(), path


def _refused_seconds(client: OrderClient) -> list[float]:
    """Each outage the client saw: from its first refused order to its next accepted one."""
    outages: list[float] = []
    start: float | None = None
    for sent, status, _ in client.results:
        if status != 201 and start is None:
            start = sent
        elif status == 201 and start is not None:
            outages.append(sent - start)
            start = None
    return outages


async def test_history_availability_matches_what_the_front_end_refused(drc: DrcStack) -> None:
    client = OrderClient(f"http://{drc.catalog.service(SERVICE).frontend}/orders", interval=0.01)  # type: ignore[union-attr]
    using = asyncio.create_task(client.run())
    await asyncio.sleep(1)
    for count, victim in enumerate(("og-a", "og-b", "og-a"), start=1):
        drc.supervisor().signalProcess(victim, "KILL")
        await assert_eventually(lambda n=count: _resolved(drc, n), timeout=90)  # type: ignore[misc]
    await asyncio.sleep(1)
    client.running = False
    await using

    outages = _refused_seconds(client)
    assert len(outages) == 3, outages
    done = _drc(drc, "history", "--days", "1", "--json")
    assert done.returncode == 0, done.stderr
    history = json.loads(done.stdout)
    [gateway] = [s for s in history["services"] if s["service"] == SERVICE]
    assert len(gateway["downtime"]) == 3, gateway
    # Stated tolerance: 0.5 s per outage. drc dates an outage from its first failed probe (up
    # to one probe interval, 250 ms, after the kill) to the failover's end as the monitor
    # learns it (after the verify step), the client from its first refused order to its next
    # accepted one.
    print(f"drc down {gateway['down_s']:.3f} s; client refused {sum(outages):.3f} s {outages}")
    assert abs(gateway["down_s"] - sum(outages)) <= 0.5 * len(outages), (gateway, outages)
    assert gateway["availability_pct"] < 100
    assert history["incidents"] == 3 and history["mttr"]["count"] == 3
    assert "MTTR = mean(resolved_at − started_at)" in history["mttr"]["formula"]
