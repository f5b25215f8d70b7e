"""The loss checker: orders flow while the state store's primary (and the order gateway's)
is killed again and again; every acknowledged order must still be readable at the end.

Runs the real stack (Temporal dev server, supervisord, HAProxy, Redis primary/replica, demo
services, drc worker) on free ports with the demo catalog's settings. A client places an
order through the gateway's front end every 10 ms and records every acknowledged id (the
gateway acknowledges only after `WAIT 1`). "Writes accepted again" runs from the kill to the
sending of the first order acknowledged after it; for the state store that includes the
re-protection, since with two Redis servers an order is acknowledged only once the old
primary replicates the new one (WAIT 1). Each state trial SIGKILLs the current Redis
primary and waits until drc has failed over and re-protected (the old primary is a replica
in sync again); gateway trials do the same to the gateway's primary. At the end every
acknowledged order is read back through the front end. The crash-loop and flapping limits
are raised, since the trials fail over far more often than either would allow.

    .venv/bin/python bench/orders_chaos.py [--state-kills 20] [--gateway-kills 5]

With ``--back-to-back N`` it runs the repeated-fault trial instead, with the demo catalog's
own thresholds (flap detection and crash-loop limits as shipped, nothing raised): the
order-state primary is SIGKILLed N times in a row, each time as soon as drc reports the last
failover re-protected (no repair running, no replica left unprotected), without waiting for
lag samples. Every kill must be repaired and no acknowledged order lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, record  # noqa: E402
from tests.support.net import assert_eventually  # noqa: E402
from tests.support.stack import DrcStack, demo_like_catalog, running_drc  # noqa: E402
from tests.test_state_e2e import SERVICES, AckingClient  # noqa: E402


async def settled(stack: DrcStack, service: str, not_primary: str | None) -> str:
    """Every service healthy, no repair running, the state store in sync; ``service``'s primary."""
    status = await stack.status()
    assert all(s.state.value == "healthy" and not s.repairs_running for s in status.values())
    assert [s.state for s in status["order-state"].sync] == ["in_sync"]
    primary = status[service].primary
    assert primary is not None and primary != not_primary, primary
    return primary


async def kill_and_time(
    stack: DrcStack, client: AckingClient, service: str, last: str | None
) -> tuple[str, float]:
    primary = await assert_eventually(lambda: settled(stack, service, last), timeout=120)
    await asyncio.sleep(0.3)
    before = len(client.acked)
    killed = time.time()
    stack.supervisor().signalProcess(primary, "KILL")

    async def writes_again() -> float:
        later = [t for t in client.acked_at[before:] if t > killed]
        assert later, "no order acknowledged since the kill"
        return later[0] - killed

    return primary, await assert_eventually(writes_again, timeout=120, interval=0.01)


async def reprotected(stack: DrcStack, not_primary: str | None) -> str:
    """The order store's new primary once drc re-protected the last failover."""
    status = (await stack.status())["order-state"]
    assert status.primary is not None and status.primary != not_primary, status.primary
    assert not status.repairs_running and status.unprotected is None, status.repairs_running
    assert status.state.value == "healthy", status.state
    return status.primary


async def acked_since(client: AckingClient, before: int, killed: float) -> float:
    """Seconds from the kill to the sending of the first order acknowledged after it."""
    later = [t for t in client.acked_at[before:] if t > killed]
    assert later, "no order acknowledged since the kill"
    return later[0] - killed


