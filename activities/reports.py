"""Post-incident reports, from an incident's workflow histories to files and the store.

The histories are read through the Temporal client, rendered by ``reports/`` and written to
``$DRC_HOME/reports/`` and the store.

``compose_report`` is shared by the ``write_incident_report`` activity and ``drc report``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from drc.incident import AvailabilityChange, Incident, IncidentRun
from drc.names import WRITE_REPORT
from drc.report import ReportRequest, ReportResult
from drc.store.store import IncidentStore
from reports.build import build_report
from reports.render import render_html, render_markdown


@dataclass
class ComposedReport:
    """A rendered report and what it was made of."""

    markdown: str
    html: str
    rows: int
    missing: list[str]


async def fetch_history(client: Client, run: IncidentRun) -> WorkflowHistory | None:
    """The history of ``run``, or None when the server no longer has it (retention)."""
    handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
    try:
        return await handle.fetch_history()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


def availability_changes(store: IncidentStore, incident: Incident) -> list[AvailabilityChange]:
    """The service's availability changes over the incident, with the state it started in."""
    until = incident.resolved_at
    changes = store.changes(incident.service, incident.started_at - 1, until)
    before = store.last_change_before(incident.service, incident.started_at - 1)
    return ([before] if before is not None else []) + changes


async def compose_report(
    client: Client, store: IncidentStore, incident: Incident, web_ui: str, namespace: str
) -> ComposedReport:
    """Read every run's history, build the report and render it both ways."""
    histories = await asyncio.gather(*(fetch_history(client, run) for run in incident.runs))
    changes = await asyncio.to_thread(availability_changes, store, incident)
    report = build_report(
        incident,
        list(zip(incident.runs, histories, strict=True)),
        changes,
        web_ui=web_ui,
        namespace=namespace,
    )
    return ComposedReport(
        render_markdown(report), render_html(report), len(report.timeline), list(report.missing)
    )


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ReportActivities:
    """The ``write_incident_report`` activity, with the worker's client and store."""

    def __init__(
        self,
        client: Client,
        store: Callable[[], IncidentStore],
        home: Path,
        web_ui: str,
        namespace: str,
    ) -> None:
        self._client, self._store = client, store
        self._home, self._web_ui, self._namespace = home, web_ui, namespace

    @activity.defn(name=WRITE_REPORT)
    async def write_incident_report(self, request: ReportRequest) -> ReportResult:
        """Render and write the report; idempotent.

        The same histories give the same bytes, written over the same files and store row.
        """
        store = await asyncio.to_thread(self._store)
        incident = await asyncio.to_thread(store.incident, request.incident_id)
        if incident is None or incident.status != "resolved":
            # The monitor's last snapshot may still be on its way to the store: retried.
            state = "unknown" if incident is None else incident.status
            raise ApplicationError(
                f"incident {request.incident_id} is {state} in the store, not yet resolved",
                type="IncidentNotResolved",
            )
        composed = await compose_report(
            self._client, store, incident, self._web_ui, self._namespace
        )
        folder = self._home.resolve() / "reports"
        md_path, html_path = folder / f"{incident.id}.md", folder / f"{incident.id}.html"
        write_atomically(md_path, composed.markdown)
        write_atomically(html_path, composed.html)
        at = activity.info().started_time.timestamp()
        await asyncio.to_thread(
            store.save_report, incident.id, composed.markdown, composed.html, at, composed.missing
        )
        return ReportResult(
            incident.id, str(md_path), str(html_path), composed.rows, composed.missing
        )
