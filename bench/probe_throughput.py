"""How many HTTP heartbeat endpoints one core probes at a fixed interval, and how punctually.

Targets run in a separate process (one listening port per endpoint), so this process only
probes. One task per simulated service ticks with ``ticks(interval)`` and probes that
service's replicas concurrently through one shared ``ProbeEngine``, as ``watch_service`` will.

    .venv/bin/python bench/probe_throughput.py --endpoints 500 --interval 1.0 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.probes import ProbeEngine, ticks  # noqa: E402
from bench.common import machine as common_machine  # noqa: E402
from drc.catalog import Replica  # noqa: E402

RESULTS = ROOT / "bench" / "results"
COLUMNS = (
    "date (UTC)",
    "endpoints",
    "interval s",
    "start",
    "probes/s",
    "failed",
    "CPU % of a core",
    "endpoints/s/core",
    "lateness p50 / p99 / max ms",
    "latency p50 / p99 ms",
    "gc max pause ms",
    "target",
)
HEADER = "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|"
TARGET_LATENESS_P99_MS = 10.0


# --- targets (child process) -----------------------------------------------------------------


def serve(count: int, cpu: int | None, pipe: Connection) -> None:
    """Child process: answer GET /health/heartbeat on ``count`` ports until told to stop."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    raise_fd_limit()
    asyncio.run(_serve(count, pipe))


async def _serve(count: int, pipe: Connection) -> None:
    from aiohttp import web

    async def heartbeat(request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    runner = web.ServerRunner(web.Server(heartbeat), shutdown_timeout=0.1)
    await runner.setup()
    ports = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=1024).start()
        ports.append(sock.getsockname()[1])
    pipe.send(ports)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # any message (or EOF) means stop
    await runner.cleanup()


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- probing (this process) --------------------------------------------------------------------


class GcPauses:
    """Collector pauses in the measuring process: a stopped world makes every tick late."""

    def __init__(self) -> None:
        self.count = 0
        self.total_ms = 0.0
        self.max_ms = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = (time.perf_counter() - self._started) * 1000
        self.count += 1
        self.total_ms += pause
        self.max_ms = max(self.max_ms, pause)

    def reset(self) -> None:
        self.count, self.total_ms, self.max_ms = 0, 0.0, 0.0

    def figures(self) -> dict[str, float]:
        return {
            "collections": self.count,
            "total_ms": round(self.total_ms, 1),
            "max_pause_ms": round(self.max_ms, 3),
        }


@dataclass
class Stats:
    lateness_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    skipped: int = 0
    probes: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def watch(
    engine: ProbeEngine,
    replicas: list[Replica],
    interval: float,
    timeout_ms: int,
    offset: float,
    window: tuple[float, float],
    stats: Stats,
) -> None:
    measure_from, stop_at = window
    async for tick in ticks(interval, offset_s=offset):
        if tick.scheduled >= stop_at:
            return
        results = await asyncio.gather(*(engine.heartbeat(r, timeout_ms) for r in replicas))
        if tick.scheduled < measure_from:
            continue
        stats.lateness_ms.append(tick.lateness_s * 1000)
        stats.skipped += tick.skipped
        for result in results:
            stats.probes += 1
            stats.latency_ms.append(result.latency_ms)
            if not result.ok:
                stats.failed += 1
                stats.errors[result.error or "?"] = stats.errors.get(result.error or "?", 0) + 1


async def measure(ports: list[int], args: argparse.Namespace) -> dict[str, object]:
    replicas = [
        Replica(name=f"r{i}", region="bench", url=f"http://127.0.0.1:{port}")  # type: ignore[arg-type]
        for i, port in enumerate(ports)
    ]
    per = args.replicas_per_service
    services = [replicas[i : i + per] for i in range(0, len(replicas), per)]
    stats = Stats()
    pauses = GcPauses()
    now = time.monotonic()
    window = (now + args.warmup, now + args.warmup + args.seconds)
    async with ProbeEngine() as engine:
        tasks = [
            asyncio.create_task(
                watch(
                    engine,
                    group,
                    args.interval,
                    args.timeout_ms,
                    # Services start at different moments in a real worker; spread them.
                    0.0 if args.no_stagger else args.interval * i / len(services),
                    window,
                    stats,
                )
            )
            for i, group in enumerate(services)
        ]
        await asyncio.sleep(window[0] - time.monotonic())
        if args.gc_freeze:
            # What a worker can do once its probe connections are open: move every object
            # alive now out of the collector's reach, so full collections stay short.
            gc.collect()
            gc.freeze()
        cpu0, wall0 = time.process_time(), time.monotonic()
        pauses.reset()
        await asyncio.gather(*tasks)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return figures(stats, cpu, wall, len(services), args) | {"gc": pauses.figures()}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(
    stats: Stats, cpu: float, wall: float, services: int, args: argparse.Namespace
) -> dict[str, object]:
    cpu_pct = 100 * cpu / wall
    late_p99 = pct(stats.lateness_ms, 0.99)
    return {
        "services": services,
        "probes": stats.probes,
        "probes_per_s": round(stats.probes / args.seconds, 1),
        "expected_probes_per_s": round(args.endpoints / args.interval, 1),
        "failed": stats.failed,
        "errors": stats.errors,
        "skipped_ticks": stats.skipped,
        "cpu_s": round(cpu, 3),
        "cpu_pct_of_core": round(cpu_pct, 1),
        "endpoints_per_s_per_core": round(stats.probes / cpu) if cpu else None,
        "lateness_ms": {
            "p50": round(pct(stats.lateness_ms, 0.5), 3),
            "p99": round(late_p99, 3),
            "max": round(max(stats.lateness_ms, default=float("nan")), 3),
        },
        "latency_ms": {
            "p50": round(pct(stats.latency_ms, 0.5), 3),
            "p99": round(pct(stats.latency_ms, 0.99), 3),
        },
        "target_met": cpu_pct <= 100 and late_p99 <= TARGET_LATENESS_P99_MS and not stats.failed,
    }


