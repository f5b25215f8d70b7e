"""The whole of drc for an end-to-end test: a real Temporal dev server, supervisord with the
demo services, HAProxy, and the drc worker as a separate process, all on free ports in a temp
dir. HAProxy is a program of that supervisord when the catalog names a traffic-manager service
(``services=(..., TRAFFIC_MANAGER)``), as in the demo; otherwise a child of the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from demo.haproxy import check_haproxy_config, start_haproxy, stop_haproxy, write_haproxy_config
from drc.catalog import Catalog, Replica, Service, TrafficControl
from drc.catalog_loader import load_catalog, parse_catalog
from drc.model import ServiceState
from drc.settings import DEFAULT_CATALOG
from drc.status import MonitorStatus
from tests.support.net import assert_eventually, free_port
from tests.support.supervisor import Platform, running_platform, small_catalog
from workers.devstack import Child, spawn, start_temporal, wait_temporal_ready
from workers.status import read_status
from workers.supervision import Supervisor

TRAFFIC_MANAGER = "traffic-manager"
"""Name ``demo_like_catalog`` gives the service that is HAProxy itself (as the demo does)."""


def demo_like_catalog(
    restart: dict[str, Any] | None = None,
    thresholds: dict[str, Any] | None = None,
    services: tuple[str, ...] = ("market-data", "risk-engine", "order-gateway"),
) -> Catalog:
    """The demo topology on free ports, with the probe and restart settings of the demo catalog.

    ``restart`` and ``thresholds`` override fields of those sections: a benchmark that kills
    the same replicas many times raises ``crash_loop_max`` and ``flap_max_transitions``.
    HAProxy keeps its server state in ``demo/haproxy.state``; with ``TRAFFIC_MANAGER`` among
    ``services`` it is also a service (replica ``haproxy``) that supervisord runs and drc
    watches, as in the demo.
    """
    demo = load_catalog(DEFAULT_CATALOG)
    settings = demo.services[0]
    catalog = small_catalog(tuple(s for s in services if s != TRAFFIC_MANAGER))
    platform = [*catalog.services]
    if TRAFFIC_MANAGER in services:
        url = f"http://127.0.0.1:{free_port()}"
        haproxy = Replica(name="haproxy", region="ldn", url=url, process="haproxy")  # type: ignore[arg-type]
        platform.append(Service(name=TRAFFIC_MANAGER, replicas=(haproxy,)))
    updated = tuple(
        s.model_copy(
            update={
                "probe": settings.probe,
                "restart": settings.restart.model_copy(update=restart or {}),
                "thresholds": settings.thresholds.model_copy(update=thresholds or {}),
                "frontend": f"127.0.0.1:{free_port()}" if _fronted(demo, s.name) else None,
            }
        )
        for s in platform
    )
    # pytest's tmp_path can exceed the 107 bytes of a UNIX socket path: a short absolute one.
    socket = Path(tempfile.mkdtemp(prefix="drc-hx-")) / "haproxy.sock"
    traffic = TrafficControl(
        haproxy_socket=str(socket),
        haproxy_state_file="demo/haproxy.state",
        haproxy_service=TRAFFIC_MANAGER if TRAFFIC_MANAGER in services else None,
    )
    whole = catalog.model_copy(update={"services": updated, "traffic_control": traffic})
    return parse_catalog(whole.model_dump(mode="json"), "<demo-like catalog>")


def two_region_catalog(return_check_s: float = 1.0) -> Catalog:
    """The demo catalog itself (demo/catalog.yaml) on free ports: its two regions, ldn and nyc.

    Every trading service has replicas in both (risk-engine ``re-a``/``re-b`` active-active,
    order-state a third replica ``redis-c`` in nyc so that the order store still has a replica
    to acknowledge writes with after ldn is lost) and HAProxy stands at the ``edge``. Its
    vantage points are left out (one worker watches; the loss is corroborated by process
    control); ``return_check_s`` paces the region's return.
    """
    data = load_catalog(DEFAULT_CATALOG).model_dump(mode="json")
    data["process_control"]["supervisor_url"] = f"http://127.0.0.1:{free_port()}/RPC2"
    socket = Path(tempfile.mkdtemp(prefix="drc-hx-")) / "haproxy.sock"  # short: a UNIX socket
    data["traffic_control"]["haproxy_socket"] = str(socket)
    data["vantage_points"], data["watch_from"] = [], None
    for service in data["services"]:
        if service["frontend"] is not None:
            service["frontend"] = f"127.0.0.1:{free_port()}"
        for replica in service["replicas"]:
            scheme = replica["url"].split("://", 1)[0]
            replica["url"] = f"{scheme}://127.0.0.1:{free_port()}"
    data["evacuation"] = {"return_check_s": return_check_s}
    return parse_catalog(data, "<demo catalog on free ports>")


def _fronted(demo: Catalog, name: str) -> bool:
    service = demo.service(name)
    return service is not None and service.frontend is not None


@dataclass
class DrcStack:
    """Handles on every part of a running drc."""

    home: Path
    address: str
    client: Client
    platform: Platform
    catalog_path: Path
    worker: Child | None = None

    @property
    def catalog(self) -> Catalog:
        return self.platform.catalog

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DRC_TEMPORAL_ADDRESS": self.address,
            "DRC_CATALOG": str(self.catalog_path),
            "DRC_HOME": str(self.home),
        }

    def spawn_worker(self, name: str = "worker", region: str | None = None) -> Child:
        """A ``drc worker`` process, logging to ``logs/<name>.log``; the caller stops it.

        With ``region``, the catalog's vantage point of that name (``drc worker --region``).
        """
        argv = [sys.executable, "-m", "workers.cli", "worker"]
        if region is not None:
            argv += ["--region", region]
        return spawn(name, argv, self.home / "logs", env=self.env())

    def start_worker(self) -> Child:
        self.worker = self.spawn_worker()
        return self.worker

    def kill_worker(self) -> None:
        """SIGKILL the worker: no graceful shutdown, as when a host dies."""
        assert self.worker is not None
        os.killpg(self.worker.proc.pid, signal.SIGKILL)
        self.worker.proc.wait(10)
        self.worker = None

    def supervisor(self) -> Any:
        return self.platform.rpc()

    def pid(self, replica: str) -> int:
        return int(self.supervisor().getProcessInfo(replica)["pid"])

    async def status(self) -> dict[str, MonitorStatus]:
        entries = await read_status(self.client, self.catalog, self.home)
        assert all(isinstance(e, MonitorStatus) for e in entries), entries
        return {e.name: e for e in entries if isinstance(e, MonitorStatus)}

    async def replica_status(self, service: str, replica: str) -> Any:
        status = (await self.status())[service]
        return next(r for r in status.replicas if r.name == replica)


@contextmanager
def _running_haproxy(config: Path, socket: Path) -> Iterator[None]:
    proc = start_haproxy(config, socket)
    try:
        yield
    finally:
        stop_haproxy(proc)


@asynccontextmanager
async def supervised_worker(stack: DrcStack) -> AsyncIterator[tuple[Supervisor, list[str]]]:
    """A worker run the way ``drc up`` runs it: restarted by a ``Supervisor`` when it dies.

    Yields the supervisor and the decisions it logged. It is ticked from this (the main)
    thread, so a restarted worker is spawned there, as ``drc up`` spawns it.
    """
    lines: list[str] = []
    supervision = Supervisor(lines.append)
    supervision.start("worker", lambda _: stack.spawn_worker())

    async def tick() -> None:
        while True:
            supervision.tick()
            await asyncio.sleep(0.2)

    ticking = asyncio.create_task(tick())
    try:
        yield supervision, lines
    finally:
        ticking.cancel()
        supervision.stop()


@asynccontextmanager
async def running_drc(
    tmp_path: Path, catalog: Catalog | None = None, worker: bool = True
) -> AsyncIterator[DrcStack]:
    """Start Temporal, the demo platform (with HAProxy) and, unless not ``worker``, a worker.

    Everything is stopped afterwards.
    """
    catalog = catalog or demo_like_catalog()
    port = free_port()
    temporal = start_temporal(tmp_path, port, ui_port=None)
    stack: DrcStack | None = None
    try:
        address = f"127.0.0.1:{port}"
        await wait_temporal_ready(address, "default", temporal)
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        catalog_path = tmp_path / "catalog.yaml"
        catalog_path.write_text(yaml.safe_dump(catalog.model_dump(mode="json")))
        socket = catalog.traffic_control.socket_path(tmp_path)
        assert socket is not None
        # Written before supervisord starts, since it may run HAProxy as one of its programs.
        config = write_haproxy_config(catalog, tmp_path, socket)
        check_haproxy_config(config)
        with ExitStack() as parts:
            parts.callback(shutil.rmtree, socket.parent, ignore_errors=True)
            platform = parts.enter_context(running_platform(tmp_path, catalog))
            if catalog.traffic_control.haproxy_service is None:
                parts.enter_context(_running_haproxy(config, socket))
            stack = DrcStack(tmp_path, address, client, platform, catalog_path)
            if worker:
                stack.start_worker()
            try:
                yield stack
            finally:
                if stack.worker is not None:
                    stack.worker.stop()
    finally:
        temporal.stop()


async def all_healthy(stack: DrcStack) -> None:
    """Every service of the stack is healthy (for ``assert_eventually``)."""
    states = {s.name: s.state for s in (await stack.status()).values()}
    assert set(states.values()) == {ServiceState.HEALTHY}, states


@asynccontextmanager
async def healthy_drc(tmp_path: Path, catalog: Catalog | None = None) -> AsyncIterator[DrcStack]:
    """``running_drc``, once every service is healthy."""
    async with running_drc(tmp_path, catalog) as stack:
        await assert_eventually(lambda: all_healthy(stack), timeout=90)
        yield stack


def run_drc(
    stack: DrcStack, *args: str, operator: str = "tester"
) -> subprocess.CompletedProcess[str]:
    """The real ``drc`` CLI against the stack, as ``operator``; never raises on its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**stack.env(), "DRC_OPERATOR": operator},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
