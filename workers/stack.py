"""``drc up``: start Temporal, (the demo under supervisord), and the worker; keep them running.

Every part is supervised (``workers.supervision``): one that dies is restarted with backoff
while the others keep running, so drc's own crash never takes down what it watches. Only
Ctrl-C or SIGTERM stops the stack, every part in reverse order.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path

from api.auth import TOKEN_FILE
from api.serve import announce_token
from demo.haproxy import check_haproxy_config, start_haproxy, write_haproxy_config
from demo.platform import haproxy_config_path, write_supervisor_config
from demo.supervisor import start_supervisord
from drc.catalog import Catalog
from drc.settings import Settings
from workers.devstack import Child, spawn, start_temporal, wait_temporal_ready
from workers.orphans import adopt_orphans, describe, orphans, stop_orphans
from workers.supervision import StartPart, Supervisor

TICK_S = 0.25
DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"
"""Where ``drc up``'s main worker serves Prometheus metrics unless DRC_METRICS_ADDRESS says."""


def run_stack(settings: Settings, catalog: Catalog, demo: bool, ui_port: int) -> int:
    """Run the stack until Ctrl-C or SIGTERM (exit 0); exit 1 only if a part cannot start.

    Once every part has started, a part that dies is restarted (``Supervisor``): this never
    returns because a child died.
    """
    home = settings.home.resolve()
    logs = home / "logs"
    port = int(settings.temporal_address.rsplit(":", 1)[1])
    supervision = Supervisor(log=_say)
    try:
        if demo:
            adopt_orphans()  # supervisord's programs outlive it: drc up must still see them
        supervision.start("temporal", lambda _: _start_temporal(settings, home, port, ui_port))
        if demo:
            socket = catalog.traffic_control.socket_path(home)
            if socket is not None:  # before supervisord, which may run HAProxy as a program
                check_haproxy_config(write_haproxy_config(catalog, home, socket))
            supervision.start(
                "supervisord",
                lambda restart: _start_demo(
                    catalog, home, restart, supervision.pids, settings.supervisor_credentials
                ),
            )
            if socket is not None and catalog.traffic_control.haproxy_service is None:
                supervision.start("haproxy", lambda _: _start_haproxy(home, socket))
        supervision.start("worker", lambda _: _start_worker(settings, home, logs))
        announce_token(settings.model_copy(update={"home": home}))  # a new one printed once
        supervision.start("api", lambda _: _start_api(settings, home, logs))
        for vantage in catalog.vantage_points:  # one probe worker per vantage point
            supervision.start(
                f"worker-{vantage.name}", _vantage_starter(settings, home, logs, vantage.name)
            )
        _print_summary(settings, catalog, home, ui_port, demo)
        while True:
            supervision.tick()
            if demo:
                orphans(supervision.pids())  # reaps the adopted ones that have exited
            time.sleep(TICK_S)
    except KeyboardInterrupt:
        print("\ndrc up: stopping…", flush=True)
        return 0
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
        print(f"drc up: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        supervision.stop()
        if demo and (left := stop_orphans()):
            _say(f"stopped {len(left)} programs an earlier supervisord left running")
        print("drc up: stopped", flush=True)


def _say(line: str) -> None:
    print(f"drc up: {line}", flush=True)


def _start_temporal(settings: Settings, home: Path, port: int, ui_port: int) -> Child:
    child = start_temporal(home, port, ui_port)
    try:
        asyncio.run(
            wait_temporal_ready(settings.temporal_address, settings.temporal_namespace, child)
        )
    except BaseException:
        child.stop()
        raise
    return child


def _start_demo(
    catalog: Catalog,
    home: Path,
    restart: int,
    own: Callable[[], Collection[int]],
    credentials_file: Path | None = None,
) -> Child:
    # A restart follows supervisord's death, and its programs did not die with it: they run on
    # as orphans (adopted by drc up), serving and holding their ports. Starting them again
    # would only make duplicates that fail to bind, so the new supervisord starts none
    # (autostart=false) and drc's monitors decide, as ever, what to restart. What that means
    # for process control until such an orphan exits: supervisord reports its program STOPPED
    # although it serves, so a stop through supervisord is a no-op that leaves it running (a
    # failover still fences it in HAProxy, `maint`, and a state store by refusing writes),
    # and a start spawns a duplicate that exits on the busy port (a failed restart, recorded
    # as such). Once the orphan exits, the monitor sees the replica fail and its restart
    # brings the program back under supervisord. drc up stops the orphans on Ctrl-C.
    config = write_supervisor_config(
        catalog, home, autostart=restart == 0, credentials_file=credentials_file
    )
    if restart:
        left = ", ".join(describe(pid) for pid in orphans(own())) or "none"
        _say(f"supervisord starts again with autostart=false; still running: {left}")
    proc = start_supervisord(config, str(catalog.process_control.supervisor_url))
    return Child("supervisord", proc, config.parent / "supervisord.out")


def _start_haproxy(home: Path, socket: Path) -> Child:
    # Only when the catalog names no traffic-manager service: HAProxy is then drc up's own
    # child, restarted by drc up; its state file (if any) still restores the traffic state.
    # The config was written once, before anything ran: rewriting it here would also rewrite
    # the state file under a worker that may be saving it.
    config = haproxy_config_path(home)
    return Child("haproxy", start_haproxy(config, socket), config.parent / "haproxy.out")


def _vantage_starter(settings: Settings, home: Path, logs: Path, region: str) -> StartPart:
    return lambda _: _start_worker(settings, home, logs, region)


def _start_worker(settings: Settings, home: Path, logs: Path, region: str | None = None) -> Child:
    env = _env(settings, home)
    argv = [sys.executable, "-m", "workers.cli", "worker"]
    if region is not None:
        argv += ["--region", region]
        env.pop("DRC_METRICS_ADDRESS", None)  # the main worker's port: a second bind fails
    else:  # the main worker serves the metrics: drc_* and the Temporal SDK's own
        env["DRC_METRICS_ADDRESS"] = settings.metrics_address or DEFAULT_METRICS_ADDRESS
    return spawn("worker" if region is None else f"worker-{region}", argv, logs, env=env)


def _env(settings: Settings, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DRC_TEMPORAL_ADDRESS": settings.temporal_address,
        "DRC_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "DRC_HOME": str(home),
        "DRC_CATALOG": str(Path(settings.catalog).resolve()),
    }


def _start_api(settings: Settings, home: Path, logs: Path) -> Child:
    env = {
        **_env(settings, home),
        "DRC_API_HOST": settings.api_host,
        "DRC_API_PORT": str(settings.api_port),
    }
    return spawn("api", [sys.executable, "-m", "workers.cli", "api"], logs, env=env)


def _print_summary(
    settings: Settings, catalog: Catalog, home: Path, ui_port: int, demo: bool
) -> None:
    lines = [
        "drc is up.",
        f"  Temporal        {settings.temporal_address} (namespace {settings.temporal_namespace})",
        f"  Web UI          http://127.0.0.1:{ui_port}/namespaces/{settings.temporal_namespace}"
        "/workflows?query=kind%3D%22monitor%22",
        f"  state           {home} (temporal.db, logs/)",
        f"  catalog         {Path(settings.catalog).resolve()} ({len(catalog.services)} services)",
    ]
    if demo:
        traffic = catalog.traffic_control
        lines.append(f"  supervisord     {catalog.process_control.supervisor_url}")
        if (socket := traffic.socket_path(home)) is not None:
            lines.append(f"  haproxy         admin socket {socket}")
        if (state := traffic.state_file_path(home)) is not None:
            lines.append(f"  haproxy         server state {state}")
        for service in catalog.services:
            if service.frontend:
                lines.append(f"  {service.name:<15} front end http://{service.frontend}/")
        for service in catalog.services:
            for replica in service.replicas:
                lines.append(f"  {service.name:<15} {replica.name:<7} {replica.url}")
    api = f"http://{settings.api_host}:{settings.api_port}"
    lines.append(f"  recovery API    {api}/ (dashboard), {api}/docs (OpenAPI)")
    lines.append(f"  API token       {home / TOKEN_FILE} (mode 0600; or DRC_API_TOKEN)")
    metrics = settings.metrics_address or DEFAULT_METRICS_ADDRESS
    lines.append(f"  metrics         http://{metrics}/metrics (worker), {api}/metrics (fleet)")
    lines.append("  status          drc status   (Ctrl-C stops everything)")
    lines.append("  a part that dies is restarted with backoff; the others keep running")
    print("\n".join(lines), flush=True)
