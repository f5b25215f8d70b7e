"""The shipped drc worker at scale: N HTTP services on the embedded Temporal dev server.

What runs is what a user runs: the Temporal dev server started as drc starts it
(``workers.devstack.start_temporal``, SQLite in WAL mode, drc's search attributes), and the
real ``drc worker`` process (``python -m workers.cli worker``, this checkout's code) with a
generated catalog of ``--services`` services of ``--replicas`` replicas (default 1), probed
every ``--interval-ms``. Each replica is a heartbeat endpoint on its own port, served by a
separate process (pinned to one CPU) that records the arrival time of every probe:
everything below is measured from the outside, from those arrivals, ``/proc`` and the
Temporal server, never from drc's own figures.

Figures:

- **time to watched**: from the worker's spawn until every endpoint receives probes at the
  interval (no gap above 1.5 intervals since, at least 3 probes); then **time to healthy**:
  until every monitor's ``status`` query (``workers.status.read_status``) says healthy.
- **CPU** of the worker's and of the Temporal server's process trees, as % of one core over
  the steady window: utime+stime from ``/proc/<pid>/stat`` before and after (CPU seconds
  consumed, which a noisy shared machine disturbs far less than wall-clock figures). The
  server's busiest RPCs and persistence operations per second come from its own Prometheus
  counters (the dev server serves them on a port of its choosing).
- **tick lateness** p50/p99, from the arrivals in the steady window (CLOCK_MONOTONIC, shared
  by every process). Per endpoint, the arrivals are cut into runs (a gap under 0.5 or over
  1.5 intervals ends one: a restarted watch, a lost tick, or one more than half an interval
  late). Within a run the ticker is drift-free, so arrival j belongs to tick
  k_j = round((a_j - a_0) / interval) and lies d_j = a_j - a_0 - k_j * interval off the grid.
  Nothing arrives before its tick, so the schedule is at or before the earliest arrival
  relative to it: each arrival is anchored at the smallest d among its neighbours, and its
  lateness is d_j minus that anchor. The neighbours are the 30 arrivals up to it and the 30
  from it on, each side giving a minimum, and the later of the two minima is the anchor
  (one side only within 3 arrivals of a run's end): a watch restarted on a new phase inside
  a run is then a new schedule, not lateness. This is a lower-bound-anchored estimate: it
  leaves out what every tick nearby shares (at least the probe's own transit, ~0.3 ms here;
  and a lateness lasting more than 30 ticks), and counts the rest (the watch's scheduling
  delay, the probe's queueing in the worker, the target's delay in reading it). A tick with
  no probe within half an interval (lost, or later than that) is ranked at half an
  interval, so p99 stays a lower bound and is not flattered by ticks that never came; the
  count is reported as ``off_schedule``.
- **history events per monitor-hour**: the sum of every ``monitor/*`` workflow's history
  length (``describe()``) at the end minus at the start of the steady window, divided by
  monitors × hours. The watch returns to its workflow every ``watch_max_duration_s``
  (1800 s), so a window shorter than that may see none of those returns.
- **takeover** (``--takeover``): a second worker joins after the steady window, the first is
  SIGKILLed, and the longest gap between two probes of any endpoint across the kill is how
  long the dead worker's watches went unwatched before the other worker took them over.

    .venv/bin/python bench/worker_scale.py --takeover     # 1,000 services at 1 s, 5 minutes
    .venv/bin/python bench/worker_scale.py --services 200 --minutes 3 --no-save
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile, record  # noqa: E402
from drc.catalog import Catalog  # noqa: E402
from drc.catalog_loader import parse_catalog  # noqa: E402
from drc.names import monitor_id  # noqa: E402
from drc.settings import Settings  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from workers.connect import connect  # noqa: E402
from workers.devstack import Child, spawn, start_temporal, wait_temporal_ready  # noqa: E402
from workers.status import read_status  # noqa: E402

TARGET_CPU_PCT = 60.0
TARGET_LATENESS_P99_MS = 10.0
TARGET_TAKEOVER_S = 10.0
REGULAR = 1.5  # a gap above this many intervals: a tick lost, or more than half an interval late
ANCHOR_WINDOW = 30  # ticks each side of an arrival that its schedule is judged from
EDGE = 3  # so many arrivals at least on a side before that side is trusted
MIN_REGULAR_PROBES = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEARTBEAT_PATH = "/health/heartbeat"  # the catalog's default heartbeat_path


# --- targets (child process) -----------------------------------------------------------------


def serve_targets(count: int, interval_s: float, cpu: int | None, pipe: Connection) -> None:
    """Child process: one heartbeat endpoint per port, recording every probe's arrival."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    raise_fd_limit()
    asyncio.run(_serve(count, interval_s, pipe))


