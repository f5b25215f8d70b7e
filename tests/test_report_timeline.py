"""The rendered timeline is the histories' events, one for one, selected independently here.

The selection is re-done from the raw JSON files (not the protos the report reads): every
event of a repair run, the monitor's inside [started − 5 s, resolved + 5 s], without the
bookkeeping kinds below; sorted by (time, workflow id, event id).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from drc.incident import IncidentRun
from reports.build import build_report
from reports.render import render_html, render_markdown
from reports.timeline import timeline_rows
from tests.reports_golden.cases import (
    CASES,
    GATEWAY_FAILOVER,
    GATEWAY_MONITOR,
    HISTORIES,
    SET,
    Case,
    history,
)

HIDDEN = {
    "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
    "EVENT_TYPE_WORKFLOW_TASK_STARTED",
    "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    "EVENT_TYPE_ACTIVITY_TASK_STARTED",
    "EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED",
    "EVENT_TYPE_TIMER_STARTED",
    "EVENT_TYPE_TIMER_CANCELED",
    "EVENT_TYPE_MARKER_RECORDED",
    "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
    "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED",
    "EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED",
    "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED",
}
Row = tuple[str, str, str, int]
"""(time to the millisecond, workflow id, run id, event id)."""


def _ns(stamp: str) -> int:
    """``2026-11-26T09:35:33.737944548Z`` in Unix nanoseconds, without float rounding."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def _expected(case: Case) -> list[Row]:
    inc = case.incident
    assert inc.resolved_at is not None
    low, high = _ns_of(inc.started_at - 5), _ns_of(inc.resolved_at + 5)
    selected: list[tuple[int, str, int, str]] = []
    for run, _ in case.runs:
        assert run.run_id is not None
        stem = f"{run.workflow_id.replace('/', '_')}-{run.run_id}"
        data = json.loads((HISTORIES / SET / f"{stem}.json").read_text())
        for event in data["history"]["events"]:
            at = _ns(event["eventTime"])
            if event["eventType"] in HIDDEN:
                continue
            if run.kind == "monitor" and not low <= at <= high:
                continue
            selected.append((at, run.workflow_id, int(event["eventId"]), run.run_id))
    selected.sort()
    return [(_ms(at), wid, run_id, eid) for at, wid, eid, run_id in selected]


def _ns_of(seconds: float) -> int:
    return round(seconds * 1_000_000) * 1000


def _ms(ns: int) -> str:
    ms = ns // 1_000_000  # truncated, as the Web UI shows event times
    whole = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{whole:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


_CELL = re.compile(r"(?<!\\)\|")
_LINK = re.compile(r"\((?P<url>[^)]+)\)")


def _rendered(markdown: str) -> list[Row]:
    table = markdown.split("\n## Timeline\n", 1)[1].split("\n## ", 1)[0]
    rows: list[Row] = []
    for line in table.splitlines():
        if not line.startswith("| 20"):
            continue
        cells = [c.strip() for c in _CELL.split(line)[1:-1]]
        link = _LINK.search(cells[2])
        assert link is not None, cells[2]
        run_id = unquote(link.group("url")).rsplit("/", 2)[-2]
        rows.append((cells[0], cells[1], run_id, int(cells[3].split(" ")[0])))
    return rows


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_rendered_timeline_is_the_histories_event_for_event(name: str) -> None:
    case = CASES[name]()
    report = build_report(case.incident, case.runs, case.changes)
    expected = _expected(case)
    assert _rendered(render_markdown(report)) == expected
    assert [(r.time, r.workflow_id, r.run_id, r.event_id) for r in report.timeline] == expected
    assert render_html(report).count("<circle ") == len(expected)  # one chart mark per row


def test_only_the_monitor_is_cut_to_the_window() -> None:
    nowhere = (0.0, 1.0)  # a window no event is in
    monitor, failover = history(GATEWAY_MONITOR), history(GATEWAY_FAILOVER)
    as_monitor = IncidentRun(monitor.workflow_id, monitor.run_id, "monitor", 0)
    as_repair = IncidentRun(failover.workflow_id, failover.run_id, "failover", 0)
    assert timeline_rows(as_monitor, monitor, nowhere) == []
    rows = timeline_rows(as_repair, failover, nowhere)
    assert [r.event_id for r in rows] == [
        1,
        5,
        7,
        11,
        13,
        17,
        19,
        23,
        25,
        29,
        31,
        35,
        37,
        41,
        43,
        47,
        52,
    ]
    assert rows[-2].what == "signal runbook_finished sent to monitor/order-gateway"
    assert rows[-1].what == "workflow completed"
    assert (
        rows[-1].detail
        == "runbook failover succeeded: hold, fence, stop-old, promote, switch, verify"
    )


def test_a_row_names_the_activity_by_its_summary_and_links_to_its_run() -> None:
    failover = history(GATEWAY_FAILOVER)
    run = IncidentRun(failover.workflow_id, failover.run_id, "failover", 0)
    rows = timeline_rows(run, failover, None, web_ui="http://ui:8080", namespace="prod")
    fence = next(r for r in rows if r.event_id == 19)
    assert fence.what == "activity action_traffic_set completed: fence: traffic.set og-a maint"
    assert fence.detail == "og-a in be_order-gateway set to maint (was ready)"
    assert fence.time == "2026-11-26T09:35:33.821Z"
    assert fence.link == (
        "http://ui:8080/namespaces/prod/workflows/failover%2Forder-gateway/"
        "01a21735-d569-7e66-ab82-92f753dab6d0/history"
    )
