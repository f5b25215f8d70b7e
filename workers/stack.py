"""``drc up``: start Temporal, (the demo under supervisord), and the worker; stop all on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from demo.haproxy import start_haproxy, write_haproxy_config
from demo.platform import write_supervisor_config
from demo.supervisor import start_supervisord
from drc.catalog import Catalog
from drc.settings import Settings
from workers.devstack import Child, Stack, spawn, start_temporal, wait_temporal_ready


def run_stack(settings: Settings, catalog: Catalog, demo: bool, ui_port: int) -> int:
    """Run the stack until Ctrl-C (exit 0) or until a part dies (exit 1)."""
    home = settings.home.resolve()
    logs = home / "logs"
    port = int(settings.temporal_address.rsplit(":", 1)[1])
    stack = Stack()
    try:
        temporal = stack.add(start_temporal(home, port, ui_port))
        asyncio.run(
            wait_temporal_ready(settings.temporal_address, settings.temporal_namespace, temporal)
        )
        if demo:
            stack.add(_start_demo(catalog, home))
            if (socket := catalog.traffic_control.socket_path(home)) is not None:
                stack.add(_start_haproxy(catalog, home, socket))
        stack.add(_start_worker(settings, home, logs))
        _print_summary(settings, catalog, home, ui_port, demo)
        while (dead := stack.dead()) is None:
            time.sleep(0.5)
        print(f"drc up: {dead.name} exited ({dead.proc.returncode}); see {dead.log}", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ndrc up: stopping…", flush=True)
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"drc up: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
        print("drc up: stopped", flush=True)


def _start_demo(catalog: Catalog, home: Path) -> Child:
    config = write_supervisor_config(catalog, home)
    proc = start_supervisord(config, str(catalog.process_control.supervisor_url))
    return Child("supervisord", proc, config.parent / "supervisord.out")


def _start_haproxy(catalog: Catalog, home: Path, socket: Path) -> Child:
    config = write_haproxy_config(catalog, home, socket)
    return Child("haproxy", start_haproxy(config, socket), config.parent / "haproxy.out")


def _start_worker(settings: Settings, home: Path, logs: Path) -> Child:
    env = {
        **os.environ,
        "DRC_TEMPORAL_ADDRESS": settings.temporal_address,
        "DRC_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "DRC_HOME": str(home),
        "DRC_CATALOG": str(Path(settings.catalog).resolve()),
    }
    argv = [sys.executable, "-m", "workers.cli", "worker"]
    return spawn("worker", argv, logs, env=env)


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
        lines.append(f"  supervisord     {catalog.process_control.supervisor_url}")
        if (socket := catalog.traffic_control.socket_path(home)) is not None:
            lines.append(f"  haproxy         admin socket {socket}")
        for service in catalog.services:
            if service.frontend:
                lines.append(f"  {service.name:<15} front end http://{service.frontend}/")
        for service in catalog.services:
            for replica in service.replicas:
                lines.append(f"  {service.name:<15} {replica.name:<6} {replica.url}")
    lines.append("  status          drc status   (Ctrl-C stops everything)")
    print("\n".join(lines), flush=True)
