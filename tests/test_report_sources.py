"""Where a report comes from: histories read through the Temporal client, and the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.reports import compose_report, fetch_history
from drc.incident import Incident, IncidentRun, IncidentUpdate
from drc.store.store import IncidentStore
from tests.support.temporal import DevServer


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    return dev_server


async def test_a_run_whose_history_is_gone_is_reported_missing_and_the_rest_renders(
    env: DevServer, tmp_path: Path
) -> None:
    gone = IncidentRun(
        "failover/order-gateway", "0197aaaa-0000-7000-8000-000000000000", "failover", 100.0
    )
    assert await fetch_history(env.client, gone) is None
    incident = Incident(
        id="order-gateway-19700101T000140Z-dead",
        service="order-gateway",
        type="service_down",
        severity="critical",
        cause="og-a missed 3 heartbeats in a row (last error: connection refused)",
        started_at=100.0,
        detected_at=100.5,
        mitigated_at=101.0,
        resolved_at=104.0,
        status="resolved",
        outcome="order-gateway healthy and redundant again",
        runs=[gone],
        version=1,
    )
    with IncidentStore.open(None, tmp_path) as store:
        store.apply(IncidentUpdate(incident))
        composed = await compose_report(
            env.client, store, incident, "http://127.0.0.1:8233", "default"
        )
    assert len(composed.missing) == 1 and "failover/order-gateway" in composed.missing[0]
    assert "failover/order-gateway" in composed.markdown and composed.rows == 0
    assert "og-a missed 3 heartbeats" in composed.markdown  # the store's record still speaks
