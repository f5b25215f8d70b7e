"""The chaos fault activities: inject a fault on its targets (``chaos_inject``), undo it.

Each fault acts through what the platform already has: supervisord's signals and starts
(KILL, HANG, REGION_STOP), the demo services' marker files (REGION_STOP's fail markers, the
LATENCY and ERRORS fault switch), an iptables rule on loopback (NETCUT) and ``REPLICAOF``
(REPLICATION_BREAK). Every inject and every undo brings its targets to a state instead of
applying a change, so Temporal may retry either after a lost answer, and the ChaosExperiment
saga may undo a fault whose inject failed half-way or never ran.

An undo leaves alone what drc changed since the inject: a replica drc restarted is not
started twice, a Redis replica drc re-pointed or promoted is not pointed back.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.process_control import RUNNING_STATES, ProcessController, to_application_error
from activities.state.base import Endpoint
from activities.state.errors import StateError, redis_errors
from activities.state.errors import to_application_error as state_application_error
from activities.state.redis_info import read_info

# The demo's own layout (activities may import demo: see the contracts in pyproject.toml),
# so the markers written here are the ones demo/platform.py's programs read.
from demo.platform import marker_path
from drc.chaos import NEEDS_PROCESS, FaultInput, FaultKind, FaultResult, FaultTarget
from drc.errors import ProcessControlError, ProcessExitedError
from drc.names import CHAOS_INJECT, CHAOS_UNDO

NOWHERE = Endpoint("127.0.0.1", 1)
"""Where REPLICATION_BREAK points a replica: port 1 on loopback (tcpmux, long obsolete), a
privileged port that neither the demo nor a Debian host listens on, so every connect is
refused at once and the link stays down. A fixed endpoint of its own, so the undo
can tell a replica this fault broke from one drc has re-pointed or promoted since."""

KILL_SETTLE_S = 10.0
"""How long an inject waits for supervisord to see a SIGKILLed process gone."""
IPTABLES_TIMEOUT_S = 15.0
"""Bound on one iptables command, which itself waits up to 5 s for the xtables lock."""
REDIS_TIMEOUT_S = 2.0
"""Bound on a connect and on a command to a Redis target."""

Step = Callable[[FaultInput], Awaitable[list[str]]]
"""An inject or an undo: one clause per target saying what was done."""


class FaultActivities:
    """The chaos fault activities; built once per worker around its process controller."""

    def __init__(self, controller: ProcessController, home: Path) -> None:
        """Signal and start through ``controller``; find the demo's markers under ``home``."""
        self._controller = controller
        self._home = home
        self._inject: dict[FaultKind, Step] = {
            FaultKind.KILL: self._per_target(self._kill),
            FaultKind.HANG: self._per_target(self._hang),
            FaultKind.REGION_STOP: self._per_target(self._region_stop),
            FaultKind.LATENCY: self._per_target(self._slow),
            FaultKind.ERRORS: self._per_target(self._fail_share),
            FaultKind.NETCUT: self._per_target(self._cut),
            FaultKind.REPLICATION_BREAK: self._per_target(self._break),
        }
        self._undo: dict[FaultKind, Step] = {
            FaultKind.KILL: self._per_target(self._start),
            FaultKind.HANG: self._per_target(self._continue),
            FaultKind.REGION_STOP: self._region_start,
            FaultKind.LATENCY: self._per_target(self._switch_off("latency")),
            FaultKind.ERRORS: self._per_target(self._switch_off("errors")),
            FaultKind.NETCUT: self._per_target(self._uncut),
            FaultKind.REPLICATION_BREAK: self._per_target(self._reattach),
        }

    @activity.defn(name=CHAOS_INJECT)
    @heartbeating
    async def chaos_inject(self, inp: FaultInput) -> FaultResult:
        """Inject ``inp.kind`` on every target; ``detail`` says what was done to each.

        Idempotent: each fault brings its target to a state (killed, stopped, marker written,
        rule present, replica pointed nowhere), checking first where the check is not free,
        so a retry or a second inject finds the work done and says so. Refusals a retry cannot
        cure (a target without a program, iptables missing or not permitted, a Redis primary
        as target) are non-retryable ApplicationErrors naming the replica; supervisord or
        Redis unreachable stay retryable.
        """
        return await self._run("inject", inp, self._inject)

    @activity.defn(name=CHAOS_UNDO)
    @heartbeating
    async def chaos_undo(self, inp: FaultInput) -> FaultResult:
        """Undo ``inp.kind`` on every target (``drc.chaos.UNDO``); same input as the inject.

        Idempotent and safe without an inject before it (a saga compensation): each undo
        acts only while the fault's trace is there (a process not running, a marker, a rule,
        a replica pointed nowhere) and leaves what drc has changed since alone; HANG's
        SIGCONT goes to whatever runs, which is harmless to a process that is not stopped.
        REGION_STOP reports a start that failed in ``detail`` and raises only when every
        start failed (non-retryable "ProcessExited": the same starts would fail the same way).
        """
        return await self._run("undo", inp, self._undo)

    async def _run(self, verb: str, inp: FaultInput, steps: dict[FaultKind, Step]) -> FaultResult:
        refusals = [r for t in inp.targets if (r := _refusal(inp, t)) is not None]
        if refusals:
            raise ApplicationError(
                f"cannot {verb} {inp.kind}: {'; '.join(refusals)}",
                type="ChaosTarget",
                non_retryable=True,
            )
        clauses = await steps[inp.kind](inp)
        detail = "; ".join(clauses) or "no targets: nothing to do"
        activity.logger.info("chaos %s %s (run %s): %s", verb, inp.kind, inp.run, detail)
        return FaultResult(inp.kind, detail, time.time())

    def _per_target(self, act: Callable[[FaultInput, FaultTarget], Awaitable[str]]) -> Step:
        async def step(inp: FaultInput) -> list[str]:
            clauses = []
            for target in inp.targets:
                try:
                    clauses.append(await act(inp, target))
                except (ProcessControlError, StateError) as exc:
                    raise _failure(target, exc) from exc
            return clauses

        return step

    # KILL, HANG: supervisord's signals.

    async def _kill(self, inp: FaultInput, t: FaultTarget) -> str:
        pid = await self._sigkill(inp.supervisor_url, _program(t))
        if pid is None:
            return f"{t.replica} was not running: nothing to kill"
        return f"SIGKILLed {t.replica} (pid {pid})"

    async def _sigkill(self, url: str, program: str) -> int | None:
        """SIGKILL, then wait until supervisord has seen the process go (an undo may follow)."""
        pid = await self._controller.signal(url, program, "KILL")
        deadline = time.monotonic() + KILL_SETTLE_S
        while pid is not None and (await self._controller.info(url, program)).pid == pid:
            if time.monotonic() > deadline:  # retryable: a retry sends SIGKILL again
                raise ProcessControlError(f"{program} (pid {pid}) still runs after SIGKILL")
            await asyncio.sleep(0.05)
        return pid

    async def _start(self, inp: FaultInput, t: FaultTarget) -> str:
        info = await self._controller.info(inp.supervisor_url, _program(t))
        if info.state in RUNNING_STATES:
            return f"{t.replica} is {info.state} (pid {info.pid}): nothing to start"
        result = await self._controller.start(inp.supervisor_url, _program(t))
        if result.action == "none":
            return f"{t.replica} was started meanwhile (pid {result.pid}): nothing to start"
        return f"started {t.replica} (pid {result.pid})"

    async def _hang(self, inp: FaultInput, t: FaultTarget) -> str:
        pid = await self._controller.signal(inp.supervisor_url, _program(t), "STOP")
        if pid is None:
            return f"{t.replica} was not running: nothing to stop"
        return f"SIGSTOPped {t.replica} (pid {pid})"

    async def _continue(self, inp: FaultInput, t: FaultTarget) -> str:
        # A process drc killed and started again is continued too: harmless, it runs.
        pid = await self._controller.signal(inp.supervisor_url, _program(t), "CONT")
        if pid is None:
            return f"{t.replica} was not running: nothing to continue"
        return f"SIGCONTed {t.replica} (pid {pid})"

    # REGION_STOP: fail markers, so that nothing of the region starts, and SIGKILL.

    async def _region_stop(self, inp: FaultInput, t: FaultTarget) -> str:
        # The marker first: from then on a start (drc's, or a retry's) exits 3 at once.
        _write(self._marker(t.replica, must_exist=True), f"chaos run {inp.run}\n")
        pid = await self._sigkill(inp.supervisor_url, _program(t))
        if pid is None:
            return f"set {t.replica}'s fail marker ({t.replica} was not running)"
        return f"set {t.replica}'s fail marker and SIGKILLed it (pid {pid})"

    async def _region_start(self, inp: FaultInput) -> list[str]:
        # Every marker goes before any start: a replica's start may need another one up.
        removed = [_remove(self._marker(t.replica)) for t in inp.targets]
        clauses, failed = [], 0
        for target, was_there in zip(inp.targets, removed, strict=True):
            marker = f"removed {target.replica}'s" if was_there else f"{target.replica} had no"
            try:
                started = await self._start(inp, target)
            except ProcessExitedError as exc:
                failed += 1
                started = f"could not start {target.replica}: {exc}"
            except ProcessControlError as exc:
                raise _failure(target, exc) from exc
            clauses.append(f"{marker} fail marker, {started}")
        if inp.targets and failed == len(inp.targets):
            raise ApplicationError(
                f"every start failed: {'; '.join(clauses)}",
                type="ProcessExited",
                non_retryable=True,
            )
        return clauses

    # LATENCY, ERRORS: the demo services' fault switch (demo/services/faults.py).

    async def _slow(self, inp: FaultInput, t: FaultTarget) -> str:
        _write(self._marker(f"{t.replica}.latency", must_exist=True), f"{inp.latency_ms:g}\n")
        return f"slowed {t.replica} by {inp.latency_ms:g} ms"

    async def _fail_share(self, inp: FaultInput, t: FaultTarget) -> str:
        _write(self._marker(f"{t.replica}.errors", must_exist=True), f"{inp.error_share:g}\n")
        return f"made {t.replica} answer {inp.error_share:.0%} of requests with 500"

    def _switch_off(self, switch: str) -> Callable[[FaultInput, FaultTarget], Awaitable[str]]:
        """The undo of a fault switch: remove ``<replica>.<switch>`` (``latency``, ``errors``)."""
        what = {"latency": "latency", "errors": "error"}[switch]

        async def off(inp: FaultInput, t: FaultTarget) -> str:
            if _remove(self._marker(f"{t.replica}.{switch}")):
                return f"removed {t.replica}'s {what} marker"
            return f"{t.replica} had no {what} marker: nothing to remove"

        return off

    def _marker(self, name: str, must_exist: bool = False) -> Path:
        path = marker_path(self._home, name)
        if must_exist and not path.parent.is_dir():  # a wrong DRC_HOME would fault nothing
            raise ApplicationError(
                f"{name}: no marker directory {path.parent} (is DRC_HOME the demo's home?)",
                type="ChaosTarget",
                non_retryable=True,
            )
        return path

    # NETCUT: one iptables rule per target, tagged with the run and the replica.

    async def _cut(self, inp: FaultInput, t: FaultTarget) -> str:
        rule = _drop_rule(inp, t)
        if await _rule_present(t, rule):
            return f"{t.replica}'s port {_port(t)} was already cut: nothing to add"
        await _iptables(t, "-I", *rule)  # first in INPUT: no earlier ACCEPT lets it through
        return f"cut {t.replica}'s port {_port(t)} (iptables DROP on 127.0.0.1)"

    async def _uncut(self, inp: FaultInput, t: FaultTarget) -> str:
        rule, deleted = _drop_rule(inp, t), 0
        while await _rule_present(t, rule) and deleted < 100:  # bounded, whatever -D does
            await _iptables(t, "-D", *rule)
            deleted += 1
        if not deleted:
            return f"{t.replica}'s port {_port(t)} was not cut: nothing to delete"
        return f"restored {t.replica}'s port {_port(t)} (deleted {deleted} iptables rule(s))"

    # REPLICATION_BREAK: REPLICAOF nowhere, then REPLICAOF the primary again.

    async def _break(self, inp: FaultInput, t: FaultTarget) -> str:
        ep = Endpoint.parse(t.url)
        async with _redis(ep) as client:
            info = await read_info(client, ep)
            if info.role == "master":
                raise StateError(f"{ep} is a primary: REPLICAOF would demote it")
            if info.primary == NOWHERE:
                return f"{t.replica} already follows {NOWHERE}: nothing to break"
            await _replicaof(client, ep, NOWHERE)
        return (
            f"pointed {t.replica} at {NOWHERE}, where nothing listens (it followed {info.primary})"
        )

    async def _reattach(self, inp: FaultInput, t: FaultTarget) -> str:
        ep, primary = Endpoint.parse(t.url), Endpoint.parse(t.primary_url or "")
        async with _redis(ep) as client:
            info = await read_info(client, ep)
            if info.primary == NOWHERE:
                await _replicaof(client, ep, primary)
                return f"pointed {t.replica} back at its primary {primary}"
        if info.primary == primary:
            return f"{t.replica} follows its primary {primary}: nothing to undo"
        now = "is a primary" if info.role == "master" else f"follows {info.primary}"
        return f"{t.replica} {now} since the break (drc's doing): left alone"


