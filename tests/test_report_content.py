"""What a report says: metrics, impact, the guard, forcing, resolution and the drafted facts."""

from __future__ import annotations

import base64
import json
import re

import pytest
from temporalio.client import WorkflowHistory

from drc.incident import Incident, IncidentNote, IncidentRun
from reports.build import build_report
from reports.fmt import duration, iso_ns, iso_s
from reports.model import Fact, Report
from reports.render import markdown_escape, render_html, render_markdown
from tests.reports_golden.cases import (
    GATEWAY_MONITOR,
    HOSTILE,
    Case,
    compensated_failover,
    forced_failover,
    gateway_failover,
    history,
    hostile,
    record,
    run_of,
    state_failover,
)

CAUGHT_UP = (
    "redis-a does not answer; redis-b's link went down 0 s ago (whole seconds), after redis-a "
    "was last seen at 09:35:40.171 UTC (0.3 s ago); offset 631 ≥ 631 last seen on redis-a "
    "(replication id not given)"
)


def _report(case: Case) -> Report:
    return build_report(case.incident, case.runs, case.changes)


def _texts(facts: list[Fact]) -> list[str]:
    return [f.text for f in facts]


def _incident(service: str, started: float, **extra: object) -> Incident:
    fields: dict[str, object] = {
        "id": f"{service}/test",
        "service": service,
        "type": "replica_failed",
        "severity": "high",
        "cause": "a replica failed",
        "started_at": started,
        "detected_at": started + 0.5,
    }
    fields.update(extra)
    return Incident(**fields)  # type: ignore[arg-type]


def test_times_are_utc_iso_with_milliseconds() -> None:
    assert iso_s(1795685733.725) == "2026-11-26T09:35:33.725Z"
    assert iso_ns(1795685733737944548) == "2026-11-26T09:35:33.737Z"
    assert iso_s(None, "(none)") == "(none)"
    assert duration(0.41) == "0.410 s"
    assert duration(123.4) == "123.400 s (2 min 3.4 s)"


def test_metrics_state_their_formula_and_anchor() -> None:
    md = render_markdown(_report(gateway_failover()))
    assert (
        "- **TTD** = detected − started = 0.002 s (started: first failed probe "
        "2026-11-26T09:35:33.725Z; detected: 2026-11-26T09:35:33.727Z)"
    ) in md
    assert "- **TTM** = mitigated − started = 0.188 s" in md
    assert "- **TTR** = resolved − started = 0.844 s" in md


def test_an_open_incident_has_no_ttr_yet() -> None:
    case = gateway_failover()
    case.incident.resolved_at, case.incident.status = None, "open"
    metrics = {m.name: m for m in _report(case).metrics}
    assert metrics["TTR"].value == "not resolved yet"
    assert metrics["TTR"].anchor.endswith("resolved: not recorded")


def test_downtime_is_the_down_intervals_of_the_availability_changes() -> None:
    impact = _report(gateway_failover()).impact
    assert impact.down_total == "0.148 s"  # 33.725 → 33.873
    assert impact.down_formula.startswith("Σ (next change − change to down) over 1 interval(s)")
    assert impact.degraded_total == "0.696 s"  # 33.873 → 34.569
    assert [i.state for i in impact.intervals] == ["down", "degraded", "up"]


def test_the_caught_up_guard_held_and_is_quoted() -> None:
    report = _report(state_failover())
    guard = report.impact.guard
    assert (guard.status, guard.sentence) == ("held", CAUGHT_UP)
    assert "redis-b against redis-a; max_lag_ms 0" in guard.checked
    assert "primary last seen 2026-11-26T09:35:40.171Z; min_offset 631" in guard.checked
    assert any(CAUGHT_UP in text for text in _texts(report.went_well))
    assert f"**Zero-data-loss guard:** held: {markdown_escape(CAUGHT_UP)}" in render_markdown(
        report
    )


def test_the_guard_does_not_apply_to_a_service_without_replicated_state() -> None:
    guard = _report(gateway_failover()).impact.guard
    assert (guard.status, guard.sentence) == (
        "did not apply",
        "the service keeps no replicated state",
    )


