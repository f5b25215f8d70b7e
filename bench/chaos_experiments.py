"""The six demo chaos experiments, each run several times through the shipped ChaosExperiment.

Runs the real stack (Temporal dev server, supervisord, HAProxy, Redis, demo services, drc
worker) on the demo catalog with free ports, and starts every experiment of
``runbooks/chaos/`` ``--runs`` times in turn with ``drc chaos run``'s code path
(``start_run``), different seeds. Records each experiment's verdicts and the measured time to
detect and to recover (from the runs' own results). As in bench/detect_restart.py, the
crash-loop and flap limits are raised: back to back, the experiments restart the same replicas
far more often than the demo's limits allow (3 restarts in 5 minutes), and drc would rightly
stop repairing them. The run starts after a warm-up, since latency is judged against a baseline
learned from 20 clean heartbeats of each replica.

    .venv/bin/python bench/chaos_experiments.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.chaos_schedules import start_run  # noqa: E402
from bench.common import percentile, record  # noqa: E402
from drc.catalog_loader import parse_catalog  # noqa: E402
from drc.chaos import ChaosResult  # noqa: E402
from runbooks.chaos import experiment_names  # noqa: E402
from tests.support.stack import healthy_drc, two_region_catalog  # noqa: E402

WARM_UP_S = 10.0
"""Twenty clean heartbeats at 250 ms, twice over: every latency baseline learned."""


async def main(runs: int) -> None:
    results: dict[str, list[ChaosResult]] = {name: [] for name in experiment_names()}
    data = two_region_catalog(return_check_s=1.0).model_dump(mode="json")
    for service in data["services"]:
        service["restart"]["crash_loop_max"] = 10_000
        service["thresholds"]["flap_max_transitions"] = 10_000
    catalog = parse_catalog(data, "<bench catalog>")
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with healthy_drc(Path(home), catalog) as drc:
            await asyncio.sleep(WARM_UP_S)
            for n in range(runs):
                for name in results:
                    handle = await start_run(drc.client, name, "drc", seed=n + 1)
                    result = await handle.result()
                    results[name].append(result)
                    print(
                        f"run {n + 1} {name:<18} {result.verdict:<8} detect "
                        f"{result.time_to_detect_s} s, recover {result.time_to_recover_s} s"
                        + ("" if result.verdict == "passed" else f" ({result.reason})"),
                        flush=True,
                    )
    figures: dict[str, float | int] = {}
    parts = []
    for name, found in results.items():
        passed = [r for r in found if r.verdict == "passed"]
        ttd = [r.time_to_detect_s for r in passed if r.time_to_detect_s is not None]
        ttr = [r.time_to_recover_s for r in passed if r.time_to_recover_s is not None]
        figures[f"{name}_passed"] = len(passed)
        if ttd and ttr:
            figures[f"{name}_detect_p50_s"] = round(percentile(ttd, 50), 3)
            figures[f"{name}_detect_max_s"] = round(max(ttd), 3)
            figures[f"{name}_recover_p50_s"] = round(percentile(ttr, 50), 3)
            figures[f"{name}_recover_max_s"] = round(max(ttr), 3)
            parts.append(
                f"{name} {len(passed)}/{len(found)} passed, detect p50 "
                f"{figures[f'{name}_detect_p50_s']} s max {figures[f'{name}_detect_max_s']} s, "
                f"recover p50 {figures[f'{name}_recover_p50_s']} s max "
                f"{figures[f'{name}_recover_max_s']} s"
            )
        else:
            parts.append(f"{name} {len(passed)}/{len(found)} passed")
    record("chaos_experiments", {"runs": runs}, figures, "chaos_experiments: " + "; ".join(parts))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.runs))
    sys.stdout.flush()
    os._exit(0)  # temporalio 1.35 may crash in interpreter teardown; the results are written