def _refusal(inp: FaultInput, t: FaultTarget) -> str | None:
    """Why ``t`` cannot take ``inp.kind`` at all (a retry would not change it), or None."""
    if inp.kind in NEEDS_PROCESS and not t.process:
        return f"{t.replica} has no process-control program"
    if inp.kind is FaultKind.NETCUT and not _on_loopback(t):
        return f"{t.replica}: {t.url} is not a port on 127.0.0.1 (NETCUT cuts loopback only)"
    if inp.kind is FaultKind.REPLICATION_BREAK and not t.primary_url:
        return f"{t.replica} has no primary_url to re-attach it to"
    if inp.kind is FaultKind.LATENCY and not (math.isfinite(inp.latency_ms) and inp.latency_ms > 0):
        return f"{t.replica}: latency_ms must be above 0, not {inp.latency_ms}"
    if inp.kind is FaultKind.ERRORS and not 0 < inp.error_share <= 1:
        return f"{t.replica}: error_share must be within (0, 1], not {inp.error_share}"
    return None


def _program(t: FaultTarget) -> str:
    assert t.process is not None  # refused before any step runs (_refusal)
    return t.process


def _failure(t: FaultTarget, exc: ProcessControlError | StateError) -> ApplicationError:
    """The activity's error for ``exc``, retryable as its own module says, naming the replica."""
    if isinstance(exc, StateError):
        base = state_application_error(exc)
    else:
        base = to_application_error(exc)
    return ApplicationError(
        f"{t.replica}: {base.message}", type=base.type, non_retryable=base.non_retryable
    )


