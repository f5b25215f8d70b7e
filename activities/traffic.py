"""Traffic management: put a replica in or out of rotation, read where traffic may go.

``TrafficManager`` is the backend interface; ``HAProxyRuntime`` drives HAProxy through its
runtime API (the ``stats socket``, which must be ``level admin`` for ``set server``).
``TrafficActivities`` exposes both operations to workflows. Setting a state is idempotent,
so Temporal may retry ``set_traffic`` safely.

Given a state file, ``HAProxyRuntime`` also saves HAProxy's server state there after every
change it makes; HAProxy loads that file when it (re)starts (``demo/haproxy.py``), so the
traffic state drc set survives HAProxy's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from drc.errors import DrcError


class TrafficState(StrEnum):
    """A server's administrative state, as HAProxy's ``set server ... state`` names it."""

    READY = "ready"
    """In rotation."""
    DRAIN = "drain"
    """No new clients (weight 0); existing connections and health checks continue."""
    MAINT = "maint"
    """Out of rotation: no traffic and no health checks."""


class TrafficError(DrcError):
    """The traffic manager refused an operation (unknown backend or server, no permission)."""


class TrafficUnreachableError(TrafficError):
    """The traffic manager could not be reached or did not answer in time; a retry may work."""


class TrafficStateNotSavedError(TrafficError):
    """A change was made but its state could not be saved for HAProxy's next start.

    Retryable: setting a state is idempotent, and a retry sets it and saves it again.
    """


@dataclass(frozen=True)
class ServerState:
    """One server of one backend, as the traffic manager reports it."""

    backend: str
    server: str
    admin: TrafficState
    """What operators (drc) decided: ready, drain or maint."""
    operational: str
    """What health checks found: "up", "down", "starting" or "stopping"."""
    address: str
    """``host:port`` the traffic manager sends this server's traffic to."""

    def __str__(self) -> str:
        return f"{self.backend}/{self.server} {self.admin} ({self.operational}, {self.address})"


class TrafficManager(ABC):
    """A traffic-manager backend; ``set_state`` is idempotent and safe to retry."""

    @abstractmethod
    async def set_state(self, backend: str, server: str, state: TrafficState) -> ServerState:
        """Put ``backend/server`` in ``state`` and return the state read back afterwards.

        Idempotent: setting the state a server already has is a success. Raises
        ``TrafficError`` naming the backend or server when either does not exist.
        """

    @abstractmethod
    async def servers(self, backend: str | None = None) -> list[ServerState]:
        """Every server of ``backend``, or of every backend when it is None."""


class UnconfiguredTrafficManager(TrafficManager):
    """Stands in where the catalog names no traffic manager: every call fails, saying why."""

    def __init__(self, reason: str) -> None:
        """Refuse every call with ``reason``."""
        self._reason = reason

    async def set_state(self, backend: str, server: str, state: TrafficState) -> ServerState:
        """Refuse: there is no traffic manager to set ``backend/server`` in."""
        raise TrafficError(f"cannot set {backend}/{server} to {state.value}: {self._reason}")

    async def servers(self, backend: str | None = None) -> list[ServerState]:
        """Refuse: there is no traffic manager to read."""
        raise TrafficError(f"cannot read servers: {self._reason}")


# HAProxy's server admin flags (include/haproxy/server-t.h, enum srv_admin).
_ADMF_FMAINT = 0x01  # forced into maintenance (``set server ... state maint``)
_ADMF_IMAINT = 0x02  # inherited maintenance from a tracked server
_ADMF_CMAINT = 0x04  # ``disabled`` in the configuration
_ADMF_FDRAIN = 0x08  # forced into drain (``set server ... state drain``)
_ADMF_IDRAIN = 0x10  # inherited drain from a tracked server
_ADMF_RMAINT = 0x20  # down because its address did not resolve
_ADMF_MAINT = _ADMF_FMAINT | _ADMF_IMAINT | _ADMF_CMAINT | _ADMF_RMAINT
_ADMF_DRAIN = _ADMF_FDRAIN | _ADMF_IDRAIN

