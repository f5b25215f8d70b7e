"""The on-call dashboard at ``/``: one server-rendered page that refreshes itself.

What an on-call SRE keeps open beside the Temporal Web UI: system health, the service grid,
the day's failures, synchronization, incidents with their reports and runs, chaos results,
and restart/failover buttons that ask for the token and a confirmation before calling the
API's own repair endpoints. Every value comes from the functions the JSON endpoints use
(``api.views``, ``api.routes``), so the page and the API cannot disagree.

The page fetches ``/dashboard/fragment`` (the ``main`` block alone) every two seconds and swaps
it in; the dialog lives outside that block, so a refresh never closes it. Jinja2 renders with
autoescape and ``StrictUndefined``, as the reports do: a replica's error text is shown, never
run, and a Content-Security-Policy with a per-response nonce makes sure of it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from api.app import ApiContext, Context, Live
from api.models import (
    ChaosRow,
    FailureView,
    IncidentSummary,
    RecoveryStatus,
    ServiceView,
    SynchronizationView,
)
from api.routes import get_chaos, incident_summary, web_ui_link
from api.snapshot import Snapshot
from api.views import recovery_status, service_view, synchronization
from drc.catalog import Catalog
from drc.incident import FailureRecord, Incident

router = APIRouter()

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE = "dashboard.html.j2"
DAY_S = 24 * 3600.0
REFRESH_MS = 2000


@dataclass
class RunLink:
    """One workflow run of an incident and its page in the Temporal Web UI."""

    kind: str
    workflow_id: str
    web_ui: str


@dataclass
class IncidentEntry:
    """An incident as listed, with every run that belongs to it."""

    summary: IncidentSummary
    runs: list[RunLink]


@dataclass
class Dashboard:
    """Everything the page shows, computed before rendering: the template computes nothing."""

    status: RecoveryStatus
    """System health; its ``failures`` are the last 24 hours' (the dashboard asks for a day)."""
    services: list[ServiceView]
    sync: SynchronizationView
    incidents: list[IncidentEntry]
    chaos: list[ChaosRow]
    chaos_error: str | None
    errors: list[str]
    """What the snapshot could not read (a monitor or the fleet that does not answer)."""
    web_ui: str
    """The Temporal Web UI's workflow list of drc's namespace."""

    @property
    def failures(self) -> list[FailureView]:
        """The last 24 hours' failures, newest first."""
        return self.status.failures

    @property
    def critical(self) -> int:
        """How many of them are critical."""
        return sum(1 for f in self.failures if f.severity == "critical")


def build_dashboard(
    catalog: Catalog,
    snapshot: Snapshot,
    failures: list[FailureRecord],
    incidents: list[Incident],
    chaos: list[ChaosRow],
    chaos_error: str | None,
    link: Callable[[str], str],
) -> Dashboard:
    """The page's content from a snapshot and the store's records (pure).

    ``link`` gives a workflow id's Web UI page; ``link("")`` the namespace's workflow list.
    """
    return Dashboard(
        status=recovery_status(catalog, snapshot, failures),
        services=[service_view(s, snapshot) for s in catalog.services],
        sync=synchronization(catalog, snapshot),
        incidents=[
            IncidentEntry(
                incident_summary(i),
                [RunLink(r.kind, r.workflow_id, link(r.workflow_id)) for r in i.runs],
            )
            for i in incidents
        ],
        chaos=chaos,
        chaos_error=chaos_error,
        errors=list(snapshot.errors),
        web_ui=link("").rstrip("/"),
    )


def render_page(dashboard: Dashboard, nonce: str) -> str:
    """The whole page; ``nonce`` marks its own style and script for the CSP."""
    return _template().render(view=dashboard, nonce=nonce, refresh_ms=REFRESH_MS)


def render_fragment(dashboard: Dashboard) -> str:
    """The page's ``main`` block alone: what the page's script swaps in on each refresh."""
    template = _template()
    context = template.new_context({"view": dashboard})
    return "".join(template.blocks["main"](context))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def get_dashboard(ctx: Context, live: Live) -> HTMLResponse:
    """The dashboard page."""
    nonce = secrets.token_urlsafe(16)
    page = render_page(await _dashboard(ctx, live), nonce)
    return HTMLResponse(page, headers=_headers(nonce))


@router.get("/dashboard/fragment", response_class=HTMLResponse, include_in_schema=False)
async def get_fragment(ctx: Context, live: Live) -> HTMLResponse:
    """The dashboard's live part, for the page's own refresh."""
    return HTMLResponse(render_fragment(await _dashboard(ctx, live)), headers=_headers(None))


async def _dashboard(ctx: ApiContext, live: Snapshot) -> Dashboard:
    since = time.time() - DAY_S
    failures = await run_in_threadpool(ctx.store.failures, since)
    incidents = await run_in_threadpool(ctx.store.incidents, since)
    chaos: list[ChaosRow] = []
    chaos_error = None
    try:
        chaos = await get_chaos(ctx)
    except HTTPException as exc:  # Temporal does not answer: the rest of the page still can
        chaos_error = str(exc.detail)
    return build_dashboard(
        ctx.catalog,
        live,
        failures,
        incidents,
        chaos,
        chaos_error,
        lambda wid: web_ui_link(ctx, wid),
    )


def _headers(nonce: str | None) -> dict[str, str]:
    # Only the page's own style and script run; the fragment runs nothing. Should escaping
    # ever miss, an injected <script> is still refused by the browser.
    own = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {own}; style-src {own}; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _clock(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%H:%M:%S")


def _stamp(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ms=_ms, clock=_clock, stamp=_stamp)
    return env


def _template() -> Template:
    return _environment().get_template(PAGE)