def _write(path: Path, text: str) -> None:
    # Atomic: the demo service reads the file on every request and must never see it empty.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _remove(path: Path) -> bool:
    """Remove ``path``; whether it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _port(t: FaultTarget) -> int:
    return urlsplit(t.url).port or 0


def _on_loopback(t: FaultTarget) -> bool:
    # The rule matches -d 127.0.0.1 only: a replica elsewhere would not be cut at all.
    try:
        return urlsplit(t.url).hostname in ("127.0.0.1", "localhost") and _port(t) > 0
    except ValueError:  # a port out of range
        return False


def _drop_rule(inp: FaultInput, t: FaultTarget) -> list[str]:
    comment = f"drc-chaos-{inp.run}-{t.replica}"
    return [
        *("INPUT", "-d", "127.0.0.1", "-p", "tcp", "--dport", str(_port(t))),
        *("-m", "comment", "--comment", comment, "-j", "DROP"),
    ]


async def _rule_present(t: FaultTarget, rule: list[str]) -> bool:
    rc, err = await _run_iptables(t, "-C", *rule)
    if rc == 0:
        return True
    if rc == 1 and not _denied(err):  # "Bad rule (does a matching rule exist ...)"
        return False
    raise _iptables_error(t, "-C", rc, err)


async def _iptables(t: FaultTarget, *args: str) -> None:
    rc, err = await _run_iptables(t, *args)
    if rc != 0:
        raise _iptables_error(t, args[0], rc, err)


async def _run_iptables(t: FaultTarget, *args: str) -> tuple[int, str]:
    """Run iptables (waiting up to 5 s for the xtables lock); its exit status and stderr."""
    found = shutil.which("iptables") or shutil.which("iptables", path="/usr/sbin:/sbin")
    if found is None:
        raise ApplicationError(
            f"{t.replica}: iptables is not installed (Debian package iptables)",
            type="NetcutUnavailable",
            non_retryable=True,
        )
    proc = await asyncio.create_subprocess_exec(
        found, "-w", "5", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), IPTABLES_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ApplicationError(
            f"{t.replica}: iptables {args[0]} took over {IPTABLES_TIMEOUT_S:g}s",
            type="NetcutFailed",
        ) from None
    return proc.returncode or 0, err.decode(errors="replace").strip()


def _denied(err: str) -> bool:
    return "Permission denied" in err or "must be root" in err


def _iptables_error(t: FaultTarget, op: str, rc: int, err: str) -> ApplicationError:
    if _denied(err):
        return ApplicationError(
            f"{t.replica}: iptables is not permitted here (needs root/CAP_NET_ADMIN): {err}",
            type="NetcutUnavailable",
            non_retryable=True,
        )
    return ApplicationError(
        f"{t.replica}: iptables {op} failed (exit {rc}): {err}", type="NetcutFailed"
    )


def _redis(ep: Endpoint) -> aioredis.Redis:
    """A client of its own per call: no retries (Temporal's policy is the retry)."""
    return aioredis.Redis(
        host=ep.host,
        port=ep.port,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


async def _replicaof(client: aioredis.Redis, ep: Endpoint, primary: Endpoint) -> None:
    # Redis answers OK, without dropping the link, when ep already follows ``primary``.
    with redis_errors(ep, f"REPLICAOF {primary}"):
        await client.execute_command("REPLICAOF", primary.host, str(primary.port))  # type: ignore[no-untyped-call]
