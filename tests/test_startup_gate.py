"""A replica that misses heartbeats while process control reports it starting is not failed."""

from __future__ import annotations

from activities.process_control import ProcessController, ProcessInfo
from activities.startup import StartupGate
from drc.catalog_loader import parse_catalog
from drc.errors import ProcessControlError
from drc.repair import ProcessResult

REPLICA = (
    parse_catalog(
        {
            "services": [
                {
                    "name": "s",
                    "replicas": [{"name": "r", "region": "x", "url": "http://h:1", "process": "r"}],
                }
            ]
        }
    )
    .services[0]
    .replicas[0]
)


class FakeController(ProcessController):
    def __init__(self, info: ProcessInfo | None) -> None:
        self._info = info

    async def info(self, url: str, name: str) -> ProcessInfo:
        if self._info is None:
            raise ProcessControlError("supervisord unreachable")
        return self._info

    async def stop(self, url: str, name: str) -> ProcessResult:  # pragma: no cover - unused
        raise NotImplementedError

    async def start(self, url: str, name: str) -> ProcessResult:  # pragma: no cover - unused
        raise NotImplementedError


def info(state: str, uptime: float | None) -> ProcessInfo:
    return ProcessInfo("r", state, 42 if uptime is not None else None, None, "", uptime)


async def test_starting_and_recently_started_replicas_are_forgiven() -> None:
    assert await StartupGate(FakeController(info("STARTING", 0.0))).starting("u", REPLICA, 10) == (
        "r is STARTING (process control)"
    )
    young = await StartupGate(FakeController(info("RUNNING", 3.0))).starting("u", REPLICA, 10)
    assert young == "r started 3 s ago (grace 10 s)"


async def test_old_dead_or_unknown_replicas_are_not_forgiven() -> None:
    for found in (info("RUNNING", 11.0), info("EXITED", None), info("STOPPED", None), None):
        assert await StartupGate(FakeController(found)).starting("u", REPLICA, 10) is None
