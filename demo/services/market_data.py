"""market-data: quotes that move by a random walk per symbol."""

from __future__ import annotations

import math
import random
import time
import zlib
from typing import Any

from aiohttp import web

from demo.services.orders import valid_symbol


class QuoteBook:
    """Mid prices per symbol; every quote moves the mid one random step."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._mids: dict[str, float] = {}

    def quote(self, symbol: str) -> dict[str, Any]:
        """The next quote of ``symbol``: bid, ask, mid and a wall-clock timestamp."""
        # A stable starting price per symbol, so replicas quote roughly the same market.
        mid = self._mids.get(symbol, 50.0 + zlib.crc32(symbol.encode()) % 450)
        mid = max(0.01, mid * math.exp(self._rng.gauss(0.0, 0.001)))
        self._mids[symbol] = mid
        half_spread = max(0.005, mid * 0.0001)
        return {
            "symbol": symbol,
            "bid": round(mid - half_spread, 4),
            "ask": round(mid + half_spread, 4),
            "mid": round(mid, 4),
            "ts": time.time(),
        }


BOOK = web.AppKey("quote_book", QuoteBook)


def add_routes(app: web.Application) -> None:
    """Serve ``GET /quotes/{symbol}``."""
    app[BOOK] = QuoteBook()
    app.router.add_get("/quotes/{symbol}", get_quote)


async def get_quote(request: web.Request) -> web.Response:
    """A quote for the symbol, or 404 when the symbol is not a ticker."""
    symbol = valid_symbol(request.match_info["symbol"])
    if symbol is None:
        return web.json_response({"error": "unknown symbol"}, status=404)
    return web.json_response(request.app[BOOK].quote(symbol))
