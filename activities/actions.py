"""The activities behind the runbook actions (``runbooks.actions.ACTIONS``), one per action.

Every activity takes the same ``ActionInput`` (the action's rendered args plus the service it
acts on) and returns an ``ActionResult`` whose ``summary`` is the sentence kept in the
runbook's journal. Domain errors that a retry cannot cure become non-retryable
``ApplicationError``s; everything else is left to the step's retry policy.

Every action heartbeats while it runs (``activities.heartbeat``): the runbook engine calls it
with a short heartbeat timeout, so a step whose worker died is retried on another worker
within seconds. Each one is idempotent (its docstring says why), so that retry is safe even
when the first attempt got as far as changing the world.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.probes.engine import ProbeEngine
from activities.process_control import ProcessController
from activities.process_control import to_application_error as process_error
from activities.traffic import ServerState, TrafficError, TrafficManager, TrafficState
from activities.traffic import to_application_error as traffic_error
from drc.catalog import Replica
from drc.errors import ProcessControlError
from drc.repair import ActionInput, ActionResult

HEALTH_TIMEOUT_MS = 2000
POLL_INTERVAL_S = 0.5
OUTPUT_TAIL = 400
"""Characters of a command's output kept in a summary or an error."""

__all__ = ["ActionInput", "ActionResult", "RunbookActivities"]  # the types live in drc.repair


