"""What every replica serves: a heartbeat that does no I/O, and a health check of its dependencies.

Also the one way a replica calls a dependency (``call_dependency``), so the order gateway and
``/health`` agree on what "a dependency answers" means.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from demo.services.faults import FAULTS, Faults, inject_faults
from demo.services.role import ROLE

HEALTH_TIMEOUT_S = 0.3
"""A dependency's heartbeat must answer within this, or ``/health`` counts it as down."""

CALL_TIMEOUT_S = 1.0
"""Per-URL budget of a real request to a dependency before the next URL is tried."""


@dataclass(frozen=True)
class ReplicaConfig:
    """Who this replica is and where its dependencies answer.

    ``depends`` maps a dependency's service kind to its URLs in order of preference.
    """

    service: str
    replica: str
    depends: Mapping[str, tuple[str, ...]]


class DependencyUnavailable(Exception):
    """No URL of a dependency answered; ``errors`` says why for each URL tried."""

    def __init__(self, kind: str, errors: list[str]) -> None:
        self.kind = kind
        self.errors = errors
        why = "; ".join(errors) if errors else "no URL configured (--depends)"
        super().__init__(f"{kind} unavailable: {why}")


CONFIG = web.AppKey("config", ReplicaConfig)
HTTP = web.AppKey("http", aiohttp.ClientSession)
STARTED = web.AppKey("started", float)


def create_app(config: ReplicaConfig, faults: Faults | None = None) -> web.Application:
    """An application with the health endpoints and an HTTP client for the dependencies.

    ``faults`` (demo/services/faults.py) slows or fails its requests while its markers exist.
    """
    app = web.Application(middlewares=[inject_faults])
    app[CONFIG] = config
    app[FAULTS] = faults or Faults()
    app[STARTED] = time.monotonic()
    app.cleanup_ctx.append(_http_client)
    app.router.add_get("/health/heartbeat", heartbeat)
    app.router.add_get("/health", health)
    return app


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        yield


async def heartbeat(request: web.Request) -> web.Response:
    """Answer at once: the heartbeat proves the process serves requests, nothing more."""
    config = request.app[CONFIG]
    return web.json_response(
        {
            "service": config.service,
            "replica": config.replica,
            "pid": os.getpid(),
            "role": request.app[ROLE].current if ROLE in request.app else None,
            "uptime_s": round(time.monotonic() - request.app[STARTED], 3),
        }
    )


async def health(request: web.Request) -> web.Response:
    """Probe every dependency URL's heartbeat concurrently.

    A dependency kind fails only when none of its URLs answers, since callers try them in
    order; each URL's own result is reported either way.
    """
    config = request.app[CONFIG]
    session = request.app[HTTP]
    urls = [(kind, url) for kind, kind_urls in config.depends.items() for url in kind_urls]
    results = await asyncio.gather(*(_heartbeat_of(session, url) for _, url in urls))
    dependencies = {url: result for (_, url), result in zip(urls, results, strict=True)}
    failed = {
        kind: "; ".join(f"{url}: {dependencies[url]}" for url in kind_urls)
        for kind, kind_urls in config.depends.items()
        if all(dependencies[url] != "ok" for url in kind_urls)
    }
    body: dict[str, Any] = {
        "service": config.service,
        "replica": config.replica,
        "status": "failing" if failed else "ok",
        "dependencies": dependencies,
    }
    if failed:
        body["failed"] = failed
        body["error"] = "; ".join(f"{kind} unreachable ({why})" for kind, why in failed.items())
    return web.json_response(body, status=503 if failed else 200)


async def _heartbeat_of(session: aiohttp.ClientSession, url: str) -> str:
    try:
        async with session.get(
            url + "/health/heartbeat", timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
        ) as resp:
            return "ok" if resp.status == 200 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return describe_error(exc, HEALTH_TIMEOUT_S)


async def call_dependency(
    app: web.Application, kind: str, method: str, path: str, json: Any = None
) -> tuple[int, Any]:
    """Send one request to the first URL of ``kind`` that answers; return (status, JSON body).

    A URL that refuses, times out or answers 5xx is skipped; a 4xx is an answer. Raises
    ``DependencyUnavailable`` naming every URL's error when none answers.
    """
    errors: list[str] = []
    for url in app[CONFIG].depends.get(kind, ()):
        try:
            async with app[HTTP].request(
                method, url + path, json=json, timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
            ) as resp:
                if resp.status >= 500:
                    errors.append(f"{url}: HTTP {resp.status}")
                    continue
                return resp.status, await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(f"{url}: {describe_error(exc, CALL_TIMEOUT_S)}")
    raise DependencyUnavailable(kind, errors)


def describe_error(exc: BaseException, timeout_s: float) -> str:
    """A short sentence for a failed request (``connection refused``, ``no answer within``)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {int(timeout_s * 1000)} ms"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect: {exc.os_error}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; ValueError (for a 400) when it is not JSON."""
    try:
        return await request.json()
    except ValueError:
        raise ValueError("the body is not valid JSON") from None
