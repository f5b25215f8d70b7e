"""Orders as the demo services exchange them, and where the gateway keeps them."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,11}$")
SIDES = ("buy", "sell")


@dataclass(frozen=True)
class OrderRequest:
    """A validated request to trade ``qty`` of ``symbol``."""

    symbol: str
    side: str
    qty: int

    def as_json(self) -> dict[str, Any]:
        """The request as the JSON body the services exchange."""
        return asdict(self)


def valid_symbol(symbol: str) -> str | None:
    """The symbol in canonical (upper) case, or None when it is not a plausible ticker."""
    upper = symbol.upper()
    return upper if SYMBOL.match(upper) else None


def parse_order_request(data: Any) -> OrderRequest:
    """Validate a ``{"symbol", "side", "qty"}`` body; raise ValueError saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object with symbol, side and qty")
    symbol = data.get("symbol")
    side = data.get("side")
    qty = data.get("qty")
    canonical = valid_symbol(symbol) if isinstance(symbol, str) else None
    if canonical is None:
        raise ValueError(f"symbol must be a ticker like 'ACME', not {symbol!r}")
    if side not in SIDES:
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
    # bool is an int in Python; an order for True shares is a client bug.
    if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
        raise ValueError(f"qty must be a positive integer, not {qty!r}")
    return OrderRequest(canonical, side, qty)


class NotAcknowledgedError(Exception):
    """The store could not confirm the order durably: the client must not count it as placed."""


class OrderStore(ABC):
    """Where accepted orders live."""

    @abstractmethod
    async def put(self, order: dict[str, Any]) -> None:
        """Store ``order`` under ``order["id"]``; when this returns the order is acknowledged."""

    @abstractmethod
    async def get(self, order_id: str) -> dict[str, Any] | None:
        """The order with ``order_id``, or None."""


class InMemoryOrderStore(OrderStore):
    """Orders in a dict: lost with the process, which is what the Redis store will fix."""

    def __init__(self) -> None:
        self._orders: dict[str, dict[str, Any]] = {}

    async def put(self, order: dict[str, Any]) -> None:
        """Keep a copy of ``order``."""
        self._orders[order["id"]] = dict(order)

    async def get(self, order_id: str) -> dict[str, Any] | None:
        """A copy of the stored order, or None."""
        order = self._orders.get(order_id)
        return dict(order) if order is not None else None


class RedisOrderStore(OrderStore):
    """Orders in Redis, acknowledged only once a replica confirms them (``WAIT 1``).

    ``url`` is the state store's front end (HAProxy), so after a failover the same URL reaches
    the new primary. A write that no replica confirms within ``wait_ms`` raises
    ``NotAcknowledgedError``: the order may exist, but it was never acknowledged, so its loss in
    a failover loses nothing a client was promised.
    """

    def __init__(self, url: str, wait_ms: int = 500, timeout_s: float = 1.0) -> None:
        """Connect lazily to ``url`` (redis://host:port)."""
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=None,
            decode_responses=True,
        )
        self._wait_ms = wait_ms

    async def put(self, order: dict[str, Any]) -> None:
        """SET the order, then WAIT for one replica; raise NotAcknowledgedError otherwise."""
        try:
            await self._redis.set(f"order:{order['id']}", json.dumps(order))
            confirmed = await self._redis.wait(1, self._wait_ms)
        except RedisError as exc:
            raise NotAcknowledgedError(f"state store refused the order: {exc}") from exc
        if confirmed < 1:
            raise NotAcknowledgedError(f"no replica confirmed the order within {self._wait_ms} ms")

    async def get(self, order_id: str) -> dict[str, Any] | None:
        """The order, or None when the store has no such key."""
        raw = await self._redis.get(f"order:{order_id}")
        return json.loads(raw) if raw is not None else None

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
