"""The recovery API (FastAPI): ``create_app`` builds it; ``drc api`` and ``drc up`` serve it.

Reads answer from the background snapshot (``api.snapshot``) and the incident store; repairs
go through the monitors' own updates, as ``drc failover`` and ``drc restart`` do, with the
token's name as the operator on record.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.auth import ApiToken
from api.snapshot import Snapshot, SnapshotCache
from drc.catalog import Catalog, Service
from drc.settings import Settings
from drc.store import IncidentStore

RECENT_FAILURES_S = 3600.0
"""``GET /recovery/status`` lists the failures of the last hour."""


@dataclass
class ApiContext:
    """What every request shares: settings, catalog, Temporal, the store, the snapshot."""

    settings: Settings
    catalog: Catalog
    client: Client
    store: IncidentStore
    snapshots: SnapshotCache
    token: ApiToken

    def service(self, name: str) -> Service:
        """The catalog's service ``name``; 404 naming the known ones otherwise."""
        found = self.catalog.service(name)
        if found is None:
            known = ", ".join(s.name for s in self.catalog.services)
            raise HTTPException(404, f"unknown service {name!r} (known: {known})")
        return found

    def replica_of(self, service: str, replica: str) -> Service:
        """The service of ``replica``; 404 naming the service's replicas otherwise."""
        spec = self.service(service)
        if spec.replica(replica) is None:
            known = ", ".join(r.name for r in spec.replicas)
            raise HTTPException(404, f"{service} has no replica {replica!r} (known: {known})")
        return spec


def context(request: Request) -> ApiContext:
    """The app's context (set by its lifespan)."""
    found: ApiContext = request.app.state.drc
    return found


Context = Annotated[ApiContext, Depends(context)]

_bearer = HTTPBearer(
    auto_error=False, description="The API token (DRC_API_TOKEN or $DRC_HOME/api-token)."
)


def operator(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The token's name, for a request bearing the API's token; 401 otherwise."""
    if credentials is None:
        raise HTTPException(
            401,
            "a bearer token is needed (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if credentials.scheme.lower() != "bearer" or not ctx.token.matches(credentials.credentials):
        raise HTTPException(401, "the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return ctx.token.name


Operator = Annotated[str, Depends(operator)]


async def snapshot(ctx: Context) -> Snapshot:
    """The latest snapshot."""
    return await ctx.snapshots.get()


Live = Annotated[Snapshot, Depends(snapshot)]


def create_app(
    settings: Settings, catalog: Catalog, client: Client, store: IncidentStore, token: ApiToken
) -> FastAPI:
    """The API over an open client and store; the snapshot refresher runs with the app."""
    from api.dashboard import router as dashboard_router
    from api.metrics import router as metrics_router
    from api.routes import router

    snapshots = SnapshotCache(
        client,
        catalog,
        settings.watch_group_size,
        settings.home.resolve(),
        lambda: store.failures(time.time() - RECENT_FAILURES_S),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.drc = ApiContext(settings, catalog, client, store, snapshots, token)
        snapshots.start()
        try:
            yield
        finally:
            await snapshots.stop()

    app = FastAPI(
        title="drc recovery API",
        version="1",
        description="Status, failures, synchronization, incidents and chaos results of drc; "
        "failover, restart and scheduled switchover (bearer token).",
        lifespan=lifespan,
    )
    app.include_router(router)
    app.include_router(metrics_router)
    app.include_router(dashboard_router)
    return app
