"""Runbook actions on replicated state (Redis): fence, catch up, promote, follow, verify.

Each is an activity named ``action_state_*`` (see ``runbooks.actions``), taking the same
``ActionInput`` as every action; replicas are named by their catalog name and resolved to
their endpoints through the service in the input. A role change is persisted with
``CONFIG REWRITE`` where the server has a config file, so a restarted replica keeps the role
drc gave it. Like every action, each heartbeats while it runs (``activities.heartbeat``), so
a step whose worker died is retried elsewhere within seconds; each is idempotent.
"""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.actions import ActionInput, ActionResult
from activities.heartbeat import heartbeating
from activities.state import (
    Endpoint,
    LastSeen,
    StateError,
    StateReplicator,
    StateUnreachableError,
    judge_standby,
    to_application_error,
)
from drc.catalog import Service


class StateActions:
    """The state actions, around the worker's one ``StateReplicator``."""

    def __init__(self, replicator: StateReplicator) -> None:
        self._state = replicator

    def activities(self) -> list[Any]:
        """Every state action activity, for a worker's ``activities=``."""
        return [
            self.fence,
            self.unfence,
            self.caught_up,
            self.promote,
            self.replicate_from,
            self.repoint_standbys,
            self.wait_in_sync,
            self.verify_frontend,
        ]

    @activity.defn(name="action_state_fence")
    @heartbeating
    async def fence(self, inp: ActionInput) -> ActionResult:
        """Make the old primary refuse writes; idempotent (fencing twice is one fence).

        A primary that does not answer is already unable to take writes (HAProxy keeps it in
        maintenance, and process control stops it next), so that counts as fenced.
        """
        name, ep = _endpoint(inp, "replica")
        try:
            said = await self._state.fence(ep)
        except StateUnreachableError as exc:
            return ActionResult(
                inp.action, f"{name} ({ep}) does not answer, so takes no write: {exc}"
            )
        except StateError as exc:
            raise to_application_error(exc) from exc
        return ActionResult(inp.action, f"{name} ({ep}) refuses writes: {said}")

    @activity.defn(name="action_state_unfence")
    @heartbeating
    async def unfence(self, inp: ActionInput) -> ActionResult:
        """Let the replica take writes again (undoes ``fence``); idempotent."""
        name, ep = _endpoint(inp, "replica")
        try:
            said = await self._state.unfence(ep)
        except StateError as exc:
            raise to_application_error(exc) from exc
        return ActionResult(inp.action, f"{name} ({ep}) takes writes again: {said}")

    @activity.defn(name="action_state_caught_up")
    @heartbeating
    async def caught_up(self, inp: ActionInput) -> ActionResult:
        """Guard: the replica has every byte the (fenced) primary has, within ``max_lag_ms``.

        With the primary answering, wait until the replica's offset equals the primary's; a
        replica still behind after ``max_lag_ms`` (at least 200 ms, to let a fenced primary's
        last writes arrive) is refused with both offsets and the gap. A negative
        ``max_lag_ms`` is an operator's ``--force``: nothing is checked.

        With the primary not answering, the replica is judged by the evidence the monitor
        passes from its last sample of the primary alive (``primary_last_seen``, Unix seconds;
        ``min_offset``, the primary's offset then; ``replid``, its replication id then) and by
        what the replica says now: see ``activities.state.dead_primary.judge_standby``. No
        ``primary_last_seen`` (absent or 0) means no evidence, and is refused.

        Refusals are ``GuardFailed`` (non-retryable) with a sentence naming both replicas and
        the numbers. Only reads, so any retry is safe and sees the same or newer evidence.
        """
        name, replica = _endpoint(inp, "replica")
        old, primary = _endpoint(inp, "from_replica")
        max_lag_ms = _number(inp, "max_lag_ms", 0)
        if max_lag_ms < 0:
            return ActionResult(inp.action, f"{name} not checked: forced by the operator")
        try:
            await self._state.info(primary)
        except StateUnreachableError:
            return await self._dead_primary(inp, name, replica, old)
        try:
            sample = await self._state.wait_in_sync(primary, replica, max(int(max_lag_ms), 200))
        except StateError as exc:
            raise _guard_failed(
                f"{name} is not caught up with {old} (max_lag_on_failover {max_lag_ms:g} ms): {exc}"
            ) from exc
        return ActionResult(
            inp.action, f"{name} has everything {old} has (offset {sample.replica_offset})"
        )

    async def _dead_primary(
        self, inp: ActionInput, name: str, replica: Endpoint, old: str
    ) -> ActionResult:
        seen = LastSeen(
            at=_number(inp, "primary_last_seen", 0),
            offset=int(_number(inp, "min_offset", -1)),
            replid=str(inp.args.get("replid") or ""),
        )
        try:
            info = await self._state.info(replica)
        except StateError as exc:
            raise to_application_error(exc) from exc
        verdict = judge_standby(old, name, info, seen, time.time())
        if not verdict.ok:
            raise _guard_failed(verdict.reason)
        return ActionResult(inp.action, verdict.reason)

    @activity.defn(name="action_state_promote")
    @heartbeating
    async def promote(self, inp: ActionInput) -> ActionResult:
        """``REPLICAOF NO ONE`` (and unfenced); idempotent: a primary stays primary."""
        name, ep = _endpoint(inp, "replica")
        try:
            info = await self._state.promote(ep)
            await self._state.persist(ep)
        except StateError as exc:
            raise to_application_error(exc) from exc
        return ActionResult(inp.action, f"{name} ({ep}) promoted: role {info.role}")

    @activity.defn(name="action_state_replicate_from")
    @heartbeating
    async def replicate_from(self, inp: ActionInput) -> ActionResult:
        """``REPLICAOF <primary>``; idempotent: following the same primary twice is a no-op."""
        name, ep = _endpoint(inp, "replica")
        source, primary = _endpoint(inp, "primary")
        try:
            info = await self._state.replicate_from(ep, primary)
            await self._state.persist(ep)
        except StateError as exc:
            raise to_application_error(exc) from exc
        return ActionResult(inp.action, f"{name} ({ep}) now replicates {source}: role {info.role}")

    @activity.defn(name="action_state_repoint_standbys")
    @heartbeating
    async def repoint_standbys(self, inp: ActionInput) -> ActionResult:
        """The service's other standbys follow the new primary ``replica``.

        Idempotent: following the same primary twice is a no-op. A standby that does not
        answer (its host or region is gone) is skipped: it is not lost, only not yet protected.
        """
        source, primary = _endpoint(inp, "replica")
        skip = {source, inp.args.get("from_replica", "")}
        said: list[str] = []
        for other in inp.service.replicas:
            if other.name in skip or other.protocol != "redis":
                continue
            ep = replica_endpoint(inp.service, other.name)
            try:
                await self._state.replicate_from(ep, primary)
                await self._state.persist(ep)
            except StateError as exc:
                said.append(f"{other.name} skipped ({exc})")
            else:
                said.append(f"{other.name} follows {source}")
        return ActionResult(inp.action, "; ".join(said) or f"no other standby than {source}")

    @activity.defn(name="action_state_wait_in_sync")
    @heartbeating
    async def wait_in_sync(self, inp: ActionInput) -> ActionResult:
        """Wait until the replica's offset equals its primary's; read-only, safe to retry."""
        name, ep = _endpoint(inp, "replica")
        source, primary = _endpoint(inp, "primary")
        timeout_ms = int(float(inp.args.get("timeout_s", 60)) * 1000)
        try:
            sample = await self._state.wait_in_sync(primary, ep, timeout_ms)
        except StateError as exc:
            raise to_application_error(exc) from exc
        return ActionResult(
            inp.action, f"{name} in sync with {source} at offset {sample.replica_offset}"
        )

    @activity.defn(name="action_state_verify_frontend")
    @heartbeating
    async def verify_frontend(self, inp: ActionInput) -> ActionResult:
        """Write and read back a key through the service's front end; it leaves no key behind.

        Retried by its step's policy until the new primary takes writes.
        """
        if inp.service.frontend is None:
            raise ApplicationError(
                f"{inp.service.name} has no frontend to verify",
                type="NoFrontend",
                non_retryable=True,
            )
        ep = Endpoint.parse(inp.service.frontend)
        try:
            took = await self._state.write_and_read(ep)
        except StateError as exc:
            raise ApplicationError(f"write through {ep} failed: {exc}", type="StateError") from exc
        return ActionResult(inp.action, f"a write through {ep} was read back in {took:.1f} ms")


def _guard_failed(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="GuardFailed", non_retryable=True)


def _number(inp: ActionInput, arg: str, unknown: float) -> float:
    """``arg`` as a number; ``unknown`` when absent or empty (a rendered param with no value)."""
    value = inp.args.get(arg)
    if value is None or value == "":
        return unknown
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            f"{inp.action} needs a number for {arg}, not {value!r}",
            type="BadArgument",
            non_retryable=True,
        ) from exc


def _endpoint(inp: ActionInput, arg: str) -> tuple[str, Endpoint]:
    name = str(inp.args[arg])
    return name, replica_endpoint(inp.service, name)


def replica_endpoint(service: Service, name: str) -> Endpoint:
    """The host:port of a Redis replica of ``service``; non-retryable error if unknown."""
    replica = service.replica(name)
    if replica is None or replica.url.host is None or replica.url.port is None:
        known = ", ".join(r.name for r in service.replicas)
        raise ApplicationError(
            f"{service.name} has no Redis replica {name!r} (known: {known})",
            type="UnknownReplica",
            non_retryable=True,
        )
    return Endpoint(replica.url.host, replica.url.port)
