"""Region-kill to every front end serving again, through drc's region evacuation.

Runs the real stack (Temporal dev server, supervisord, HAProxy, Redis, demo services, drc
worker) on free ports with the demo catalog itself (two regions): every ``-a``
replica in ldn, the others in nyc, order-state with a third replica (redis-c) in nyc. A client
sends orders through the order gateway's front end every 10 ms. Each trial kills every
process of ldn at once and keeps them from starting (the region is gone), and measures from
the kill to the first order accepted through the front end by the gateway in nyc (an order
needs market-data, risk-engine and order-state answering: every front end serves) and to
market-data's front end answering; then ldn returns, the evacuation re-protects it, and an
operator's switchover puts the primaries back in ldn for the next trial.

    .venv/bin/python bench/region_evacuation.py [--trials 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, record  # noqa: E402
from drc.evacuation import EvacuationResult  # noqa: E402
from drc.names import evacuation_id, monitor_id  # noqa: E402
from drc.operator import FailoverRequest  # noqa: E402
from tests.support.net import assert_eventually  # noqa: E402
from tests.support.stack import DrcStack, all_healthy, running_drc, two_region_catalog  # noqa: E402
from tests.test_failover_e2e import OrderClient  # noqa: E402

LDN = ("md-a", "re-a", "redis-a", "og-a")
BACK_IN_LDN = {"order-state": "redis-a", "order-gateway": "og-a"}


async def primaries_in_ldn(stack: DrcStack) -> None:
    """Healthy everywhere, nothing running, and the primaries in ldn (switched over if not)."""
    await all_healthy(stack)
    status = await stack.status()
    for service, primary in BACK_IN_LDN.items():
        assert not status[service].repairs_running, status[service].repairs_running
        if status[service].primary != primary:
            handle = stack.client.get_workflow_handle(monitor_id(service))
            request = FailoverRequest(to=primary, reason="bench: primaries back in ldn")
            await handle.execute_update("failover", request, result_type=str)
            raise AssertionError(f"switching {service} back to {primary}")


async def trial(stack: DrcStack, client: OrderClient, md_url: str) -> tuple[float, float]:
    await assert_eventually(lambda: primaries_in_ldn(stack), timeout=120, interval=0.5)
    await asyncio.sleep(1.0)
    for replica in LDN:
        stack.platform.marker(replica).touch()
    start = len(client.results)
    killed = time.time()
    for replica in LDN:
        stack.supervisor().signalProcess(replica, "KILL")

    async def md_serving(http: httpx.AsyncClient) -> float:
        resp = await http.get(md_url)
        assert resp.status_code == 200, resp.status_code
        return time.time() - killed

    async def orders_served() -> float:
        after = client.results[start:]
        ok = [t for t, status, gateway in after if status == 201 and gateway == "og-b"]
        assert ok, "no order taken in nyc yet"
        return ok[0] - killed

    async with httpx.AsyncClient(timeout=0.5) as http:
        await asyncio.sleep(0.3)  # past HAProxy's own view of md-a
        md = await assert_eventually(lambda: md_serving(http), timeout=60, interval=0.01)
    orders = await assert_eventually(orders_served, timeout=60, interval=0.01)
    for replica in LDN:
        stack.platform.marker(replica).unlink()
    handle = stack.client.get_workflow_handle(evacuation_id("ldn"), result_type=EvacuationResult)
    result = await asyncio.wait_for(handle.result(), timeout=180)
    assert result.returned_at is not None, result
    return orders, md


async def main(trials: int) -> None:
    catalog = two_region_catalog(return_check_s=1.0)
    gateway, market = catalog.service("order-gateway"), catalog.service("market-data")
    assert gateway is not None and gateway.frontend is not None
    assert market is not None and market.frontend is not None
    md_url = f"http://{market.frontend}/health/heartbeat"
    orders: list[float] = []
    quotes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with running_drc(Path(home), catalog) as stack:
            client = OrderClient(f"http://{gateway.frontend}/orders", interval=0.01)
            client_task = asyncio.create_task(client.run())
            for n in range(trials):
                took, md = await trial(stack, client, md_url)
                orders.append(took)
                quotes.append(md)
                print(
                    f"trial {n + 1:>3}: orders taken in nyc {took * 1000:7.1f} ms, market-data "
                    f"front end {md * 1000:7.1f} ms after ldn was killed",
                    flush=True,
                )
            client.running = False
            await client_task
    figures = {
        "orders_p50_ms": round(percentile(orders, 50) * 1000, 1),
        "orders_p99_ms": round(percentile(orders, 99) * 1000, 1),
        "orders_max_ms": round(max(orders) * 1000, 1),
        "market_data_p99_ms": round(percentile(quotes, 99) * 1000, 1),
    }
    probe = gateway.probe
    line = (
        f"region_evacuation trials={trials} interval={probe.interval_ms}ms: region kill -> every "
        f"front end serving (orders taken in nyc) p50 {figures['orders_p50_ms']} ms p99 "
        f"{figures['orders_p99_ms']} ms max {figures['orders_max_ms']} ms; market-data front "
        f"end p99 {figures['market_data_p99_ms']} ms (goal p99 <= 2 s)"
    )
    record("region_evacuation", {"trials": trials, "probe": probe.model_dump()}, figures, line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.trials))
    sys.stdout.flush()
    os._exit(0)  # temporalio 1.35 may crash in interpreter teardown; the results are written
