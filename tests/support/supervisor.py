"""A real supervisord running demo services on free ports, for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

from demo.platform import marker_path, write_supervisor_config
from demo.supervisor import start_supervisord, stop_supervisord, supervisor_proxy
from drc.catalog import Catalog, Replica
from drc.catalog_loader import parse_catalog
from drc.credentials import SUPERVISOR_CREDENTIALS_FILE, Credentials, read_credentials
from tests.support.net import free_port, wait_port


def small_catalog(
    services: tuple[str, ...] = ("market-data", "risk-engine", "order-gateway"),
) -> Catalog:
    """The demo topology (or a prefix of it) on free ports: md-a/md-b, re-a, og-a/og-b."""

    def replica(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "region": "ldn",
            "url": f"http://127.0.0.1:{free_port()}",
            "process": name,
        }

    def redis(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "region": "ldn",
            "url": f"redis://127.0.0.1:{free_port()}",
            "process": name,
        }

    all_services: dict[str, dict[str, Any]] = {
        "market-data": {
            "name": "market-data",
            "redundancy": "active-active",
            "replicas": [replica("md-a"), replica("md-b")],
        },
        "risk-engine": {
            "name": "risk-engine",
            "depends_on": ["market-data"],
            "replicas": [replica("re-a")],
        },
        "order-state": {
            "name": "order-state",
            "redundancy": "active-standby",
            "primary": "redis-a",
            "replicas": [redis("redis-a"), redis("redis-b")],
        },
        "order-gateway": {
            "name": "order-gateway",
            "redundancy": "active-standby",
            "primary": "og-a",
            "depends_on": [
                d for d in ("risk-engine", "market-data", "order-state") if d in services
            ],
            "replicas": [replica("og-a"), replica("og-b")],
        },
    }
    return parse_catalog(
        {
            "process_control": {"supervisor_url": f"http://127.0.0.1:{free_port()}/RPC2"},
            "services": [all_services[name] for name in services],
        },
        "<test catalog>",
    )


@dataclass
class Platform:
    """A running supervisord and the catalog of the replicas it runs."""

    catalog: Catalog
    home: Path
    proc: Popen[bytes]

    @property
    def supervisor_url(self) -> str:
        return str(self.catalog.process_control.supervisor_url)

    @property
    def credentials(self) -> Credentials:
        """The XML-RPC login the platform's supervisord asks for."""
        found = read_credentials(self.home / SUPERVISOR_CREDENTIALS_FILE)
        assert found is not None
        return found

    def rpc(self) -> Any:
        """``supervisor`` of an XML-RPC client logged in to the platform's supervisord."""
        return supervisor_proxy(self.supervisor_url, self.credentials).supervisor

    def replica(self, name: str) -> Replica:
        found = next((r for s in self.catalog.services for r in s.replicas if r.name == name), None)
        assert found is not None, name
        return found

    def url(self, replica: str, path: str = "") -> str:
        return self.replica(replica).endpoint(path)

    def marker(self, replica: str) -> Path:
        return marker_path(self.home, replica)


@contextmanager
def running_platform(home: Path, catalog: Catalog | None = None) -> Iterator[Platform]:
    """Write the config under ``home``, start supervisord, wait for every replica's port."""
    catalog = catalog or small_catalog()
    config = write_supervisor_config(catalog, home)
    proc = start_supervisord(config, str(catalog.process_control.supervisor_url))
    try:
        for service in catalog.services:
            for replica in service.replicas:
                assert replica.url.port is not None
                wait_port(replica.url.port, timeout=20)
        yield Platform(catalog, home, proc)
    finally:
        stop_supervisord(proc)