# HAProxy's server operational states (enum srv_state).
_OP_STATES = {0: "down", 1: "starting", 2: "up", 3: "stopping"}

# What HAProxy accepts in proxy and server names; anything else could smuggle a second
# command into the line (``;`` separates commands, a newline ends one).
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


def admin_state(flags: int) -> TrafficState:
    """Map ``srv_admin_state`` bit flags to a state: any maintenance bit wins over drain."""
    if flags & _ADMF_MAINT:
        return TrafficState.MAINT
    if flags & _ADMF_DRAIN:
        return TrafficState.DRAIN
    return TrafficState.READY


def operational_state(code: int) -> str:
    """Map ``srv_op_state`` to "down", "starting", "up" or "stopping"."""
    return _OP_STATES.get(code, f"unknown({code})")


def parse_servers_state(
    text: str, in_maint: Callable[[str, str], bool] | None = None
) -> list[ServerState]:
    """Parse the answer to ``show servers state``, locating columns by the header's names.

    The answer is a format-version line, a ``# name name ...`` header, then one row per
    server. Raises ``TrafficError`` when the answer is not in that shape.

    HAProxy keeps the ``disabled`` keyword's flag (CMAINT) in this dump after ``set server
    ... state ready`` took the server out of maintenance (seen with 2.6: a promoted standby
    serving, ``show stat`` UP, still dumped as 4). A row whose only maintenance flag is that
    one is therefore decided by ``in_maint(backend, server)`` (``show stat``'s status) when
    given; without it such a row reads as maintenance.
    """
    result = []
    for row, line in _rows(text):
        try:
            result.append(
                ServerState(
                    backend=row["be_name"],
                    server=row["srv_name"],
                    admin=_admin(
                        row["be_name"], row["srv_name"], int(row["srv_admin_state"]), in_maint
                    ),
                    operational=operational_state(int(row["srv_op_state"])),
                    address=f"{row['srv_addr']}:{row['srv_port']}",
                )
            )
        except (KeyError, ValueError) as exc:
            raise TrafficError(f"unreadable servers state row {line!r}: {exc}") from None
    return result


def _rows(text: str) -> list[tuple[dict[str, str], str]]:
    """Each server row of ``show servers state`` by column name, with the line it came from."""
    lines = [line for line in text.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.startswith("#")), None)
    if header_at is None:
        raise TrafficError(f"HAProxy's servers state has no header line: {text.strip()!r}")
    columns = lines[header_at].lstrip("#").split()
    needed = ("be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_port")
    missing = [name for name in needed if name not in columns]
    if missing:
        raise TrafficError(f"HAProxy's servers state lacks columns {missing}")
    return [
        (dict(zip(columns, line.split(), strict=False)), line) for line in lines[header_at + 1 :]
    ]


def _admin(
    backend: str, server: str, flags: int, in_maint: Callable[[str, str], bool] | None
) -> TrafficState:
    if in_maint is None or not config_maint_only(flags):
        return admin_state(flags)
    return TrafficState.MAINT if in_maint(backend, server) else admin_state(flags & ~_ADMF_CMAINT)


def config_maint_only(flags: int) -> bool:
    """Whether ``disabled`` in the configuration is the row's only maintenance flag."""
    return flags & _ADMF_MAINT == _ADMF_CMAINT


