"""``drc incidents``, ``drc report``, ``drc history``, ``drc failures``: what happened.

Read from the incident store and, for reports, the workflow histories.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from drc.errors import DrcError
from drc.settings import Settings
from drc.store.availability import failures_summary, history_summary, service_availability
from drc.store.store import IncidentStore
from workers.incident_views import (
    failures_json,
    failures_table,
    history_json,
    history_table,
    incident_json,
    incidents_table,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Stable JSON (see README).")]


class ReportFormat(StrEnum):
    """What ``drc report`` renders."""

    MD = "md"
    HTML = "html"


def _store(settings: Settings) -> IncidentStore:
    try:
        return IncidentStore.open(settings.database_url, settings.home.resolve())
    except DrcError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _print(data: Any, text: str, as_json: bool) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else text)


def register(app: typer.Typer) -> None:
    """Add the incident commands to ``app``."""

    @app.command()
    def incidents(
        hours: Annotated[float, typer.Option(help="How far back (by impact start).")] = 24,
        as_json: JsonOption = False,
    ) -> None:
        """Incidents and near misses of the last N hours, newest first, with TTD/TTM/TTR."""
        with _store(Settings()) as store:
            found = store.incidents(since=time.time() - hours * 3600)
        _print([incident_json(i) for i in found], incidents_table(found), as_json)

    @app.command()
    def failures(
        hours: Annotated[float, typer.Option(help="How far back.")] = 24,
        as_json: JsonOption = False,
    ) -> None:
        """The failures list: every failed replica, refusal, freeze and crash loop."""
        with _store(Settings()) as store:
            found = store.failures(since=time.time() - hours * 3600)
        summary = failures_summary(found, hours)
        _print(failures_json(summary), failures_table(summary), as_json)

    @app.command()
    def history(
        days: Annotated[float, typer.Option(help="How far back.")] = 7,
        as_json: JsonOption = False,
    ) -> None:
        """Availability per service (from recorded transitions), MTTD/MTTM/MTTR, counts."""
        until = time.time()
        since = until - days * 86400
        with _store(Settings()) as store:
            found = store.incidents(since=since)
            availability = [
                service_availability(
                    name,
                    store.changes(name, since, until),
                    store.last_change_before(name, since),
                    since,
                    until,
                )
                for name in store.services()
            ]
        summary = history_summary(found, availability, since, until)
        _print(history_json(summary), history_table(summary), as_json)

    @app.command()
    def report(
        incident: Annotated[str, typer.Argument(help="The incident id (drc incidents).")],
        fmt: Annotated[
            ReportFormat, typer.Option("--format", "-f", help="Markdown or one HTML page.")
        ] = ReportFormat.MD,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
        ] = None,
    ) -> None:
        """Render an incident's report from its workflow histories (and the store)."""
        from activities.reports import compose_report
        from workers.cli import _run
        from workers.connect import connect

        settings = Settings()

        async def main() -> None:
            with _store(settings) as store:
                found = store.incident(incident)
                if found is None:
                    known = ", ".join(i.id for i in store.incidents()[:5]) or "none recorded"
                    typer.echo(f"error: no incident {incident!r} (latest: {known})", err=True)
                    raise typer.Exit(2)
                client = await connect(settings)
                composed = await compose_report(
                    client, store, found, settings.web_ui, settings.temporal_namespace
                )
            text = composed.markdown if fmt is ReportFormat.MD else composed.html
            for gone in composed.missing:
                typer.echo(f"note: history gone, rendered from the store: {gone}", err=True)
            if output is None:
                typer.echo(text, nl=False)
            else:
                output.write_text(text, encoding="utf-8")
                typer.echo(f"wrote {output}", err=True)

        _run(main())
