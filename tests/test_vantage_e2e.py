"""Quorum of vantage points end to end, with real network cuts (iptables on loopback).

drc's own watch probes from 127.0.0.11 (vantage point ldn); a ``drc worker --region nyc``
probes from 127.0.0.12. Cutting ldn alone from a healthy primary is a partition: raised, no
failover. Cutting both is an outage: failed over.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drc.catalog import Catalog
from drc.catalog_loader import parse_catalog
from drc.model import ServiceState
from tests.support.net import assert_eventually
from tests.support.netcut import netcut
from tests.support.stack import DrcStack, demo_like_catalog, running_drc

pytestmark = pytest.mark.integration

SERVICE = "order-gateway"
LDN, NYC = "127.0.0.11", "127.0.0.12"


def _catalog() -> Catalog:
    catalog = demo_like_catalog(services=(SERVICE,))
    data: dict[str, Any] = catalog.model_dump(mode="json")
    data["vantage_points"] = [
        {"name": "ldn", "source_address": LDN},
        {"name": "nyc", "source_address": NYC},
    ]
    data["watch_from"] = "ldn"
    return parse_catalog(data, "<vantage catalog>")


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path, _catalog()) as stack:
        nyc = stack.spawn_worker("worker-nyc", region="nyc")
        try:
            await assert_eventually(lambda: _healthy(stack), timeout=60)
            yield stack
        finally:
            nyc.stop()


async def _healthy(stack: DrcStack) -> None:
    status = (await stack.status())[SERVICE]
    assert status.state is ServiceState.HEALTHY and status.primary == "og-a", status


async def _decision(stack: DrcStack, action: str) -> str:
    decisions = (await stack.status())[SERVICE].decisions
    found = [d.reason for d in decisions if d.action == action]
    assert found, [(d.action, d.reason[:60]) for d in decisions]
    return found[-1]


async def test_a_cut_from_one_vantage_point_is_a_partition_and_from_all_an_outage(
    drc: DrcStack,
) -> None:
    og_a = drc.catalog.service(SERVICE).replica("og-a")  # type: ignore[union-attr]
    assert og_a is not None and og_a.url.port is not None
    with netcut() as cuts:
        cuts.cut(LDN, og_a.url.port)  # drc's own watch loses og-a; nyc still sees it
        reason = await assert_eventually(lambda: _decision(drc, "partitioned"), timeout=60)
        assert reason.startswith("og-a is partitioned, not down: down from ldn; up from nyc")
        status = (await drc.status())[SERVICE]
        assert status.primary == "og-a" and not status.repairs_running, status
        assert not [d for d in status.decisions if d.action.startswith("failover")]
        outbox = (drc.home / "notifications.jsonl").read_text().splitlines()
        assert any(json.loads(line)["kind"] == "partitioned" for line in outbox)

        cuts.cut(NYC, og_a.url.port)  # now nobody reaches og-a: objectively down
        done = await assert_eventually(lambda: _decision(drc, "failover-done"), timeout=60)
        quorum = await _decision(drc, "objectively-down")
        assert quorum.startswith("og-a is down from 2 of 2 vantage points (quorum 2)"), quorum
        assert "runbook failover succeeded" in done
        assert (await drc.status())[SERVICE].primary == "og-b"


async def test_a_cut_from_the_watch_plus_its_regions_silent_vantage_point_is_an_outage(
    tmp_path: Path,
) -> None:
    # og-a lives in ldn. drc's watch probes from nyc; ldn's own vantage point is a region
    # worker. A cut from nyc alone is a partition (ldn still sees og-a). Once ldn's probe
    # workers are gone too, as with the region, its silence counts down: failed over.
    data: dict[str, Any] = _catalog().model_dump(mode="json")
    data["watch_from"] = "nyc"
    catalog = parse_catalog(data, "<vantage catalog, watched from nyc>")
    async with running_drc(tmp_path, catalog) as drc:
        ldn = drc.spawn_worker("worker-ldn", region="ldn")
        try:
            await assert_eventually(lambda: _healthy(drc), timeout=60)
            og_a = drc.catalog.service(SERVICE).replica("og-a")  # type: ignore[union-attr]
            assert og_a is not None and og_a.url.port is not None and og_a.region == "ldn"
            with netcut() as cuts:
                cuts.cut(NYC, og_a.url.port)
                reason = await assert_eventually(lambda: _decision(drc, "partitioned"), timeout=60)
                assert reason.startswith(
                    "og-a is partitioned, not down: down from nyc; up from ldn"
                )
                assert (await drc.status())[SERVICE].primary == "og-a"

                ldn.stop()  # ldn's probe workers are gone
                done = await assert_eventually(lambda: _decision(drc, "failover-done"), timeout=60)
                quorum = await _decision(drc, "objectively-down")
                assert quorum.startswith(
                    "og-a is down from every vantage point that answers and its own region's "
                    "(ldn) is silent"
                ), quorum
                assert "runbook failover succeeded" in done
                assert (await drc.status())[SERVICE].primary == "og-b"
        finally:
            ldn.stop()
