"""Process control: stop, start and inspect a replica's process, and the activities over them.

``ProcessController`` is the backend interface; ``SupervisorController`` drives supervisord
over XML-RPC. Every operation is idempotent, so Temporal may retry any of them safely; the
stop and start activities heartbeat while they run (a stop may wait seconds for supervisord),
so a restart whose worker died resumes on another worker within seconds.
"""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from drc.credentials import SUPERVISOR_CREDENTIALS_ENV, Credentials
from drc.errors import ProcessControlError, ProcessExitedError
from drc.repair import ProcessInput, ProcessResult

# supervisord process states (supervisor.states.ProcessStates), by statename.
RUNNING_STATES = frozenset({"RUNNING", "STARTING", "BACKOFF"})
"""States in which supervisord considers a process running and ``stopProcess`` applies."""

_ALIVE_STATES = frozenset({"RUNNING", "STARTING", "STOPPING"})

# supervisor.xmlrpc.Faults: code -> name, so errors name the fault as supervisord does.
FAULTS = {
    1: "UNKNOWN_METHOD",
    2: "INCORRECT_PARAMETERS",
    3: "BAD_ARGUMENTS",
    4: "SIGNATURE_UNSUPPORTED",
    6: "SHUTDOWN_STATE",
    10: "BAD_NAME",
    11: "BAD_SIGNAL",
    20: "NO_FILE",
    21: "NOT_EXECUTABLE",
    30: "FAILED",
    40: "ABNORMAL_TERMINATION",
    50: "SPAWN_ERROR",
    60: "ALREADY_STARTED",
    70: "NOT_RUNNING",
    80: "SUCCESS",
    90: "ALREADY_ADDED",
    91: "STILL_RUNNING",
    92: "CANT_REREAD",
}
NON_RETRYABLE_FAULTS = frozenset({"BAD_NAME"})
"""Faults a retry cannot cure: the catalog names a program supervisord does not have."""


class SupervisorFaultError(ProcessControlError):
    """supervisord answered with an XML-RPC fault; ``fault`` is its name (``BAD_NAME``)."""

    def __init__(self, fault: str, method: str, name: str, detail: str) -> None:
        self.fault = fault
        self.method = method
        self.name = name
        super().__init__(f"supervisord {method}({name}) failed: {fault} ({detail})")


class SupervisorAuthError(ProcessControlError):
    """supervisord refused the login (HTTP 401): no retry can cure it, only the credentials."""


@dataclass(frozen=True)
class ProcessInfo:
    """What process control knows about one program."""

    name: str
    state: str
    """supervisord's statename: RUNNING, STOPPED, EXITED, FATAL, STARTING, STOPPING, ..."""
    pid: int | None
    """The running process's pid; None when nothing runs."""
    exitstatus: int | None
    """Exit status of the last run; None while running or when it never ran."""
    description: str
    uptime_s: float | None = None
    """Seconds since supervisord started the process (by its own clock); None when not alive."""


class ProcessController(ABC):
    """A process-control backend; every method is idempotent and safe to retry."""

    @abstractmethod
    async def info(self, url: str, name: str) -> ProcessInfo:
        """The current state of program ``name`` at the controller reached by ``url``."""

    @abstractmethod
    async def stop(self, url: str, name: str) -> ProcessResult:
        """Make sure ``name`` is not running; action "stop" if it was, else "none"."""

    @abstractmethod
    async def start(self, url: str, name: str) -> ProcessResult:
        """Make sure ``name`` was started; action "start" if this call started it, else "none".

        Raises ``ProcessExitedError`` when the process died during its start.
        """

    async def signal(self, url: str, name: str, sig: str) -> int | None:
        """Send ``sig`` (by name: ``KILL``, ``STOP``, ``CONT``) to ``name``'s running process.

        Returns the pid signalled, or None when nothing runs (nothing to signal), so sending
        the same signal again is as safe as the signal itself. Not abstract, so backends that
        have no signals need not say so: they raise ``ProcessControlError`` here.
        """
        raise ProcessControlError(f"{type(self).__name__} cannot signal {name} ({sig})")