def test_a_forced_failover_says_by_whom_and_why() -> None:
    report = _report(forced_failover())
    forced = {item.label: item.value for item in report.forced}
    assert forced["Forced by"] == "carol"
    assert forced["Trigger"].endswith("; FORCED by carol: replication guards skipped")
    assert forced["Why"].startswith("failing over order-state from redis-a to redis-b")
    assert "FORCED" not in forced["Why"]
    assert report.impact.guard.status == "skipped (forced)"
    assert any("forced by carol" in text for text in _texts(report.lucky))
    md = render_markdown(report)
    assert "## Forced failover" in md and "| Forced | yes, by carol |" in md
    assert '<span class="forced">FORCED</span>' in render_html(report)


def test_an_unforced_report_has_no_forced_section() -> None:
    report = _report(gateway_failover())
    assert report.forced == []
    assert "## Forced failover" not in render_markdown(report)


def test_compensations_are_listed_in_the_order_they_ran() -> None:
    report = _report(compensated_failover())
    failover = next(r for r in report.repairs if r.kind == "failover")
    assert (failover.status, failover.outcome) == ("failed", "compensated")
    assert [(c.step, c.call) for c in failover.compensations] == [
        ("stop-old", "process.start og-a"),
        ("fence", "traffic.set og-a ready"),
        ("hold", "traffic.set og-b ready"),
    ]
    steps = {s.name: (s.status, s.attempts) for s in failover.steps}
    assert steps["promote"] == ("failed", "3")
    assert steps["switch"] == ("skipped", "")
    wrong = _texts(report.went_wrong)
    assert any(
        "retries exhausted: promote: replica.promote og-b failed 3 times" in t for t in wrong
    )
    assert any(t.endswith("rolled back: " + failover.reason) for t in wrong)
    assert any(
        "every compensation ran, in reverse: stop-old, fence, hold" in t
        for t in _texts(report.went_well)
    )


def test_polling_retries_are_not_luck() -> None:
    # check_recovered retries BENIGN "not healthy yet" failures: the poller, not a near miss.
    assert _report(compensated_failover()).lucky == []


def test_traffic_switch_and_reprotection_are_milestones() -> None:
    texts = _texts(_report(gateway_failover()).milestones)
    assert texts[0].startswith("2026-11-26T09:35:33.860Z promoted (failover/order-gateway)")
    assert any(
        "traffic switched (failover/order-gateway): og-b in be_order-gateway" in t for t in texts
    )
    assert any("re-protected (reprotect/order-gateway)" in t for t in texts)


def test_a_terminated_repair_is_wrong_and_its_successor_is_named() -> None:
    term = "failover_order-gateway-01a21735-db69-7d11-85c3-dcef31e12bc7"
    after = "failover_order-gateway-01a21735-dc06-7421-a5ca-2c35f5881d9d"
    incident = _incident("order-gateway", 1795685735.256)
    runs: list[tuple[IncidentRun, WorkflowHistory | None]] = [
        (run_of(GATEWAY_MONITOR, "monitor", 1795685730.195), history(GATEWAY_MONITOR)),
        (run_of(term, "failover", 1795685735.27), history(term)),
        (run_of(after, "failover", 1795685735.43), history(after)),
    ]
    report = build_report(incident, runs, [])
    terminated = next(r for r in report.repairs if r.status == "terminated")
    assert terminated.reason == "replay fixture"
    assert [s.status for s in terminated.steps] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "interrupted",
    ]
    assert "failover/order-gateway: terminated: replay fixture" in _texts(report.went_wrong)
    assert any("finished by run 01a21735-dc06" in t for t in _texts(report.went_well))


def test_a_failed_restart_and_a_freeze_are_wrong() -> None:
    stem = "restart_risk-engine_re-a-01a21735-f5d1-760d-a160-2deff4cdecc8"
    incident = _incident(
        "risk-engine",
        1795685742.0,
        notes=[IncidentNote(1795685745.0, "frozen", "re-a", "re-a is flapping: frozen for 600 s")],
    )
    report = build_report(incident, [(run_of(stem, "restart", 1795685742.03), history(stem))], [])
    wrong = _texts(report.went_wrong)
    assert (
        "restart/risk-engine/re-a: restart of re-a failed: re-a is EXITED after its start, "
        "exit status 3: Nov 26 09:35 AM" in wrong
    )
    assert any("check_recovered failed without retry (non-retryable)" in t for t in wrong)
    assert "automatic action frozen: re-a is flapping: frozen for 600 s" in wrong
    restart = report.repairs[0]
    assert (restart.status, restart.outcome) == ("failed", "restart failed")