# --- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    """bench.common's machine description, under the keys this bench's records have used."""
    import aiohttp

    m = common_machine()  # os.cpu_count(): all CPUs, whatever this process is pinned to
    return {
        "node": m["host"],
        "nproc": m["cpus"],
        "cpu_model": m["cpu"],
        "python": m["python"],
        "aiohttp": aiohttp.__version__,
    }


def one_line(params: dict[str, object], fig: dict[str, object]) -> str:
    late, lat = fig["lateness_ms"], fig["latency_ms"]
    assert isinstance(late, dict) and isinstance(lat, dict)
    return (
        f"probe_throughput endpoints={params['endpoints']} interval={params['interval_s']}s "
        f"services={fig['services']} probes/s={fig['probes_per_s']} failed={fig['failed']} "
        f"cpu={fig['cpu_pct_of_core']}% of a core "
        f"endpoints/s/core={fig['endpoints_per_s_per_core']} "
        f"lateness p50/p99/max={late['p50']}/{late['p99']}/{late['max']} ms "
        f"skipped={fig['skipped_ticks']} latency p50/p99={lat['p50']}/{lat['p99']} ms "
        f"gc max pause={fig['gc']['max_pause_ms']} ms "  # type: ignore[index]
        f"target_met={fig['target_met']}"
    )


def write_results(record: dict[str, object], line: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    jsonl = RESULTS / "probe_throughput.jsonl"
    with jsonl.open("a") as out:
        out.write(json.dumps(record) + "\n")
    history = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    m = record["machine"]
    assert isinstance(m, dict)
    rows = [
        f"| {r['date'][:19]} | {r['params']['endpoints']} | {r['params']['interval_s']} "
        f"| {'staggered' if r['params']['staggered'] else 'all at once'}"
        f"{', gc.freeze' if r['params'].get('gc_freeze') else ''} "
        f"| {r['figures']['probes_per_s']} | {r['figures']['failed']} "
        f"| {r['figures']['cpu_pct_of_core']} | {r['figures']['endpoints_per_s_per_core']} "
        f"| {r['figures']['lateness_ms']['p50']} / {r['figures']['lateness_ms']['p99']} / "
        f"{r['figures']['lateness_ms']['max']} "
        f"| {r['figures']['latency_ms']['p50']} / {r['figures']['latency_ms']['p99']} "
        f"| {r['figures'].get('gc', {}).get('max_pause_ms', '')} "
        f"| {'yes' if r['figures']['target_met'] else 'no'} |"
        for r in history
    ]
    text = (
        f"""# Probe throughput

Latest run ({record["date"]}) on `{m["node"]}`: {m["nproc"]} × {m["cpu_model"]},
Python {m["python"]}, aiohttp {m["aiohttp"]}.

    {line}

Parameters: `{json.dumps(record["params"])}`

Target: ≥ 500 endpoints at a 1 s interval on one core, tick lateness p99 ≤ {
            TARGET_LATENESS_P99_MS
        } ms,
no failed probes. Targets are served by a separate process (one port per endpoint){
            ", pinned to its own CPU" if record["params"].get("pinned") else ""
        }, so CPU figures are the prober's alone (`time.process_time`, all threads).

## All runs (from probe_throughput.jsonl)

{HEADER}
"""
        + "\n".join(rows)
        + "\n"
    )
    (RESULTS / "probe_throughput.md").write_text(text)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=500)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--replicas-per-service", type=int, default=5)
    parser.add_argument("--timeout-ms", type=int, default=500)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    parser.add_argument("--no-stagger", action="store_true", help="start all services at once")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/prober CPUs")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after warmup")
    parser.add_argument("--no-save", action="store_true", help="print only")
    return parser.parse_args()


def main() -> None:
    args = parse()
    host = machine()
    raise_fd_limit()
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    server = ctx.Process(target=serve, args=(args.endpoints, cpus[-1] if pin else None, theirs))
    server.start()
    try:
        ports = ours.recv()
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        fig = asyncio.run(measure(ports, args))
    finally:
        ours.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    params = {
        "endpoints": args.endpoints,
        "interval_s": args.interval,
        "seconds": args.seconds,
        "replicas_per_service": args.replicas_per_service,
        "timeout_ms": args.timeout_ms,
        "warmup_s": args.warmup,
        "staggered": not args.no_stagger,
        "pinned": pin,
        "gc_freeze": args.gc_freeze,
    }
    line = one_line(params, fig)
    print(line)
    if not args.no_save:
        record = {
            "bench": "probe_throughput",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": host,
            "params": params,
            "figures": fig,
        }
        write_results(record, line)


if __name__ == "__main__":
    main()