async def back_to_back(kills: int) -> None:
    catalog = demo_like_catalog(services=SERVICES)  # the demo's thresholds, nothing raised
    gateway = catalog.service("order-gateway")
    assert gateway is not None and gateway.frontend is not None
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with running_drc(Path(home), catalog) as stack:
            await assert_eventually(lambda: settled(stack, "order-state", None), timeout=120)
            client = AckingClient(f"http://{gateway.frontend}")
            task = asyncio.create_task(client.run())
            await asyncio.sleep(1.0)
            last: str | None = None
            for n in range(1, kills + 1):
                primary = await assert_eventually(
                    partial(reprotected, stack, last), timeout=120, interval=0.02
                )
                before, killed = len(client.acked), time.time()
                stack.supervisor().signalProcess(primary, "KILL")
                took = await assert_eventually(
                    partial(acked_since, client, before, killed), timeout=120, interval=0.01
                )
                times.append(took)
                last = primary
                print(
                    f"kill {n:>3}: {primary}, writes accepted again {took * 1000:7.1f} ms later "
                    f"({len(client.acked)} acknowledged so far)",
                    flush=True,
                )
            await assert_eventually(lambda: reprotected(stack, last), timeout=120)
            decisions = (await stack.status())["order-state"].decisions
            client.running = False
            await task
            lost = await client.lost()
    frozen = sum(1 for d in decisions if d.action == "frozen")
    figures: dict[str, object] = {
        "kills": kills,
        "repaired": len(times),
        "acknowledged": len(client.acked),
        "lost": len(lost),
        "refused": client.refused,
        "writes_again_p50_ms": round(percentile(times, 50) * 1000, 1),
        "writes_again_p99_ms": round(percentile(times, 99) * 1000, 1),
        "writes_again_max_ms": round(max(times) * 1000, 1),
        "freezes_in_last_decisions": frozen,
    }
    line = (
        f"orders_chaos back-to-back: {kills} kills of the order-state primary, each as soon as "
        f"re-protected, demo thresholds: {len(times)} repaired, {len(client.acked)} orders "
        f"acknowledged, {len(lost)} lost; kill->writes accepted again p50 "
        f"{figures['writes_again_p50_ms']} ms p99 {figures['writes_again_p99_ms']} ms max "
        f"{figures['writes_again_max_ms']} ms"
    )
    record("orders_chaos", {"back_to_back": kills}, figures, line)
    if lost:
        print("LOST:", lost[:20], flush=True)


async def main(state_kills: int, gateway_kills: int) -> None:
    catalog = demo_like_catalog(
        restart={"crash_loop_max": 10_000},
        thresholds={"flap_max_transitions": 10_000},
        services=SERVICES,
    )
    gateway = catalog.service("order-gateway")
    assert gateway is not None and gateway.frontend is not None
    times: dict[str, list[float]] = {"order-state": [], "order-gateway": []}
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with running_drc(Path(home), catalog) as stack:
            client = AckingClient(f"http://{gateway.frontend}")
            task = asyncio.create_task(client.run())
            plan = ["order-state"] * state_kills + ["order-gateway"] * gateway_kills
            last: dict[str, str | None] = {"order-state": None, "order-gateway": None}
            for n, service in enumerate(plan, 1):
                last[service], took = await kill_and_time(stack, client, service, last[service])
                times[service].append(took)
                print(
                    f"trial {n:>3} {service}: killed {last[service]}, writes accepted again "
                    f"{took * 1000:7.1f} ms later ({len(client.acked)} acknowledged so far)",
                    flush=True,
                )
            await assert_eventually(lambda: settled(stack, "order-state", None), timeout=120)
            client.running = False
            await task
            lost = await client.lost()
    figures: dict[str, object] = {
        "acknowledged": len(client.acked),
        "lost": len(lost),
        "refused": client.refused,
        "state_failovers": len(times["order-state"]),
        "gateway_failovers": len(times["order-gateway"]),
    }
    for service, values in times.items():
        if values:
            figures[f"{service}_writes_again_p50_ms"] = round(percentile(values, 50) * 1000, 1)
            figures[f"{service}_writes_again_p99_ms"] = round(percentile(values, 99) * 1000, 1)
    line = (
        f"orders_chaos: {figures['acknowledged']} orders acknowledged, {figures['lost']} lost, "
        f"{figures['state_failovers']} state-store failovers (kill->writes accepted again p50 "
        f"{figures.get('order-state_writes_again_p50_ms')} ms p99 "
        f"{figures.get('order-state_writes_again_p99_ms')} ms), "
        f"{figures['gateway_failovers']} gateway failovers (p50 "
        f"{figures.get('order-gateway_writes_again_p50_ms')} ms p99 "
        f"{figures.get('order-gateway_writes_again_p99_ms')} ms), every one re-protected"
    )
    record(
        "orders_chaos", {"state_kills": state_kills, "gateway_kills": gateway_kills}, figures, line
    )
    if lost:
        print("LOST:", lost[:20], flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-kills", type=int, default=20)
    parser.add_argument("--gateway-kills", type=int, default=5)
    parser.add_argument(
        "--back-to-back",
        type=int,
        metavar="N",
        help="kill the order-state primary N times, each as soon as re-protected",
    )
    args = parser.parse_args()
    if args.back_to_back:
        asyncio.run(back_to_back(args.back_to_back))
    else:
        asyncio.run(main(args.state_kills, args.gateway_kills))
    sys.stdout.flush()
    os._exit(0)  # temporalio 1.35 may crash in interpreter teardown; the results are written
