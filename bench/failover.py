"""Kill-to-traffic-restored for active/standby failover, and failed client requests per failover.

Runs the real stack (Temporal dev server, supervisord, HAProxy, demo services, drc worker) on
free ports with the demo catalog's settings. A client sends orders through the order
gateway's HAProxy front end every 10 ms; each trial SIGKILLs the current primary, and measures
from the kill to the first order accepted by the new primary, and counts the requests that
failed in between. Before the next trial drc must have re-protected the old primary. The
crash-loop and flapping limits are raised, since the trials fail over far more often than
either would allow.

    .venv/bin/python bench/failover.py [--trials 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, record  # noqa: E402
from tests.support.net import assert_eventually  # noqa: E402
from tests.support.stack import DrcStack, demo_like_catalog, running_drc  # noqa: E402
from tests.test_failover_e2e import OrderClient  # noqa: E402

SERVICE = "order-gateway"


async def settled(stack: DrcStack, not_primary: str | None) -> str:
    """Wait until the service is healthy, no repair runs, and ``not_primary`` (the replica
    killed last) is no longer the primary; return the primary."""
    status = (await stack.status())[SERVICE]
    assert status.state.value == "healthy" and not status.repairs_running, status
    assert status.primary is not None and status.primary != not_primary, status.primary
    assert all(r.state.value == "healthy" for r in status.replicas), status.replicas
    assert all(r.traffic in ("ready", "drain") for r in status.replicas), status.replicas
    return status.primary


async def trial(
    stack: DrcStack, client: OrderClient, last_killed: str | None
) -> tuple[str, float, int]:
    primary = await assert_eventually(lambda: settled(stack, last_killed), timeout=90)
    await asyncio.sleep(0.5)
    start = len(client.results)
    killed = time.time()
    stack.supervisor().signalProcess(primary, "KILL")

    async def restored() -> tuple[float, int]:
        after = client.results[start:]
        ok = [t for t, status, gateway in after if status == 201 and gateway != primary]
        assert ok, "no order accepted by the new primary yet"
        failed = sum(1 for t, status, _ in after if status != 201 and t <= ok[0])
        return ok[0] - killed, failed

    took, failed = await assert_eventually(restored, timeout=60, interval=0.01)
    return primary, took, failed


async def main(trials: int) -> None:
    catalog = demo_like_catalog(
        restart={"crash_loop_max": 10_000}, thresholds={"flap_max_transitions": 10_000}
    )
    service = catalog.service(SERVICE)
    assert service is not None and service.frontend is not None
    times: list[float] = []
    failures: list[int] = []
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with running_drc(Path(home), catalog) as stack:
            client = OrderClient(f"http://{service.frontend}/orders", interval=0.01)
            client_task = asyncio.create_task(client.run())
            killed: str | None = None
            for n in range(trials):
                killed, took, failed = await trial(stack, client, killed)
                times.append(took)
                failures.append(failed)
                print(
                    f"trial {n + 1:>3}: traffic restored {took * 1000:7.1f} ms after the "
                    f"kill, {failed} failed requests",
                    flush=True,
                )
            await assert_eventually(lambda: settled(stack, killed), timeout=90)
            client.running = False
            await client_task
    figures = {
        "restored_p50_ms": round(percentile(times, 50) * 1000, 1),
        "restored_p99_ms": round(percentile(times, 99) * 1000, 1),
        "restored_max_ms": round(max(times) * 1000, 1),
        "failed_requests_mean": round(sum(failures) / len(failures), 2),
        "failed_requests_max": max(failures),
        "orders_sent": len(client.results),
    }
    probe = service.probe
    line = (
        f"failover trials={trials} interval={probe.interval_ms}ms "
        f"threshold={probe.failure_threshold}: kill->traffic restored p50 "
        f"{figures['restored_p50_ms']} ms p99 {figures['restored_p99_ms']} ms max "
        f"{figures['restored_max_ms']} ms; failed requests per failover mean "
        f"{figures['failed_requests_mean']} max {figures['failed_requests_max']} "
        f"(client every 10 ms)"
    )
    record("failover", {"trials": trials, "probe": probe.model_dump()}, figures, line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.trials))
    sys.stdout.flush()
    os._exit(0)  # temporalio 1.35 may crash in interpreter teardown; the results are written