def _fatal(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class RunbookActivities:
    """The action activities; built once per worker around the worker's shared clients."""

    def __init__(
        self,
        traffic: TrafficManager,
        controller: ProcessController,
        engine: ProbeEngine,
        http: httpx.AsyncClient,
    ) -> None:
        self._traffic = traffic
        self._controller = controller
        self._engine = engine
        self._http = http

    def activities(self) -> list[Any]:
        """Every action activity, for a worker's ``activities=``."""
        return [
            self.traffic_set,
            self.traffic_expect,
            self.process_stop,
            self.process_start,
            self.replica_healthy,
            self.replica_wait_healthy,
            self.replica_promote,
            self.replica_demote,
            self.frontend_verify,
            self.command,
        ]

    @activity.defn(name="action_traffic_set")
    @heartbeating
    async def traffic_set(self, inp: ActionInput) -> ActionResult:
        """Put a server in a state; idempotent, as setting a state twice is the same state.

        The state before is read first only to say what changed; a retry reads it again.
        """
        backend, server, state = _traffic_args(inp)
        try:
            before = await self._server(backend, server)
            after = await self._traffic.set_state(backend, server, state)
        except TrafficError as exc:
            raise traffic_error(exc) from exc
        return ActionResult(
            inp.action, f"{server} in {backend} set to {after.admin} (was {before.admin})"
        )

    @activity.defn(name="action_traffic_expect")
    @heartbeating
    async def traffic_expect(self, inp: ActionInput) -> ActionResult:
        """Fail unless the server is in the expected state; read-only, so safe to retry."""
        backend, server, state = _traffic_args(inp)
        try:
            found = await self._server(backend, server)
        except TrafficError as exc:
            raise traffic_error(exc) from exc
        if found.admin != state:
            raise ApplicationError(
                f"{server} in {backend} is {found.admin}, expected {state}", type="GuardFailed"
            )
        return ActionResult(inp.action, f"{server} in {backend} is {state} as expected")

    @activity.defn(name="action_process_stop")
    @heartbeating
    async def process_stop(self, inp: ActionInput) -> ActionResult:
        """Stop the replica's process; idempotent (a stopped process stays stopped)."""
        replica, process = self._process(inp)
        try:
            result = await self._controller.stop(inp.supervisor_url, process)
        except ProcessControlError as exc:
            raise process_error(exc) from exc
        done = "stopped" if result.action == "stop" else "already not running"
        return ActionResult(inp.action, f"{replica.name} ({process}) {done}: {result.state_after}")

    @activity.defn(name="action_process_start")
    @heartbeating
    async def process_start(self, inp: ActionInput) -> ActionResult:
        """Start the replica's process; idempotent (a running process is left running).

        A process that dies during its start is non-retryable ("ProcessExited").
        """
        replica, process = self._process(inp)
        try:
            result = await self._controller.start(inp.supervisor_url, process)
        except ProcessControlError as exc:
            raise process_error(exc) from exc
        done = "started" if result.action == "start" else "already running"
        return ActionResult(
            inp.action, f"{replica.name} ({process}) {done}: {result.state_after}, pid {result.pid}"
        )

    @activity.defn(name="action_replica_healthy")
    @heartbeating
    async def replica_healthy(self, inp: ActionInput) -> ActionResult:
        """One health probe of the replica must pass; read-only, so safe to retry."""
        replica = _replica(inp)
        result = await self._engine.health(replica, HEALTH_TIMEOUT_MS)
        if not result.ok:
            raise ApplicationError(
                f"{replica.name} is not healthy: {result.error}", type="Unhealthy"
            )
        return ActionResult(inp.action, f"{replica.name} healthy ({result.latency_ms:.0f} ms)")

    @activity.defn(name="action_replica_wait_healthy")
    @heartbeating
    async def replica_wait_healthy(self, inp: ActionInput) -> ActionResult:
        """Probe until the replica is healthy or ``timeout_s`` (default 30) passes.

        Read-only; heartbeats every probe, so a cancelled runbook stops it promptly. A retry
        starts a fresh wait.
        """
        replica = _replica(inp)
        timeout_s = _number(inp, "timeout_s", 30.0)
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            result = await self._engine.health(replica, HEALTH_TIMEOUT_MS)
            activity.heartbeat(result.error)
            if result.ok:
                took = time.monotonic() - started
                return ActionResult(inp.action, f"{replica.name} healthy after {took:.1f} s")
            if time.monotonic() >= deadline:
                raise ApplicationError(
                    f"{replica.name} not healthy within {timeout_s:g} s (last: {result.error})",
                    type="Unhealthy",
                )
            await asyncio.sleep(POLL_INTERVAL_S)

    @activity.defn(name="action_replica_promote")
    @heartbeating
    async def replica_promote(self, inp: ActionInput) -> ActionResult:
        """POST ``/admin/promote``; the replica's contract is that promoting a primary is 2xx.

        A 4xx (the replica refuses) is non-retryable; 5xx and connection errors are retried.
        """
        return await self._admin(inp, "promote")

    @activity.defn(name="action_replica_demote")
    @heartbeating
    async def replica_demote(self, inp: ActionInput) -> ActionResult:
        """POST ``/admin/demote``; demoting a replica that is not primary must answer 2xx."""
        return await self._admin(inp, "demote")

    @activity.defn(name="action_frontend_verify")
    @heartbeating
    async def frontend_verify(self, inp: ActionInput) -> ActionResult:
        """GET through the service's front end until it answers as expected; read-only.

        ``attempts`` GETs (default 10), half a second apart; the last failure is the error.
        """
        if inp.service.frontend is None:
            raise _fatal(f"service {inp.service.name} has no frontend to verify", "NoFrontend")
        path = str(inp.args.get("path", "/health/heartbeat"))
        expect = inp.args.get("expect_replica")
        attempts = max(1, int(_number(inp, "attempts", 10)))
        url = f"http://{inp.service.frontend}{path}"
        last = "no attempt"
        for attempt in range(1, attempts + 1):
            last = await self._verify_once(url, None if expect is None else str(expect))
            activity.heartbeat(attempt, last)
            if not last:
                who = f", served by {expect}" if expect is not None else ""
                return ActionResult(inp.action, f"{url} answered 200{who} (attempt {attempt})")
            if attempt < attempts:
                await asyncio.sleep(POLL_INTERVAL_S)
        raise ApplicationError(
            f"{url} not as expected after {attempts} attempts (last: {last})", type="VerifyFailed"
        )

    @activity.defn(name="action_command")
    @heartbeating
    async def command(self, inp: ActionInput) -> ActionResult:
        """Run an allow-listed command from an argv list: never a shell, never a string.

        Whether a retry is safe is the command's business; the runbook's retry policy
        decides. A command that outlives the activity's timeout is killed.
        """
        argv = inp.args.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise _fatal(f"command needs argv as a list of strings, not {argv!r}", "InvalidArgs")
        if argv[0] not in inp.allowed_commands:
            allowed = ", ".join(inp.allowed_commands) or "none"
            raise _fatal(
                f"command {argv[0]!r} is not allow-listed (allowed: {allowed})",
                "CommandNotAllowed",
            )
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise _fatal(f"cannot run {argv[0]!r}: {exc.strerror}", "CommandFailed") from exc
        try:
            async with asyncio.timeout(_time_left()):
                out, err = await proc.communicate()
        except BaseException:  # timed out or cancelled: leave no orphan behind
            proc.kill()
            await proc.wait()
            raise
        shown = " ".join(argv)
        if proc.returncode != 0:
            raise ApplicationError(
                f"{shown} exited {proc.returncode}: {_tail(err) or _tail(out) or 'no output'}",
                type="CommandFailed",
            )
        return ActionResult(inp.action, f"{shown} exited 0: {_tail(out) or 'no output'}")

    async def _server(self, backend: str, server: str) -> ServerState:
        found = [s for s in await self._traffic.servers(backend) if s.server == server]
        if not found:
            raise TrafficError(f"HAProxy has no server {server!r} in backend {backend!r}")
        return found[0]

    def _process(self, inp: ActionInput) -> tuple[Replica, str]:
        replica = _replica(inp)
        if replica.process is None:
            raise _fatal(f"{replica.name} has no process under process control", "NoProcess")
        return replica, replica.process

    async def _admin(self, inp: ActionInput, verb: str) -> ActionResult:
        replica = _replica(inp)
        url = replica.endpoint(f"/admin/{verb}")
        try:
            resp = await self._http.post(url, timeout=_time_left())
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"{verb} {replica.name}: {url} unreachable: {type(exc).__name__}: {exc}",
                type="ReplicaUnreachable",
            ) from exc
        said = resp.text[:OUTPUT_TAIL].strip()
        if 400 <= resp.status_code < 500:
            raise _fatal(
                f"{replica.name} refused to {verb}: HTTP {resp.status_code}: {said}",
                f"{verb.capitalize()}Refused",
            )
        if not resp.is_success:
            raise ApplicationError(
                f"{verb} {replica.name} failed: HTTP {resp.status_code}: {said}",
                type=f"{verb.capitalize()}Failed",
            )
        return ActionResult(inp.action, f"{replica.name} {verb}d (HTTP {resp.status_code})")

    async def _verify_once(self, url: str, expect: str | None) -> str:
        """The empty string when ``url`` answered as expected, else what was wrong."""
        try:
            resp = await self._http.get(url, timeout=2.0)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if resp.status_code != 200:
            return f"HTTP {resp.status_code}: {resp.text[:OUTPUT_TAIL].strip()}"
        if expect is None:
            return ""
        try:
            served_by = resp.json().get("replica")
        except (ValueError, AttributeError):
            return f"not a JSON object: {resp.text[:OUTPUT_TAIL].strip()}"
        return "" if served_by == expect else f"served by {served_by!r}, expected {expect!r}"


