"""risk-engine: pre-trade checks against per-symbol position limits kept in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from demo.services.app import read_json
from demo.services.orders import OrderRequest, parse_order_request


@dataclass(frozen=True)
class Decision:
    """A risk decision and the sentence behind it."""

    approved: bool
    reason: str
    position: int


@dataclass
class RiskBook:
    """Net position per symbol; an approved check reserves its quantity."""

    max_order_qty: int = 10_000
    max_position: int = 50_000
    positions: dict[str, int] = field(default_factory=dict)

    def check(self, order: OrderRequest) -> Decision:
        """Approve ``order`` if it keeps the symbol within limits, and book it if so."""
        position = self.positions.get(order.symbol, 0)
        if order.qty > self.max_order_qty:
            return Decision(
                False, f"qty {order.qty} exceeds the per-order limit {self.max_order_qty}", position
            )
        after = position + (order.qty if order.side == "buy" else -order.qty)
        if abs(after) > self.max_position:
            return Decision(
                False,
                f"{order.symbol} position would be {after}, beyond ±{self.max_position}",
                position,
            )
        self.positions[order.symbol] = after
        return Decision(True, f"{order.symbol} position {after} within ±{self.max_position}", after)


RISK = web.AppKey("risk_book", RiskBook)


def add_routes(app: web.Application) -> None:
    """Serve ``POST /check``."""
    app[RISK] = RiskBook()
    app.router.add_post("/check", check)


async def check(request: web.Request) -> web.Response:
    """``{"approved", "reason", "position"}`` for a ``{"symbol","side","qty"}`` body; 400 if bad."""
    try:
        order = parse_order_request(await read_json(request))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    decision = request.app[RISK].check(order)
    return web.json_response(
        {"approved": decision.approved, "reason": decision.reason, "position": decision.position}
    )