def test_missing_histories_still_render_and_are_listed() -> None:
    case = gateway_failover()
    runs = [(run, None) for run, _ in case.runs]
    report = build_report(case.incident, runs, case.changes)
    assert report.missing == [f"{r.workflow_id} run {r.run_id}" for r, _ in case.runs]
    assert report.timeline == [] and report.impact.guard.status == "unknown"
    assert [r.status for r in report.repairs] == ["history missing", "history missing"]
    md, html = render_markdown(report), render_html(report)
    assert "## Missing histories" in md and "| (no history left) |" in md
    for run in report.missing:
        assert f"- {markdown_escape(run)}" in md and run in html
    assert report.metrics[0].value == "0.002 s"  # the record alone still gives the metrics


def test_one_missing_history_leaves_the_others_whole() -> None:
    case = gateway_failover()
    case.runs[2] = (case.runs[2][0], None)
    report = _report(case)
    assert report.missing == ["reprotect/order-gateway run 01a21735-d61b-7df5-9ad4-8df3fa734e45"]
    assert {r.workflow_id for r in report.timeline} == {
        "monitor/order-gateway",
        "failover/order-gateway",
    }


def test_an_undecodable_payload_is_shown_as_such() -> None:
    data = record("failover_order-gateway-01a21735-d569-7e66-ab82-92f753dab6d0")
    events = data["history"]["events"]
    events[6]["activityTaskCompletedEventAttributes"]["result"]["payloads"][0]["data"] = (
        base64.b64encode(b"\xff{not json").decode()
    )
    encoding = base64.b64encode(b"binary/protobuf").decode()
    events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]["metadata"] = {
        "encoding": encoding
    }
    bad = WorkflowHistory.from_json(data["workflow_id"], json.dumps(data["history"]))
    case = gateway_failover()
    case.runs[1] = (case.runs[1][0], bad)
    report = _report(case)
    row = next(r for r in report.timeline if r.workflow_id == bad.workflow_id and r.event_id == 7)
    assert row.detail == "(undecodable)"
    failover = next(r for r in report.repairs if r.kind == "failover")
    assert failover.trigger == ""  # the start input could not be read; the rest still is
    assert "(undecodable)" in render_markdown(report)


def test_hostile_names_are_text_in_markdown() -> None:
    md = render_markdown(_report(hostile()))
    assert "<script" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "\\[x\\](javascript:alert(2))" in md and "&#96;tick&#96;" in md
    header = "| Time | Action | Replica | Reason |"
    tables = re.findall(r"^\|.*\|$(?:\n^\|.*\|$)*", md, flags=re.M)
    assert len(tables) >= 8
    for table in tables:
        lines = table.splitlines()
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, f"a cell broke its table: {lines[0]} ({widths})"
    assert header in md


def test_hostile_names_are_text_in_html() -> None:
    html = render_html(_report(hostile()))
    assert "<script" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE not in html


def test_markdown_escape_keeps_cells_and_markup_inert() -> None:
    text = "a|b <i>`c`</i> & [d](e) *f*\nnext\\"
    assert markdown_escape(text) == (
        "a\\|b &lt;i&gt;&#96;c&#96;&lt;/i&gt; &amp; \\[d\\](e) \\*f\\*<br>next\\\\"
    )


JUNK = [
    "[1, 2]",
    "42",
    '"just a string"',
    "null",
    json.dumps(
        {
            "trigger": 5,
            "reason": ["x"],
            "steps": "none",
            "ok": "maybe",
            "args": 3,
            "params": [],
            "transitions": [1, {"replica": None}],
            "service": {"probe": {"interval_ms": "fast"}, "replicas": "all"},
            "config": {
                "service": {
                    "probe": {
                        "interval_ms": 1e308,
                        "timeout_ms": 1,
                        "failure_threshold": 1,
                        "recovery_threshold": 1,
                    },
                    "replicas": [{"url": 7}],
                }
            },
            "primary_last_seen": "inf",
        }
    ),
]


@pytest.mark.parametrize("junk", JUNK)
def test_odd_payloads_never_break_the_report(junk: str) -> None:
    case = compensated_failover()
    case.runs = [(run, history(_stem(run), lambda _text: junk)) for run, _ in case.runs]
    report = _report(case)
    assert len(report.timeline) == len(_report(compensated_failover()).timeline)
    assert render_markdown(report) and render_html(report)


def _stem(run: IncidentRun) -> str:
    return f"{run.workflow_id.replace('/', '_')}-{run.run_id}"