def _replica(inp: ActionInput) -> Replica:
    name = str(inp.args.get("replica", ""))
    replica = inp.service.replica(name)
    if replica is None:
        known = ", ".join(r.name for r in inp.service.replicas)
        raise _fatal(
            f"unknown replica {name!r} of {inp.service.name} (known: {known})", "UnknownReplica"
        )
    return replica


def _traffic_args(inp: ActionInput) -> tuple[str, str, TrafficState]:
    backend = str(inp.args.get("backend") or f"be_{inp.service.name}")
    server = str(inp.args.get("server", ""))
    if inp.service.replica(server) is None:
        known = ", ".join(r.name for r in inp.service.replicas)
        raise _fatal(
            f"unknown server {server!r}: not a replica of {inp.service.name} (known: {known})",
            "UnknownReplica",
        )
    try:
        state = TrafficState(str(inp.args.get("state")))
    except ValueError:
        allowed = ", ".join(TrafficState)
        raise _fatal(
            f"invalid traffic state {inp.args.get('state')!r} (allowed: {allowed})", "InvalidArgs"
        ) from None
    return backend, server, state


def _number(inp: ActionInput, name: str, default: float) -> float:
    value = inp.args.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _fatal(
            f"{inp.action} {name} must be a number, not {value!r}", "InvalidArgs"
        ) from None


def _time_left() -> float:
    """Seconds this attempt may run: its start-to-close timeout (it started a moment ago)."""
    timeout = activity.info().start_to_close_timeout
    return timeout.total_seconds() if timeout else 30.0


def _tail(output: bytes) -> str:
    text = output.decode("utf-8", "replace").strip()
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]
