"""order-gateway: accepts orders after a quote and a risk check, and keeps them."""

from __future__ import annotations

import time
import uuid

from aiohttp import web
from redis.exceptions import RedisError

from demo.services.app import CONFIG, DependencyUnavailable, call_dependency, read_json
from demo.services.orders import (
    InMemoryOrderStore,
    NotAcknowledgedError,
    OrderStore,
    parse_order_request,
)
from demo.services.role import PRIMARY, ROLE

STORE = web.AppKey("order_store", OrderStore)


def add_routes(app: web.Application, store: OrderStore | None = None) -> None:
    """Serve ``POST /orders`` and ``GET /orders/{id}`` over ``store`` (in memory by default)."""
    app[STORE] = store or InMemoryOrderStore()
    app.router.add_post("/orders", place_order)
    app.router.add_get("/orders/{id}", get_order)


async def place_order(request: web.Request) -> web.Response:
    """201 with the stored order; 400, 422 (risk), 503 (a dependency is down, or a standby).

    Only the primary accepts orders: a standby answers 503 until it is promoted.
    """
    if request.app[ROLE].current != PRIMARY:
        return web.json_response({"error": "standby: not accepting orders"}, status=503)
    try:
        order = parse_order_request(await read_json(request))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    try:
        # The quote first: it is read-only, while an approved risk check books the position.
        status, quote = await call_dependency(
            request.app, "market-data", "GET", f"/quotes/{order.symbol}"
        )
        if status != 200:
            return web.json_response({"error": f"market-data: {quote}"}, status=422)
        status, risk = await call_dependency(
            request.app, "risk-engine", "POST", "/check", json=order.as_json()
        )
    except DependencyUnavailable as exc:
        return web.json_response({"error": str(exc), "dependency": exc.kind}, status=503)
    if status != 200 or not risk.get("approved"):
        reason = risk.get("reason") or risk.get("error") or f"HTTP {status}"
        return web.json_response({"error": "rejected by risk-engine", "reason": reason}, status=422)
    stored = {
        "id": uuid.uuid4().hex,
        **order.as_json(),
        "price": quote["ask"] if order.side == "buy" else quote["bid"],
        "status": "accepted",
        "gateway": request.app[CONFIG].replica,
        "created": time.time(),
    }
    try:
        await request.app[STORE].put(stored)
    except NotAcknowledgedError as exc:
        return web.json_response({"error": f"not acknowledged: {exc}"}, status=503)
    return web.json_response(stored, status=201)


async def get_order(request: web.Request) -> web.Response:
    """The stored order, or 404."""
    try:
        order = await request.app[STORE].get(request.match_info["id"])
    except RedisError as exc:
        return web.json_response({"error": f"state store unavailable: {exc}"}, status=503)
    if order is None:
        return web.json_response({"error": "no such order"}, status=404)
    return web.json_response(order)
