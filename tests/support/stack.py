"""The whole of drc for an end-to-end test: a real Temporal dev server, supervisord with the
demo services, and the drc worker as a separate process, all on free ports in a temp dir."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import xmlrpc.client
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from demo.haproxy import start_haproxy, stop_haproxy, write_haproxy_config
from drc.catalog import Catalog, TrafficControl
from drc.catalog_loader import load_catalog
from drc.model import MonitorStatus
from drc.settings import DEFAULT_CATALOG
from tests.support.net import free_port
from tests.support.supervisor import Platform, running_platform, small_catalog
from workers.devstack import Child, spawn, start_temporal, wait_temporal_ready
from workers.status import read_status


def demo_like_catalog(
    restart: dict[str, Any] | None = None,
    thresholds: dict[str, Any] | None = None,
    services: tuple[str, ...] = ("market-data", "risk-engine", "order-gateway"),
) -> Catalog:
    """The demo topology on free ports, with the probe and restart settings of the demo catalog.

    ``restart`` and ``thresholds`` override fields of those sections: a benchmark that kills
    the same replicas many times raises ``crash_loop_max`` and ``flap_max_transitions``.
    """
    demo = load_catalog(DEFAULT_CATALOG)
    settings = demo.services[0]
    catalog = small_catalog(services)
    updated = tuple(
        s.model_copy(
            update={
                "probe": settings.probe,
                "restart": settings.restart.model_copy(update=restart or {}),
                "thresholds": settings.thresholds.model_copy(update=thresholds or {}),
                "frontend": f"127.0.0.1:{free_port()}" if demo.service(s.name).frontend else None,
            }
        )
        for s in catalog.services
    )
    # pytest's tmp_path can exceed the 107 bytes of a UNIX socket path: a short absolute one.
    socket = Path(tempfile.mkdtemp(prefix="drc-hx-")) / "haproxy.sock"
    traffic = TrafficControl(haproxy_socket=str(socket))
    return catalog.model_copy(update={"services": updated, "traffic_control": traffic})


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

    def start_worker(self) -> Child:
        argv = [sys.executable, "-m", "workers.cli", "worker"]
        self.worker = spawn("worker", argv, self.home / "logs", env=self.env())
        return self.worker

    def kill_worker(self) -> None:
        """SIGKILL the worker: no graceful shutdown, as when a host dies."""
        assert self.worker is not None
        os.killpg(self.worker.proc.pid, signal.SIGKILL)
        self.worker.proc.wait(10)
        self.worker = None

    def supervisor(self) -> Any:
        return xmlrpc.client.ServerProxy(self.platform.supervisor_url).supervisor

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
def _running_haproxy(catalog: Catalog, home: Path, socket: Path) -> Iterator[None]:
    proc = start_haproxy(write_haproxy_config(catalog, home, socket), socket)
    try:
        yield
    finally:
        stop_haproxy(proc)
        shutil.rmtree(socket.parent, ignore_errors=True)


@asynccontextmanager
async def running_drc(tmp_path: Path, catalog: Catalog | None = None) -> AsyncIterator[DrcStack]:
    """Start Temporal, the demo platform and a worker; stop them all afterwards."""
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
        with (
            running_platform(tmp_path, catalog) as platform,
            _running_haproxy(catalog, tmp_path, socket),
        ):
            stack = DrcStack(tmp_path, address, client, platform, catalog_path)
            stack.start_worker()
            try:
                yield stack
            finally:
                if stack.worker is not None:
                    stack.worker.stop()
    finally:
        temporal.stop()