async def _serve(count: int, interval_s: float, pipe: Connection) -> None:
    from aiohttp import web

    # time.monotonic is CLOCK_MONOTONIC, system-wide on Linux: the parent reads the same clock.
    clock = time.monotonic
    arrivals = [array("d") for _ in range(count)]
    last = [0.0] * count
    regular_since = [0.0] * count
    regular_count = [0] * count
    index: dict[int, int] = {}
    max_gap = REGULAR * interval_s

    async def heartbeat(request: web.BaseRequest) -> web.Response:
        now = clock()
        transport = request.transport
        # The watch's /health every `health_every` ticks is not the schedule: heartbeats only.
        if transport is not None and request.raw_path == HEARTBEAT_PATH:
            i = index[transport.get_extra_info("sockname")[1]]
            arrivals[i].append(now)
            if now - last[i] > max_gap:
                regular_since[i], regular_count[i] = now, 0
            regular_count[i] += 1
            last[i] = now
        return web.Response(text="ok")

    runner = web.ServerRunner(web.Server(heartbeat), shutdown_timeout=0.1)
    await runner.setup()
    ports = []
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=1024).start()
        port = sock.getsockname()[1]
        index[port] = i
        ports.append(port)
    pipe.send(ports)
    loop = asyncio.get_running_loop()
    while True:
        try:
            request = await loop.run_in_executor(None, pipe.recv)
        except EOFError:
            break
        match request:
            case ("snapshot",):
                pipe.send((clock(), last, regular_since, regular_count))
            case ("arrivals", float(start), float(end)):
                pipe.send([array("d", (t for t in a if start <= t <= end)) for a in arrivals])
            case _:
                break
    await runner.cleanup()


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Targets:
    """The parent's handle on the target process."""

    def __init__(self, count: int, interval_s: float, pin: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.cpu = cpus[-1] if pin and len(cpus) > 1 else None
        ctx = mp.get_context("spawn")
        self._pipe, theirs = ctx.Pipe()
        self._proc = ctx.Process(
            target=serve_targets, args=(count, interval_s, self.cpu, theirs), daemon=True
        )
        self._proc.start()
        self.ports: list[int] = self._pipe.recv()
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    async def _ask(self, message: tuple[Any, ...]) -> Any:
        async with self._lock:
            return await asyncio.to_thread(self._roundtrip, message)

    def _roundtrip(self, message: tuple[Any, ...]) -> Any:
        self._pipe.send(message)
        return self._pipe.recv()

    async def watched(self, interval_s: float, after: float = 0.0) -> float | None:
        """Since when every endpoint receives probes at the interval (all after ``after``)."""
        now, last, since, count = await self._ask(("snapshot",))
        fresh = all(now - t <= REGULAR * interval_s for t in last)
        regular = all(c >= MIN_REGULAR_PROBES for c in count)
        latest = max(since)
        if fresh and regular and min(last) > after:
            return latest
        return None

    async def arrivals(self, start: float, end: float) -> list[array[float]]:
        return await self._ask(("arrivals", float(start), float(end)))  # type: ignore[no-any-return]

    def stop(self) -> None:
        try:
            self._pipe.send(("stop",))
        except OSError:
            pass
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()


# --- measuring -------------------------------------------------------------------------------


def tree_cpu_s(root: int) -> float:
    """utime + stime of ``root`` and every live descendant, in seconds."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in stats.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(stats[pid][1] for pid in tree if pid in stats)


def lateness_ms(arrivals: list[array[float]], interval_s: float) -> tuple[list[float], int]:
    """Estimated lateness of every arrival on schedule (see the module docstring); run count."""
    out: list[float] = []
    runs = 0
    for times in arrivals:
        for run in _runs(times, interval_s):
            if len(run) < 2:
                continue  # alone between two irregular gaps: counted by off_schedule
            runs += 1
            out.extend(_run_lateness(run, interval_s))
    return out, runs


def _runs(times: array[float], interval_s: float) -> list[list[float]]:
    """Split at every gap under 0.5 or over 1.5 intervals: a restarted watch or a lost tick."""
    runs: list[list[float]] = []
    for t in times:
        if runs and 0.5 * interval_s <= t - runs[-1][-1] <= REGULAR * interval_s:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _run_lateness(run: list[float], interval_s: float) -> list[float]:
    a0 = run[0]
    offsets = [a - a0 - round((a - a0) / interval_s) * interval_s for a in run]
    if len(offsets) < 2 * EDGE:
        anchors = [min(offsets)] * len(offsets)
    else:
        before = _sliding_min(offsets, ANCHOR_WINDOW)
        after = _sliding_min(offsets[::-1], ANCHOR_WINDOW)[::-1]
        last = len(offsets) - EDGE
        anchors = [
            a if j < EDGE else b if j >= last else max(a, b)
            for j, (b, a) in enumerate(zip(before, after, strict=True))
        ]
    return [(d - anchor) * 1000 for d, anchor in zip(offsets, anchors, strict=True)]


def _sliding_min(values: list[float], width: int) -> list[float]:
    """For each i, min(values[i - width + 1 : i + 1])."""
    out: list[float] = []
    window: deque[int] = deque()  # indices whose values increase
    for i, v in enumerate(values):
        while window and values[window[-1]] >= v:
            window.pop()
        window.append(i)
        if window[0] <= i - width:
            window.popleft()
        out.append(values[window[0]])
    return out


def off_schedule(arrivals: list[array[float]], interval_s: float) -> int:
    """Ticks with no probe within half an interval of them: lost, or later than that."""
    missed = 0
    for times in arrivals:
        for a, b in zip(times, times[1:], strict=False):
            if b - a > REGULAR * interval_s:
                missed += round((b - a) / interval_s) - 1
    return missed


def takeover_gaps(arrivals: list[array[float]], killed: float) -> list[float]:
    """Per endpoint, the longest gap between two probes from its last one before ``killed``."""
    gaps = []
    for times in arrivals:
        before = [t for t in times if t <= killed]
        after = [t for t in times if t > killed]
        if not before or not after:
            gaps.append(float("inf"))
            continue
        seq = [before[-1], *after]
        gaps.append(max(b - a for a, b in zip(seq, seq[1:], strict=False)))
    return gaps


async def history_lengths(settings: Settings, names: list[str]) -> dict[str, tuple[str, int]]:
    """Each monitor's current run id and history length."""
    client = await connect(settings)
    limit = asyncio.Semaphore(16)

    async def one(name: str) -> tuple[str, tuple[str, int]]:
        async with limit:
            desc = await client.get_workflow_handle(monitor_id(name)).describe()
        return name, (desc.run_id or "", int(desc.history_length))

    return dict(await asyncio.gather(*(one(n) for n in names)))


def listening_ports(pid: int) -> list[int]:
    """TCP ports ``pid`` listens on (its socket inodes matched against /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own server
        return str(response.read().decode())


async def metrics_url(pid: int) -> str | None:
    """The dev server's Prometheus endpoint: it listens on a port of its own choosing."""
    for port in listening_ports(pid):
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            text = await asyncio.to_thread(_get, url)
        except (OSError, ValueError):
            continue
        if text.startswith("# HELP"):
            return url
    return None


async def counters(url: str | None) -> dict[tuple[str, str, str], float]:
    """(metric, service, operation) -> count, for the server's requests and DB operations."""
    if url is None:
        return {}
    out: dict[tuple[str, str, str], float] = {}
    for line in (await asyncio.to_thread(_get, url)).splitlines():
        name, _, rest = line.partition("{")
        if name not in ("service_requests", "persistence_requests"):
            continue
        labels, _, value = rest.rpartition("} ")
        found = dict(part.split("=", 1) for part in labels.split(","))
        key = (name, found["service_name"].strip('"'), found["operation"].strip('"'))
        out[key] = out.get(key, 0.0) + float(value)
    return out


def rates(
    before: dict[tuple[str, str, str], float],
    after: dict[tuple[str, str, str], float],
    seconds: float,
    top: int = 6,
) -> dict[str, dict[str, float]]:
    """Per second, the busiest frontend RPCs and persistence operations over the window."""
    out: dict[str, dict[str, float]] = {"rpc_per_s": {}, "db_per_s": {}}
    for (name, service, op), count in sorted(
        after.items(), key=lambda kv: before.get(kv[0], 0.0) - kv[1]
    ):
        rate = (count - before.get((name, service, op), 0.0)) / seconds
        if name == "service_requests" and service == "frontend":
            table = out["rpc_per_s"]
        elif name == "persistence_requests":
            table, op = out["db_per_s"], f"{service}.{op}"
        else:
            continue
        if rate > 0 and len(table) < top:
            table[op] = round(rate, 1)
    return out


async def unhealthy(settings: Settings, catalog: Catalog, chunk: int = 100) -> list[str]:
    """Services whose monitor does not report healthy (read through ``workers.status``)."""
    client = await connect(settings)
    parts = [
        catalog.model_copy(update={"services": catalog.services[i : i + chunk]})
        for i in range(0, len(catalog.services), chunk)
    ]
    results = await asyncio.gather(*(read_status(client, part) for part in parts))
    bad = []
    for entry in (e for result in results for e in result):
        if isinstance(entry, str):  # no monitor answered: the sentence says why
            bad.append(entry)
        elif entry.state.value != "healthy":
            bad.append(f"{entry.name}: {entry.state.value}")
    return bad


async def wait_until(what: str, check: Any, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:g} s")
        await asyncio.sleep(every)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Stack:
    home: Path
    settings: Settings
    catalog: Catalog
    temporal: Child
    targets: Targets

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            # The worker runs this checkout's code, as the bench does.
            "PYTHONPATH": str(ROOT),
            "DRC_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "DRC_CATALOG": str(self.settings.catalog),
            "DRC_HOME": str(self.home),
        }

    def start_worker(self, name: str) -> Child:
        argv = [sys.executable, "-m", "workers.cli", "worker"]
        return spawn(name, argv, self.home / "logs", env=self.env())


