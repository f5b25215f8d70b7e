"""The dashboard's template on a hand-made snapshot: what each row says, and nothing runs."""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from api.dashboard import build_dashboard, render_fragment, render_page
from api.models import ChaosRow
from api.snapshot import LiveService, Snapshot
from api.views import when
from drc.catalog import Catalog
from drc.fleet import FleetStatus, OpenIncident
from drc.incident import FailureRecord, Incident, IncidentRun
from drc.model import ReplicaState, ReplicaTrack
from drc.names import backend_name, restart_id
from tests.support.supervisor import small_catalog

HOSTILE = "<script>alert('md-b')</script> & <b>bold</b>"
WEB_UI = "http://ui.example:8233/namespaces/default/workflows"


class Rows(HTMLParser):
    """Every ``<tr>``: its attributes and the text of its cells, in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[tuple[dict[str, str], list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append(({k: v or "" for k, v in attrs}, []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def row(self, **attrs: str) -> list[str]:
        """The cells of the one row having ``attrs`` (``data_replica`` for data-replica)."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        found = [c for a, c in self.rows if wanted.items() <= a.items()]
        assert len(found) == 1, (wanted, found)
        return found[0]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return small_catalog(("market-data", "order-gateway"))


def _snapshot(now: float) -> Snapshot:
    fleet = FleetStatus(
        system_health="degraded",
        failure_rate=0.0,
        services=2,
        down=[],
        mode="normal",
        brake_reason="automatic repairs run freely",
        tokens=None,
        waiting=[],
        incidents=[OpenIncident("market-data", "inc-1", "md-b failed: connection refused")],
        notes=[],
        health={"market-data": "degraded", "order-gateway": "up"},
        primaries={"order-gateway": "og-a"},
    )
    live = {
        "market-data": LiveService(
            None,
            False,
            {
                "md-a": ReplicaTrack(state=ReplicaState.HEALTHY, latency_ms=2.5),
                "md-b": ReplicaTrack(
                    state=ReplicaState.FAILED, consecutive_failures=3, last_error=HOSTILE
                ),
            },
        ),
        "order-gateway": LiveService(
            "og-a",
            False,
            {
                "og-a": ReplicaTrack(state=ReplicaState.HEALTHY, latency_ms=1.26),
                "og-b": ReplicaTrack(state=ReplicaState.HEALTHY, latency_ms=0.75),
            },
        ),
    }
    traffic = {
        (backend_name("market-data"), "md-a"): "ready",
        (backend_name("market-data"), "md-b"): "maint",
        (backend_name("order-gateway"), "og-a"): "ready",
        (backend_name("order-gateway"), "og-b"): "ready",  # HAProxy's backup server
    }
    return Snapshot(now, fleet, live, traffic)


def _html(catalog: Catalog) -> str:
    now = time.time()
    failure = FailureRecord(
        "market-data/md-b/replica_failed/1", "market-data", "md-b", "replica_failed", "high",
        f"md-b failed: {HOSTILE}", now - 5, "inc-1",
    )  # fmt: skip
    incident = Incident(
        "inc-1", "market-data", "replica_failed", "high", "md-b failed", now - 6, now - 5,
        replica="md-b", runs=[IncidentRun(restart_id("market-data", "md-b"), None, "restart", now)],
    )  # fmt: skip
    chaos = ChaosRow(
        experiment="primary-crash", schedule="active", paused=False, next_runs=[when(now + 60)],
        runs=4, passed=3, objective_met=3, score=0.75, last_verdict="passed",
        last_reason="recovered after 1.2 s", last_at=when(now - 60),
    )  # fmt: skip
    view = build_dashboard(
        catalog,
        _snapshot(now),
        [failure],
        [incident],
        [chaos],
        None,
        lambda wid: f"{WEB_UI}/{wid.replace('/', '%2F')}",
    )
    return render_page(view, nonce="n0nce")


def test_a_backup_server_shows_as_standby_and_the_primary_as_serving(catalog: Catalog) -> None:
    rows = Rows(_html(catalog))
    og_b = rows.row(data_replica="og-b", data_traffic="standby")
    assert og_b[:5] == ["og-b", "ldn", "healthy", "standby", "standby"], og_b
    og_a = rows.row(data_replica="og-a", data_traffic="serving")
    assert og_a[:5] == ["og-a", "ldn", "healthy", "primary", "serving"], og_a
    assert og_a[5] == "1.3", "latency in ms, one decimal"


def test_a_failed_replica_shows_its_state_and_last_error(catalog: Catalog) -> None:
    html = _html(catalog)
    md_b = Rows(html).row(data_replica="md-b", data_state="failed")
    assert md_b[2] == "failed" and md_b[4] == "maint" and md_b[6] == "3", md_b
    assert md_b[7] == " ".join(HOSTILE.split()), md_b
    assert 'class="badge s-degraded">degraded' in html  # market-data, as the fleet says


def test_text_from_outside_is_escaped_and_only_the_page_script_runs(catalog: Catalog) -> None:
    html = _html(catalog)
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert (
        "&lt;script&gt;alert(&#39;md-b&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    )
    assert html.count("<script") == 1 and '<script nonce="n0nce">' in html


def test_the_page_links_reports_and_runs_and_offers_the_repairs(catalog: Catalog) -> None:
    html = _html(catalog)
    rows = Rows(html)
    failure = rows.row(data_type="replica_failed", data_replica="md-b")
    assert failure[1:5] == ["market-data", "md-b", "replica_failed", "high"], failure
    assert 'href="/incidents/inc-1/report.html"' in html
    assert 'href="/incidents/inc-1/report.md"' in html
    assert f'href="{WEB_UI}/restart%2Fmarket-data%2Fmd-b"' in html
    assert "SYSTEM DEGRADED" in html.upper() and "md-b failed: connection refused" in html
    restarts = html.count('data-action="restart"')
    assert restarts == 4, "one Restart per replica"
    assert html.count('data-action="failover"') == 1, "Failover on active/standby only"
    assert 'data-standbys="og-b"' in html
    assert rows.row(data_experiment="primary-crash")[2:4] == ["3/4", "75 %"]


def test_the_fragment_is_the_live_part_alone(catalog: Catalog) -> None:
    page = _html(catalog)
    now = time.time()
    view = build_dashboard(catalog, _snapshot(now), [], [], [], "Temporal does not answer", str)
    fragment = render_fragment(view)
    assert fragment.lstrip().startswith('<section id="health"')
    assert "<dialog" not in fragment and "<script" not in fragment
    assert "not read: Temporal does not answer" in fragment
    assert "no failure in the last 24 h" in fragment and "no incident in the last 24 h" in fragment
    assert '<main id="live">' in page and "<dialog" in page
