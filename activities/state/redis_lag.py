"""Replication lag between a Redis primary and a replica, measured the pt-heartbeat way."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from activities.state.base import Endpoint, LagSample, heartbeat_key
from activities.state.errors import StateError, StateUnreachableError, redis_errors
from activities.state.redis_info import ClientFor, lag_sample

_POLL_S = 0.0005  # asyncio rounds timers to the selector's 1 ms, so polls are ~1 ms apart


class LagMeter:
    """Measures lag through the replicator's clients; holds no state of its own."""

    def __init__(self, client: ClientFor) -> None:
        self._client = client

    async def measure(self, primary: Endpoint, replica: Endpoint, timeout_ms: int) -> LagSample:
        """A sample with the primary answering, or the replica's own view when it does not.

        ``StateUnreachableError`` reaches here only from the primary: every read of the
        replica turns its failures into the sample's ``error``.
        """
        try:
            return await self._with_primary(primary, replica, timeout_ms)
        except StateUnreachableError as exc:
            replica_raw = await self._replica_info(replica, timeout_ms)
            return lag_sample(None, None, replica_raw, replica, str(exc))

    async def _with_primary(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> LagSample:
        # Connect to both first, so that the first sample does not count TCP handshakes as lag.
        with redis_errors(primary, "ping"):
            await self._client(primary).ping()
        error = await self._ping(replica, timeout_ms)
        lag_ms: float | None = None
        if error is None:
            lag_ms, error = await self._heartbeat(primary, replica, timeout_ms)
        with redis_errors(primary, "read replication info"):
            primary_raw: dict[str, Any] = await self._client(primary).info("replication")
        replica_raw = await self._replica_info(replica, timeout_ms)
        return lag_sample(lag_ms, primary_raw, replica_raw, replica, error)

    async def _ping(self, ep: Endpoint, timeout_ms: int) -> str | None:
        """None when ``ep`` answers PING within ``timeout_ms``, else why not."""
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                with redis_errors(ep, "ping"):
                    await self._client(ep).ping()
        except TimeoutError:
            return f"replica {ep} did not answer PING within {timeout_ms} ms"
        except StateError as exc:
            return str(exc)
        return None

    async def _heartbeat(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> tuple[float | None, str | None]:
        """Write the heartbeat and wait for it: (lag in ms, None) or (None, why not seen)."""
        value = f"{time.time() * 1000:.0f}-{uuid.uuid4().hex[:12]}".encode()
        written = time.monotonic()
        with redis_errors(primary, "write the heartbeat"):
            await self._client(primary).set(heartbeat_key(replica), value)
        try:
            seen = await self._poll_heartbeat(replica, value, written + timeout_ms / 1000)
        except StateError as exc:
            return None, str(exc)
        if seen is None:
            return None, f"heartbeat not seen on replica {replica} within {timeout_ms} ms"
        return (seen - written) * 1000, None

    async def _poll_heartbeat(
        self, replica: Endpoint, value: bytes, deadline: float
    ) -> float | None:
        """When ``replica`` first showed ``value``; None if not by ``deadline`` (monotonic).

        A deadline loop rather than a cancelled wait: cancelling a Redis command half-way
        was seen to leave the shared client unusable for later measurements. Each GET is
        bounded by the client's socket timeout.
        """
        client = self._client(replica)
        while time.monotonic() < deadline:
            with redis_errors(replica, "read the heartbeat"):
                got = await client.get(heartbeat_key(replica))
            if got == value:
                return time.monotonic()
            await asyncio.sleep(_POLL_S)
        return None

    async def _replica_info(self, replica: Endpoint, timeout_ms: int) -> dict[str, Any] | None:
        """The replica's ``INFO replication``; None when it does not answer.

        Bounded by ``timeout_ms`` because a stopped (SIGSTOP, swapping, overloaded) replica
        accepts the connection and never answers.
        """
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                with redis_errors(replica, "read replication info"):
                    raw: dict[str, Any] = await self._client(replica).info("replication")
        except (TimeoutError, StateError):
            return None
        return raw
