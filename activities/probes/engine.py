"""One probe engine per worker process, shared by every watch it runs."""

from __future__ import annotations

import asyncio
from types import TracebackType

from psycopg.conninfo import conninfo_to_dict

from activities.probes.http import HttpProber
from activities.probes.postgres import probe_postgres
from activities.probes.redis import probe_redis
from activities.probes.tcp import probe_redis_ping, probe_tcp
from drc.catalog import Check, HttpCheck, PostgresCheck, RedisCheck, Replica, TcpCheck
from drc.model import ProbeResult


class ProbeEngine:
    """Heartbeats, health probes and dependency checks over one shared HTTP session."""

    def __init__(self, http: HttpProber | None = None, source_address: str | None = None) -> None:
        self.http = http if http is not None else HttpProber(source_address=source_address)
        self.source_address = source_address

    async def heartbeat(self, replica: Replica, timeout_ms: int) -> ProbeResult:
        """GET the replica's heartbeat path (Redis: PING and role); cheap enough every interval.

        From a source address of its own (a vantage point), a Redis replica's heartbeat is a
        raw PING from that address: redis-py cannot bind a client's source address.
        """
        if replica.protocol == "redis":
            if self.source_address is not None:
                host, port = replica.url.host, replica.url.port
                assert host is not None and port is not None  # the catalog checks
                return await probe_redis_ping(host, port, timeout_ms, self.source_address)
            return await probe_redis(_redis_check(replica, timeout_ms))
        return await self.http.get(replica.endpoint(replica.heartbeat_path), timeout_ms)

    async def health(self, replica: Replica, timeout_ms: int) -> ProbeResult:
        """GET the replica's health path and run all its checks, concurrently.

        ok only when every part is ok; ``error`` names each failing part
        (``"/health: HTTP 503: ...; redis 127.0.0.1:6390: connection refused"``).
        ``latency_ms`` is the health GET's (for a Redis replica: its PING and INFO).
        """
        own = (
            probe_redis(_redis_check(replica, timeout_ms))
            if replica.protocol == "redis"
            else self.http.get(replica.endpoint(replica.health_path), timeout_ms)
        )
        results = await asyncio.gather(
            own,
            *(self.check(check) for check in replica.checks),
        )
        first = "redis" if replica.protocol == "redis" else replica.health_path
        labels = [first, *(check_label(check) for check in replica.checks)]
        parts = list(zip(labels, results, strict=True))
        errors = [f"{label}: {r.error}" for label, r in parts if not r.ok]
        details = [f"{label}: {r.detail}" for label, r in parts if r.detail]
        return ProbeResult(
            ok=not errors,
            latency_ms=results[0].latency_ms,
            error="; ".join(errors) or None,
            detail="; ".join(details) or None,
        )

    async def check(self, check: Check) -> ProbeResult:
        """Run one catalog check."""
        match check:
            case HttpCheck():
                return await self.http.get(str(check.url), check.timeout_ms, check.expect_status)
            case TcpCheck():
                return await probe_tcp(check.host, check.port, check.timeout_ms)
            case RedisCheck():
                return await probe_redis(check)
            case PostgresCheck():
                return await probe_postgres(check)
        raise TypeError(f"unknown check type: {type(check).__name__}")

    async def close(self) -> None:
        """Close the shared HTTP session."""
        await self.http.close()

    async def __aenter__(self) -> ProbeEngine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _redis_check(replica: Replica, timeout_ms: int) -> RedisCheck:
    assert replica.url.host is not None and replica.url.port is not None  # the catalog checks
    return RedisCheck(
        type="redis", host=replica.url.host, port=replica.url.port, timeout_ms=timeout_ms
    )


def check_label(check: Check) -> str:
    """How an error message names a check; never includes a password."""
    match check:
        case HttpCheck():
            return str(check.url)
        case TcpCheck():
            return f"tcp {check.host}:{check.port}"
        case RedisCheck():
            return f"redis {check.host}:{check.port}"
        case PostgresCheck():
            return f"postgres {_pg_where(check.dsn)}"
    raise TypeError(f"unknown check type: {type(check).__name__}")


def _pg_where(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # a malformed DSN still deserves a label; the probe reports it
        return "(unparsable dsn)"
    host = params.get("host", "localhost")
    port = params.get("port", 5432)
    return f"{host}:{port}/{params.get('dbname', '')}"
