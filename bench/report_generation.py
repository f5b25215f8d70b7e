"""Time to build and render a post-incident report of a large incident, from real histories.

The incident has 10 workflow runs: the 10 longest histories recorded by
``tests.replay.record`` (all sets), 1,657 events in all. That is fewer than the ~2,000 aimed
at (no recorded run is longer), so every run is taken whole, as a repair run is: no incident
window trims a monitor's events, and every event is read, selected and rendered (the worst
case for a report of these histories). One repeat = ``build_report`` + ``render_markdown`` +
``render_html``; the median and max of N repeats are recorded. Target: under 2 s.

    .venv/bin/python bench/report_generation.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import WorkflowHistory  # noqa: E402

from bench.common import record  # noqa: E402
from drc.incident import AvailabilityChange, Incident, IncidentRun  # noqa: E402
from reports.build import build_report  # noqa: E402
from reports.render import render_html, render_markdown  # noqa: E402

HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "replay" / "histories"
WORKFLOWS = 10
TARGET_S = 2.0


def load() -> list[tuple[IncidentRun, WorkflowHistory]]:
    """The WORKFLOWS longest recorded histories, each as a run taken whole."""
    found: list[tuple[int, str, IncidentRun, WorkflowHistory]] = []
    for path in sorted(HISTORIES.glob("*/*.json")):
        data = json.loads(path.read_text())
        history = WorkflowHistory.from_json(data["workflow_id"], data["history"])
        run = IncidentRun(history.workflow_id, history.run_id, "bench", _start(history))
        found.append((len(history.events), str(path), run, history))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [(run, history) for _, _, run, history in found[:WORKFLOWS]]


def _start(history: WorkflowHistory) -> float:
    stamp = history.events[0].event_time
    return stamp.seconds + stamp.nanos / 1e9


def incident(runs: list[tuple[IncidentRun, WorkflowHistory]]) -> Incident:
    """An incident spanning every run (times from the histories, never the clock)."""
    first = min(run.started_at for run, _ in runs)
    return Incident(
        id="bench/report-generation",
        service="order-gateway",
        type="service_down",
        severity="critical",
        cause="benchmark: the longest recorded histories as one incident",
        started_at=first,
        detected_at=first + 0.25,
        status="resolved",
        mitigated_at=first + 5,
        resolved_at=first + 30,
        runs=[run for run, _ in runs],
    )


def main(repeats: int) -> None:
    runs = load()
    inc = incident(runs)
    pairs: list[tuple[IncidentRun, WorkflowHistory | None]] = list(runs)
    changes = [
        AvailabilityChange(inc.service, inc.started_at, "down", "bench"),
        AvailabilityChange(inc.service, inc.started_at + 5, "up", "bench"),
    ]
    events = sum(len(history.events) for _, history in runs)
    times: list[float] = []
    rows = size = 0
    for _ in range(repeats):
        began = time.perf_counter()
        report = build_report(inc, pairs, changes)
        markdown, html = render_markdown(report), render_html(report)
        times.append(time.perf_counter() - began)
        rows, size = len(report.timeline), len(markdown) + len(html)
    median, worst = statistics.median(times), max(times)
    figures = {
        "median_s": round(median, 4),
        "max_s": round(worst, 4),
        "timeline_rows": rows,
        "rendered_bytes": size,
        "target_met": worst < TARGET_S,
    }
    line = (
        f"report_generation workflows={len(runs)} events={events} rows={rows} "
        f"repeats={repeats}: build+markdown+html median {median * 1000:.1f} ms, "
        f"max {worst * 1000:.1f} ms (target < {TARGET_S:.0f} s)"
    )
    params = {"workflows": len(runs), "events": events, "repeats": repeats}
    record("report_generation", params, figures, line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    main(parser.parse_args().repeats)