class SupervisorController(ProcessController):
    """supervisord over its XML-RPC API (``url`` is e.g. ``http://127.0.0.1:9001/RPC2``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        timeout_s: float = 30.0,
        credentials: Credentials | None = None,
    ) -> None:
        """Use ``http`` for every call; ``timeout_s`` bounds one call, including a stop's wait.

        ``credentials``: sent as HTTP basic auth on every call (supervisord's ``username`` and
        ``password``); None sends none.
        """
        self._http = http
        self._timeout_s = timeout_s
        self._auth = (
            httpx.BasicAuth(credentials.username, credentials.password)
            if credentials is not None
            else None
        )

    async def info(self, url: str, name: str) -> ProcessInfo:
        """``supervisor.getProcessInfo``; read-only, so trivially safe to retry."""
        raw = await self._call(url, "supervisor.getProcessInfo", name)
        running = raw["statename"] in _ALIVE_STATES
        return ProcessInfo(
            name=raw["name"],
            state=raw["statename"],
            pid=raw["pid"] or None,
            exitstatus=None if running or not raw["start"] else raw["exitstatus"],
            description=raw["description"],
            uptime_s=float(raw["now"] - raw["start"]) if running and raw["start"] else None,
        )

    async def stop(self, url: str, name: str) -> ProcessResult:
        """Stop ``name`` and wait until supervisord reports it stopped.

        Idempotent: a process that is not running (or is stopped by a concurrent call, which
        supervisord reports as NOT_RUNNING) yields action "none", so a retry after a lost
        answer succeeds. A SIGSTOPped (hung) process is sent SIGCONT first, so it acts on
        SIGTERM; one that ignores SIGTERM is SIGKILLed by supervisord after ``stopwaitsecs``.
        ``pid`` is the pid that was stopped.
        """
        before = await self.info(url, name)
        action = "none"
        if before.state in RUNNING_STATES:
            await self._continue(url, name)
            try:
                await self._call(url, "supervisor.stopProcess", name, True)
                action = "stop"
            except SupervisorFaultError as exc:
                if exc.fault != "NOT_RUNNING":
                    raise
        after = await self._settled(url, name)
        return ProcessResult(action, before.state, after.state, before.pid)

    async def start(self, url: str, name: str) -> ProcessResult:
        """Start ``name``; ALREADY_STARTED is success with action "none", so retrying is safe.

        With ``startsecs=0`` supervisord calls a process RUNNING as soon as it is spawned, so a
        process that crashes right after its start may still show RUNNING here and EXITED a
        moment later: the returned ``state_after`` is a snapshot, not a promise. Whether it
        stays up is for the caller's health check to decide. ``pid`` is the new process's pid.
        """
        before = await self.info(url, name)
        try:
            await self._call(url, "supervisor.startProcess", name, True)
            action = "start"
        except SupervisorFaultError as exc:
            if exc.fault == "ALREADY_STARTED":
                action = "none"
            elif exc.fault in ("SPAWN_ERROR", "ABNORMAL_TERMINATION"):
                info = await self.info(url, name)
                raise ProcessExitedError(
                    f"{name} did not stay up ({exc.fault}): state {info.state}, "
                    f"exit status {info.exitstatus}, {info.description or 'no description'}"
                ) from exc
            else:
                raise
        after = await self.info(url, name)
        return ProcessResult(action, before.state, after.state, after.pid)

    async def signal(self, url: str, name: str, sig: str) -> int | None:
        """``supervisor.signalProcess``; a process that is not running yields None.

        The pid is read just before the signal, for the record: a process restarted in the
        moment between the two is signalled under its new pid while the old one is returned.
        """
        before = await self.info(url, name)
        if before.state not in _ALIVE_STATES:
            return None
        try:
            await self._call(url, "supervisor.signalProcess", name, sig)
        except SupervisorFaultError as exc:
            if exc.fault == "NOT_RUNNING":  # it exited between the two calls
                return None
            raise
        return before.pid

    async def _continue(self, url: str, name: str) -> None:
        # SIGTERM stays pending on a stopped process; SIGCONT lets it shut down cleanly.
        try:
            await self._call(url, "supervisor.signalProcess", name, "CONT")
        except SupervisorFaultError as exc:
            if exc.fault not in ("NOT_RUNNING", "BAD_SIGNAL"):
                raise

    async def _settled(self, url: str, name: str) -> ProcessInfo:
        """The process's info once it is no longer STOPPING (a concurrent stop may be on)."""
        deadline = time.monotonic() + self._timeout_s
        info = await self.info(url, name)
        while info.state == "STOPPING" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            info = await self.info(url, name)
        return info

    async def _call(self, url: str, method: str, name: str, *args: Any) -> Any:
        body = xmlrpc.client.dumps((name, *args), methodname=method)
        try:
            resp = await self._http.post(
                url,
                content=body.encode(),
                headers={"content-type": "text/xml"},
                timeout=self._timeout_s,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise ProcessControlError(
                f"supervisord at {url} unreachable for {method}({name}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if resp.status_code == 401 and self._auth is not None:
            raise SupervisorAuthError(
                f"supervisord at {url} refused the credentials (HTTP 401): "
                f"check {SUPERVISOR_CREDENTIALS_ENV}"
            )
        if resp.status_code == 401:
            raise SupervisorAuthError(
                f"supervisord at {url} requires credentials (HTTP 401) and drc has none: set "
                f"{SUPERVISOR_CREDENTIALS_ENV} (a mode-0600 file holding user:password)"
            )
        if resp.status_code != 200:
            raise ProcessControlError(
                f"supervisord at {url} answered HTTP {resp.status_code} to {method}({name})"
            )
        try:
            (result,), _ = xmlrpc.client.loads(resp.content)
        except xmlrpc.client.Fault as fault:
            name_of_fault = FAULTS.get(fault.faultCode, str(fault.faultCode))
            raise SupervisorFaultError(name_of_fault, method, name, fault.faultString) from None
        except Exception as exc:  # malformed XML from something that is not supervisord
            raise ProcessControlError(
                f"supervisord at {url} gave an unreadable answer to {method}({name}): {exc}"
            ) from exc
        return result


class ProcessActivities:
    """The process-control activities; built once per worker around one controller."""

    def __init__(self, controller: ProcessController) -> None:
        self._controller = controller

    @activity.defn(name="stop_process")
    @heartbeating
    async def stop_process(self, inp: ProcessInput) -> ProcessResult:
        """Stop the process; idempotent (stopping a stopped process is action "none").

        Fails with ApplicationError type "ProcessControl", non-retryable only for an unknown
        program (BAD_NAME) or a login supervisord refuses (HTTP 401).
        """
        try:
            result = await self._controller.stop(inp.supervisor_url, inp.process)
        except ProcessControlError as exc:
            raise to_application_error(exc) from exc
        activity.logger.info(
            "stop %s: %s (%s -> %s)",
            inp.process,
            result.action,
            result.state_before,
            result.state_after,
        )
        return result

    @activity.defn(name="start_process")
    @heartbeating
    async def start_process(self, inp: ProcessInput) -> ProcessResult:
        """Start the process; idempotent (starting a running process is action "none").

        Fails with non-retryable ApplicationError type "ProcessExited" when the process dies
        during its start (retrying the same start would crash the same way), and type
        "ProcessControl" otherwise (retryable unless the program is unknown or the login
        refused).
        """
        try:
            result = await self._controller.start(inp.supervisor_url, inp.process)
        except ProcessControlError as exc:
            raise to_application_error(exc) from exc
        activity.logger.info(
            "start %s: %s (%s -> %s, pid %s)",
            inp.process,
            result.action,
            result.state_before,
            result.state_after,
            result.pid,
        )
        return result


def to_application_error(exc: ProcessControlError) -> ApplicationError:
    """The ``ApplicationError`` a process-control failure becomes at the activity boundary.

    Non-retryable: a process that exited on its start, an unknown program, a refused login.
    """
    if isinstance(exc, ProcessExitedError):
        return ApplicationError(str(exc), type="ProcessExited", non_retryable=True)
    if isinstance(exc, SupervisorAuthError):
        return ApplicationError(str(exc), type="ProcessControl", non_retryable=True)
    fault = exc.fault if isinstance(exc, SupervisorFaultError) else None
    return ApplicationError(
        str(exc), type="ProcessControl", non_retryable=fault in NON_RETRYABLE_FAULTS
    )