def parse_stat_maint(text: str) -> set[tuple[str, str]]:
    """``(backend, server)`` of every server ``show stat`` reports in maintenance."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        raise TrafficError(f"HAProxy's stats have no header line: {text[:200]!r}")
    columns = lines[0].lstrip("# ").split(",")
    try:
        px, sv, status = columns.index("pxname"), columns.index("svname"), columns.index("status")
    except ValueError:
        raise TrafficError("HAProxy's stats lack pxname, svname or status") from None
    found = set()
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) > status and fields[status].startswith("MAINT"):
            found.add((fields[px], fields[sv]))
    return found


class HAProxyRuntime(TrafficManager):
    """HAProxy's runtime API on a UNIX socket: one command per connection, read to EOF."""

    def __init__(
        self, socket_path: Path | str, timeout_s: float = 5.0, state_file: Path | None = None
    ) -> None:
        """Talk to the stats socket at ``socket_path``; ``timeout_s`` bounds one command.

        With ``state_file``, every successful ``set_state`` also saves ``show servers state``
        there (HAProxy's ``server-state-file`` format) for HAProxy's next start.
        """
        self.socket_path = Path(socket_path)
        self._timeout_s = timeout_s
        self.state_file = state_file

    async def set_state(self, backend: str, server: str, state: TrafficState) -> ServerState:
        """``set server <backend>/<server> state <state>``, then read the server back.

        Idempotent: HAProxy accepts setting the state a server already has, so a retry after
        a lost answer succeeds. Leaving maintenance for ready or drain clears the forced
        maintenance; a state inherited from a tracked server stays and shows in the result.
        Raises ``TrafficError`` naming the backend or server when HAProxy does not know it.
        ``maint`` also shuts down the server's open sessions, which is idempotent too. With a
        state file, the change is saved before this returns (``save_state``); a failure to
        save raises ``TrafficStateNotSavedError`` (retryable: a retry sets and saves again),
        since a change HAProxy would forget at its next start is not done.
        """
        _check_name("backend", backend)
        _check_name("server", server)
        command = f"set server {backend}/{server} state {TrafficState(state).value}"
        answer = await self.command(command)
        if answer.strip():  # success is an empty answer; anything else is HAProxy refusing
            raise TrafficError(_refusal(answer, backend, server, command))
        if state is TrafficState.MAINT:
            # A fence must also cut the connections already open (pooled TCP clients of a
            # state store would otherwise keep writing to the fenced server).
            await self.command(f"shutdown sessions server {backend}/{server}")
        found = [s for s in await self.servers(backend) if s.server == server]
        if not found:
            raise TrafficError(f"HAProxy has no server {server!r} in backend {backend!r}")
        await self.save_state()
        return found[0]

    async def save_state(self) -> None:
        """Write ``show servers state`` to the state file, atomically; a no-op without one.

        Readers (HAProxy at start) see the old file or the new one, never a mix (temp file,
        then rename). Writers are serialized by an exclusive lock beside the file, across
        tasks and worker processes alike, and each dumps only once it holds the lock: so the
        last file written is the last dump taken, and no change saved by one writer is
        overwritten by another's older dump. Raises ``TrafficUnreachableError`` when HAProxy
        does not answer and ``TrafficStateNotSavedError`` when the file cannot be written.
        """
        if self.state_file is None:
            return
        path = self.state_file
        try:
            async with _locked(path.with_name(path.name + ".lock")):
                dump = await self.command("show servers state")
                if not dump.startswith("1\n"):  # the format version HAProxy loads
                    raise TrafficStateNotSavedError(f"HAProxy's server state was {dump!r}")
                await asyncio.to_thread(_replace_file, path, dump)
        except OSError as exc:
            why = f"cannot save HAProxy's state to {path}: {exc}"
            raise TrafficStateNotSavedError(why) from exc

    async def servers(self, backend: str | None = None) -> list[ServerState]:
        """``show servers state [<backend>]``; raises ``TrafficError`` for an unknown backend."""
        command = "show servers state"
        if backend is not None:
            _check_name("backend", backend)
            command += f" {backend}"
        answer = await self.command(command)
        if not answer.lstrip().startswith(("1", "#")):  # the format version, or the header
            raise TrafficError(_refusal(answer, backend, None, command))
        in_maint: Callable[[str, str], bool] | None = None
        flags = [row.get("srv_admin_state", "") for row, _ in _rows(answer)]
        if any(f.isdigit() and config_maint_only(int(f)) for f in flags):
            maint = parse_stat_maint(await self.command("show stat"))
            in_maint = lambda b, s: (b, s) in maint  # noqa: E731
        return parse_servers_state(answer, in_maint)

    async def command(self, command: str) -> str:
        """Send one runtime-API command and return HAProxy's whole answer.

        Raises ``TrafficUnreachableError`` when the socket cannot be reached or the answer
        does not arrive within the timeout.
        """
        try:
            async with asyncio.timeout(self._timeout_s):
                reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
                try:
                    writer.write(command.encode() + b"\n")
                    await writer.drain()
                    # Without "prompt", HAProxy answers one command and closes the connection.
                    answer = await reader.read()
                finally:
                    writer.close()
        except TimeoutError:
            raise TrafficUnreachableError(
                f"HAProxy at {self.socket_path} did not answer {command!r} "
                f"within {self._timeout_s}s"
            ) from None
        except OSError as exc:
            raise TrafficUnreachableError(
                f"HAProxy at {self.socket_path} unreachable for {command!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return answer.decode(errors="replace")


@contextlib.asynccontextmanager
async def _locked(lock_path: Path) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``; other tasks and processes wait for it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Polled, not blocked in a thread: a cancelled wait then holds nothing.
                await asyncio.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace_file(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise TrafficError(f"invalid HAProxy {kind} name {name!r}")


def _refusal(answer: str, backend: str | None, server: str | None, command: str) -> str:
    """A sentence naming what HAProxy did not know, or quoting what it said."""
    said = " ".join(answer.split())
    if said.startswith("No such server") and server is not None:
        return f"HAProxy has no server {server!r} in backend {backend!r} ({said})"
    if said.startswith(("No such backend", "Can't find backend")):
        return f"HAProxy has no backend {backend!r} ({said})"
    return f"HAProxy refused {command!r}: {said}"


@dataclass(frozen=True)
class SetTrafficInput:
    """Which server to put in which state."""

    backend: str
    server: str
    state: TrafficState


@dataclass(frozen=True)
class ReadTrafficInput:
    """Which backend to read; None reads every backend."""

    backend: str | None = None


@dataclass(frozen=True)
class ServerStateResult:
    """One server's state as the traffic manager reported it (mirrors ``ServerState``)."""

    backend: str
    server: str
    admin: TrafficState
    operational: str
    address: str

    @classmethod
    def of(cls, state: ServerState) -> ServerStateResult:
        """The result carrying ``state``."""
        return cls(state.backend, state.server, state.admin, state.operational, state.address)


class TrafficActivities:
    """The traffic activities; built once per worker around one traffic manager."""

    def __init__(self, manager: TrafficManager) -> None:
        self._manager = manager

    @activity.defn(name="set_traffic")
    async def set_traffic(self, inp: SetTrafficInput) -> ServerStateResult:
        """Put a server in a state and return the state read back; idempotent.

        Fails with non-retryable ApplicationError type "TrafficError" when the backend or
        server is unknown (or HAProxy refuses), and retryable type "TrafficUnreachable" when
        the traffic manager cannot be reached.
        """
        try:
            state = await self._manager.set_state(inp.backend, inp.server, inp.state)
        except TrafficError as exc:
            raise to_application_error(exc) from exc
        activity.logger.info("set %s/%s %s: now %s", inp.backend, inp.server, inp.state, state)
        return ServerStateResult.of(state)

    @activity.defn(name="read_traffic")
    async def read_traffic(self, inp: ReadTrafficInput) -> list[ServerStateResult]:
        """Every server of a backend (or of all backends); read-only, so safe to retry."""
        try:
            states = await self._manager.servers(inp.backend)
        except TrafficError as exc:
            raise to_application_error(exc) from exc
        return [ServerStateResult.of(s) for s in states]


def to_application_error(exc: TrafficError) -> ApplicationError:
    """The ``ApplicationError`` a traffic failure becomes at the activity boundary."""
    if isinstance(exc, TrafficUnreachableError):
        return ApplicationError(str(exc), type="TrafficUnreachable", non_retryable=False)
    if isinstance(exc, TrafficStateNotSavedError):
        return ApplicationError(str(exc), type="TrafficStateNotSaved", non_retryable=False)
    return ApplicationError(str(exc), type="TrafficError", non_retryable=True)
