"""Kill-to-detected and kill-to-healthy for self-healing restarts, over many trials.

Runs the real stack (Temporal dev server, supervisord with the demo services, drc worker) on
free ports with the demo catalog's probe settings, then SIGKILLs a replica per trial and reads
the monitor's decisions: the detector's own timestamps of the `failed` and `healthy`
transitions, on the same clock as the kill. The crash-loop limit is raised for the run, since
the benchmark kills the same replicas far more often than a crash loop allows.

Each trial is classed by the repair the monitor chose: a `restart` (the figure the restart
target is about), or a `failover` (an active/standby primary: traffic moves to the standby,
then the killed replica is re-protected as the new standby, so its "healthy again" includes the
whole failover runbook; bench/failover.py measures the traffic side). Figures are given for
restarts, for failovers and for all trials.

    .venv/bin/python bench/detect_restart.py [--trials 20] [--hung]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, record  # noqa: E402
from drc.model import Decision  # noqa: E402
from tests.support.net import assert_eventually  # noqa: E402
from tests.support.stack import DrcStack, demo_like_catalog, running_drc  # noqa: E402


async def one_trial(
    stack: DrcStack, service: str, replica: str, hung: bool
) -> tuple[float, float, str]:
    """Kill (or hang) ``replica``: kill->detected, kill->healthy again, and the repair chosen."""
    await assert_eventually(lambda: _healthy(stack, service, replica), timeout=60)
    pid = stack.pid(replica)
    killed = time.time()
    os.kill(pid, signal.SIGSTOP if hung else signal.SIGKILL)
    failed = await assert_eventually(
        lambda: _transition_after(stack, service, replica, killed, "missed"), timeout=60
    )
    healthy = await assert_eventually(
        lambda: _transition_after(stack, service, replica, failed.at, "answered"), timeout=60
    )
    await assert_eventually(lambda: _all_healthy(stack), timeout=60)  # dependants settle too
    if hung and Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    return failed.at - killed, healthy.at - killed, await _repair_after(stack, service, killed)


async def _repair_after(stack: DrcStack, service: str, after: float) -> str:
    """The repair the monitor started for the kill: ``restart`` or ``failover``."""
    decisions = (await stack.status())[service].decisions
    for d in decisions:
        if d.at > after and d.action in REPAIRS:
            return d.action
    raise AssertionError(f"no repair of {service} after {after}: {decisions[-6:]}")


REPAIRS = ("restart", "failover")


async def _healthy(stack: DrcStack, service: str, replica: str) -> None:
    status = await stack.replica_status(service, replica)
    assert status.state.value == "healthy" and status.consecutive_failures == 0, status


async def _all_healthy(stack: DrcStack) -> None:
    for status in (await stack.status()).values():
        assert status.state.value == "healthy", status


async def _transition_after(
    stack: DrcStack, service: str, replica: str, after: float, words: str
) -> Decision:
    decisions = (await stack.status())[service].decisions
    found = [
        d
        for d in decisions
        if d.replica == replica and d.action == "transition" and d.at > after and words in d.reason
    ]
    assert found, f"no {words!r} transition of {replica} after {after} yet: {decisions[-6:]}"
    return found[0]


async def main(trials: int, hung: bool) -> None:
    catalog = demo_like_catalog(
        restart={"crash_loop_max": 10_000}, thresholds={"flap_max_transitions": 10_000}
    )
    targets = [(s.name, r.name) for s in catalog.services for r in s.replicas]
    detect: list[float] = []
    heal: dict[str, list[float]] = {repair: [] for repair in REPAIRS}
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with running_drc(Path(home), catalog) as stack:
            for i in range(trials):
                service, replica = targets[i % len(targets)]
                d, h, repair = await one_trial(stack, service, replica, hung)
                detect.append(d)
                heal[repair].append(h)
                print(
                    f"trial {i + 1:>3} {replica}: detected {d * 1000:7.1f} ms, "
                    f"healthy {h * 1000:7.1f} ms ({repair})",
                    flush=True,
                )
    probe = catalog.services[0].probe
    series = {
        "detect": detect,
        "healthy": heal["restart"] + heal["failover"],
        "restart_healthy": heal["restart"],
        "failover_healthy": heal["failover"],
    }
    figures: dict[str, float | int] = {
        f"{name}_{stat}_ms": round(fn(values) * 1000, 1)
        for name, values in series.items()
        if values
        for stat, fn in (
            ("p50", lambda v: percentile(v, 50)),
            ("p90", lambda v: percentile(v, 90)),
            ("p99", lambda v: percentile(v, 99)),
            ("max", max),
        )
    }
    figures |= {f"{repair}_trials": len(values) for repair, values in heal.items()}
    kind = "SIGSTOP (hung)" if hung else "SIGKILL"
    line = (
        f"detect_restart {kind} trials={trials} interval={probe.interval_ms}ms "
        f"threshold={probe.failure_threshold}: kill->detected "
        f"{_stats(figures, 'detect')}; kill->healthy, restarts ({len(heal['restart'])}) "
        f"{_stats(figures, 'restart_healthy')}; failover + re-protect "
        f"({len(heal['failover'])}) {_stats(figures, 'failover_healthy')}; all "
        f"{_stats(figures, 'healthy')}"
    )
    params = {"trials": trials, "signal": kind, "probe": probe.model_dump()}
    record("detect_restart", params, figures, line)


def _stats(figures: dict[str, float | int], name: str) -> str:
    if f"{name}_p50_ms" not in figures:
        return "none"
    stats = " ".join(f"{s} {figures[f'{name}_{s}_ms']}" for s in ("p50", "p90", "p99", "max"))
    return f"{stats} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--hung", action="store_true", help="SIGSTOP instead of SIGKILL")
    args = parser.parse_args()
    asyncio.run(main(args.trials, args.hung))
    sys.stdout.flush()
    os._exit(0)  # temporalio 1.35 may crash in interpreter teardown; the results are written
