"""What process control says of a replica that missed a heartbeat: starting, dead, or nothing."""

from __future__ import annotations

from activities.process_control import ProcessController, ProcessInfo
from activities.process_view import ProcessVerdict, ProcessView
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


async def _verdict(found: ProcessInfo | None) -> ProcessVerdict:
    return await ProcessView(FakeController(found)).verdict("u", REPLICA, 10)


async def test_starting_and_recently_started_replicas_are_forgiven() -> None:
    assert (await _verdict(info("STARTING", 0.0))).starting == "r is STARTING (process control)"
    assert (await _verdict(info("RUNNING", 3.0))).starting == "r started 3 s ago (grace 10 s)"


async def test_an_exited_process_is_dead() -> None:
    exited = ProcessInfo("r", "EXITED", None, -9, "", None)
    verdict = await _verdict(exited)
    assert verdict == ProcessVerdict(dead="process control reports it EXITED, exit status -9")
    assert (await _verdict(info("FATAL", None))).dead == "process control reports it FATAL"


async def test_old_stopped_or_unknown_replicas_are_a_plain_miss() -> None:
    for found in (info("RUNNING", 11.0), info("STOPPED", None), None):
        assert await _verdict(found) == ProcessVerdict()


async def test_the_startup_grace_ends_with_the_first_answer_since_the_start() -> None:
    # Kubernetes' startup probe: once it answered, a replica that hangs is not "starting".
    view = ProcessView(FakeController(info("RUNNING", 3.0)))
    answered_since = await view.verdict("u", REPLICA, 10, answered_ago_s=1.5)
    assert answered_since == ProcessVerdict()
    answered_before = await view.verdict("u", REPLICA, 10, answered_ago_s=5.0)  # old process
    assert answered_before.starting == "r started 3 s ago (grace 10 s)"
    # supervisord's uptime is whole seconds: 3 may mean 2.1, so 2.5 s ago may be the old process
    unsure = await view.verdict("u", REPLICA, 10, answered_ago_s=2.5)
    assert unsure.starting == "r started 3 s ago (grace 10 s)"
