"""Serve the recovery API with uvicorn until SIGINT/SIGTERM (``drc api``)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import uvicorn

from api.app import create_app
from api.auth import TOKEN_FILE, load_token
from drc.catalog import Catalog
from drc.settings import Settings
from drc.store import IncidentStore
from workers.connect import connect
from workers.heap import freeze_heap

log = logging.getLogger("drc.api")


def announce_token(settings: Settings) -> None:
    """Load the API token, generating it at first start; print a new one, once."""
    token, created = load_token(settings)
    if created:
        path = settings.home.resolve() / TOKEN_FILE
        print(
            f"drc api: generated an API token (name {token.name}, kept in {path}, mode 0600);\n"
            f"  it is printed this once: {token.secret}",
            flush=True,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve_api(settings: Settings, catalog: Catalog) -> None:
    """Connect, open the store, and serve on ``settings.api_host``:``api_port``."""
    announce_token(settings)
    token, _ = load_token(settings)
    client = await connect(settings)
    store = IncidentStore.open(settings.database_url, settings.home.resolve())
    if not is_loopback(settings.api_host):
        log.warning(
            "the API listens on %s (DRC_API_HOST): reads are open to that network; repairs "
            "still need the token",
            settings.api_host,
        )
    app = create_app(settings, catalog, client, store, token)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # drc's logging (JSON lines when not on a terminal)
        access_log=False,
        lifespan="on",
    )
    freezing = asyncio.create_task(freeze_heap())  # full collections paused it 35-165 ms
    try:
        await uvicorn.Server(config).serve()
    finally:
        freezing.cancel()
        store.close()