def write_catalog(
    path: Path, ports: list[int], per_service: int, interval_ms: int, timeout_ms: int
) -> Catalog:
    """One service per ``per_service`` consecutive endpoints, one replica per endpoint."""
    data = {
        "services": [
            {
                "name": f"svc-{i:05d}",
                "group": "bench",
                "redundancy": "single" if per_service == 1 else "active-active",
                "replicas": [
                    {"name": f"r{i:05d}-{j}", "region": "bench", "url": f"http://127.0.0.1:{port}"}
                    for j, port in enumerate(ports[i * per_service : (i + 1) * per_service])
                ],
                "probe": {"interval_ms": interval_ms, "timeout_ms": timeout_ms},
            }
            for i in range(len(ports) // per_service)
        ]
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return parse_catalog(data, str(path))


async def ramp(
    stack: Stack, worker: Child, started: float, interval_s: float, timeout: float
) -> dict[str, Any]:
    async def watched() -> float | None:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"the worker exited; see {worker.log}")
        return await stack.targets.watched(interval_s, after=started)

    since = await wait_until("every endpoint probed at the interval", watched, timeout)
    watched_s = since - started
    names_bad: list[str] = []

    async def healthy() -> bool:
        names_bad[:] = await unhealthy(stack.settings, stack.catalog)
        return not names_bad

    try:
        await wait_until("every monitor healthy", healthy, timeout)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; still: {names_bad[:5]}") from None
    return {"watched_s": round(watched_s, 2), "healthy_s": round(time.monotonic() - started, 2)}


async def steady(
    stack: Stack, worker: Child, interval_s: float, seconds: float, dump: Path | None
) -> dict[str, Any]:
    names = [s.name for s in stack.catalog.services]
    hist0, h0 = await history_lengths(stack.settings, names), time.monotonic()
    metrics = await metrics_url(stack.temporal.proc.pid)
    m0 = await counters(metrics)
    w0, t0, g0 = (
        tree_cpu_s(p) for p in (worker.proc.pid, stack.temporal.proc.pid, stack.targets.pid)
    )
    c0 = time.monotonic()
    await asyncio.sleep(seconds)
    w1, t1, g1 = (
        tree_cpu_s(p) for p in (worker.proc.pid, stack.temporal.proc.pid, stack.targets.pid)
    )
    c1 = time.monotonic()
    m1 = await counters(metrics)
    hist1, h1 = await history_lengths(stack.settings, names), time.monotonic()
    if worker.proc.poll() is not None:
        raise RuntimeError(f"the worker exited during the window; see {worker.log}")
    wall = c1 - c0
    arrivals = await stack.targets.arrivals(c0, c1)
    if dump is not None:
        dump.write_text(json.dumps({"window": [c0, c1], "arrivals": [list(a) for a in arrivals]}))
    late, runs = lateness_ms(arrivals, interval_s)
    off = off_schedule(arrivals, interval_s)
    # A tick lost or more than half an interval late is at least that late: rank it so.
    ranked = late + [interval_s * 500] * off
    received = sum(len(a) for a in arrivals)
    new_runs = sum(1 for n in names if hist1[n][0] != hist0[n][0])
    events = sum(hist1[n][1] for n in names) - sum(
        hist0[n][1] for n in names if hist1[n][0] == hist0[n][0]
    )
    hours = (h1 - h0) / 3600
    worker_pct, temporal_pct = 100 * (w1 - w0) / wall, 100 * (t1 - t0) / wall
    return {
        "window_s": round(wall, 1),
        "cpu_pct": {
            "worker": round(worker_pct, 1),
            "temporal": round(temporal_pct, 1),
            "sum": round(worker_pct + temporal_pct, 1),
            "targets": round(100 * (g1 - g0) / wall, 1),
        },
        "cpu_s": {"worker": round(w1 - w0, 2), "temporal": round(t1 - t0, 2)},
        "lateness_ms": {
            "p50": round(percentile(ranked, 50), 2),
            "p99": round(percentile(ranked, 99), 2),
            "max_on_schedule": round(max(late), 2),
        },
        "probes": {
            "received": received,
            "expected": round(len(arrivals) * wall / interval_s),
            "off_schedule": off,
            "schedule_runs": runs,
        },
        "history": {
            "events": events,
            "per_monitor_hour": round(events / (len(names) * hours), 2),
            "new_runs": new_runs,
            "mean_length_at_end": round(sum(h for _, h in hist1.values()) / len(names), 1),
        },
        "server": rates(m0, m1, wall),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def takeover(
    stack: Stack, workers: list[Child], interval_s: float, timeout: float, dump: Path | None
) -> dict[str, Any]:
    first = workers[0]
    second = stack.start_worker("worker-2")
    workers.append(second)
    await wait_until("the second worker polling", lambda: _polling(stack, second), 120)
    await asyncio.sleep(10)  # its boot signals every monitor: let those workflow tasks drain
    killed = time.monotonic()
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)

    async def rewatched() -> float | None:
        return await stack.targets.watched(interval_s, after=killed)

    try:
        await wait_until("every endpoint probed again", rewatched, timeout)
        recovered = True
    except TimeoutError:
        recovered = False
    arrivals = await stack.targets.arrivals(killed - 10 * interval_s, time.monotonic())
    if dump is not None:
        dump.write_text(json.dumps({"killed": killed, "arrivals": [list(a) for a in arrivals]}))
    gaps = takeover_gaps(arrivals, killed)
    finite = [g for g in gaps if g != float("inf")]
    return {
        "recovered": recovered,
        "unwatched_endpoints": len(gaps) - len(finite),
        "max_gap_s": round(max(finite), 2) if finite else None,
        "gap_p50_s": round(percentile(finite, 50), 2) if finite else None,
        "gap_p99_s": round(percentile(finite, 99), 2) if finite else None,
    }


async def _polling(stack: Stack, worker: Child) -> bool:
    """The worker's activity poller is registered with the server (identity ``<pid>@host``)."""
    if worker.proc.poll() is not None:
        raise RuntimeError(f"{worker.name} exited; see {worker.log}")
    client = await connect(stack.settings)
    found = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=stack.settings.temporal_namespace,
            task_queue=TaskQueue(name=stack.settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return any(p.identity.startswith(f"{worker.proc.pid}@") for p in found.pollers)


def say(text: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, home: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    interval_s = args.interval_ms / 1000
    targets = Targets(args.services * args.replicas, interval_s, pin=not args.no_pin)
    workers: list[Child] = []
    temporal: Child | None = None
    try:
        port = free_port()
        temporal = start_temporal(home, port, ui_port=None)
        address = f"127.0.0.1:{port}"
        await wait_temporal_ready(address, "default", temporal)
        say(f"Temporal ready on {address}; {len(targets.ports)} targets on CPU {targets.cpu}")
        catalog_path = home / "catalog.yaml"
        catalog = write_catalog(
            catalog_path, targets.ports, args.replicas, args.interval_ms, args.timeout_ms
        )
        settings = Settings(temporal_address=address, home=home, catalog=catalog_path)
        stack = Stack(home, settings, catalog, temporal, targets)
        spawned = time.monotonic()
        worker = stack.start_worker("worker-1")
        workers.append(worker)
        figures: dict[str, Any] = {
            "ramp": await ramp(stack, worker, spawned, interval_s, args.ramp_timeout)
        }
        say(f"ramp: {figures['ramp']}; steady window of {args.minutes:g} min after the settle")
        await asyncio.sleep(args.settle)
        figures["steady"] = await steady(stack, worker, interval_s, args.minutes * 60, args.dump)
        say(f"steady: {figures['steady']}")
        if args.takeover:
            figures["takeover"] = await takeover(
                stack,
                workers,
                interval_s,
                args.ramp_timeout,
                args.dump.with_suffix(".takeover.json") if args.dump else None,
            )
            say(f"takeover: {figures['takeover']}")
        return figures, {"targets_cpu": targets.cpu}
    finally:
        for child in reversed(workers):
            child.stop()
        if temporal is not None:
            temporal.stop()
        targets.stop()


def one_line(args: argparse.Namespace, fig: dict[str, Any]) -> str:
    ramp_, st = fig["ramp"], fig["steady"]
    cpu, late, hist = st["cpu_pct"], st["lateness_ms"], st["history"]
    line = (
        f"worker_scale services={args.services} replicas/service={args.replicas} "
        f"interval={args.interval_ms}ms "
        f"window={st['window_s']:g}s: watched in {ramp_['watched_s']} s, healthy in "
        f"{ramp_['healthy_s']} s; CPU % of a core worker {cpu['worker']} + temporal "
        f"{cpu['temporal']} = {cpu['sum']} (target <= {TARGET_CPU_PCT:g}); lateness "
        f"p50/p99 {late['p50']}/{late['p99']} ms, max on schedule {late['max_on_schedule']} ms "
        f"(target p99 <= "
        f"{TARGET_LATENESS_P99_MS:g}); ticks off schedule {st['probes']['off_schedule']} of "
        f"{st['probes']['expected']}; history {hist['per_monitor_hour']} events/monitor-hour"
    )
    if "takeover" in fig:
        t = fig["takeover"]
        line += (
            f"; takeover max gap {t['max_gap_s']} s, p50 {t['gap_p50_s']} s (target <= "
            f"{TARGET_TAKEOVER_S:g}), unwatched {t['unwatched_endpoints']}"
        )
    return line


def targets_met(fig: dict[str, Any]) -> dict[str, bool]:
    st = fig["steady"]
    met = {
        "cpu": st["cpu_pct"]["sum"] <= TARGET_CPU_PCT,
        "lateness": st["lateness_ms"]["p99"] <= TARGET_LATENESS_P99_MS,
    }
    if "takeover" in fig:
        gap = fig["takeover"]["max_gap_s"]
        unwatched = fig["takeover"]["unwatched_endpoints"]
        met["takeover"] = gap is not None and gap <= TARGET_TAKEOVER_S and not unwatched
    return met


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="endpoints per service: >1 puts that many endpoints in one watch activity",
    )
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--timeout-ms", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=5.0, help="steady window")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after healthy")
    parser.add_argument("--ramp-timeout", type=float, default=600.0)
    parser.add_argument("--takeover", action="store_true", help="kill the worker, time the gap")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the targets to a CPU")
    parser.add_argument("--note", default="", help="free text stored with the record")
    parser.add_argument("--dump", type=Path, help="write the window's arrivals (JSON) here")
    parser.add_argument(
        "--home", type=Path, help="a new directory to run in and keep (logs, Temporal DB)"
    )
    parser.add_argument("--no-save", action="store_true", help="print only")
    return parser.parse_args()


def main() -> None:
    args = parse()
    raise_fd_limit()
    # A SIGTERM unwinds like Ctrl-C, so the finally blocks stop Temporal and the workers.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.home is not None:
        args.home.mkdir(parents=True, exist_ok=False)
        fig, extra = asyncio.run(run(args, args.home.resolve()))
    else:
        with tempfile.TemporaryDirectory(prefix="drc-scale-") as tmp:
            fig, extra = asyncio.run(run(args, Path(tmp)))
    fig["targets_met"] = targets_met(fig)
    line = one_line(args, fig)
    params = {
        "services": args.services,
        "replicas_per_service": args.replicas,
        "interval_ms": args.interval_ms,
        "timeout_ms": args.timeout_ms,
        "minutes": args.minutes,
        "settle_s": args.settle,
        "takeover": args.takeover,
        "targets_pinned_to_cpu": extra["targets_cpu"],
        "note": args.note,
    }
    if args.no_save:
        print(line, flush=True)
    else:
        record("worker_scale", params, fig, line)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: temporalio 1.35 was seen to crash there
