"""The state runbook actions on a real Redis primary/replica pair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import AnyUrl
from redis.exceptions import ResponseError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.actions import ActionInput
from activities.state import RedisReplicator
from activities.state_actions import StateActions
from drc.catalog import Service
from drc.catalog_loader import parse_catalog
from tests.support.net import free_port
from tests.support.redis_server import start_redis


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Service, StateActions]]:
    primary = start_redis(tmp_path / "p")
    replica = start_redis(tmp_path / "r", replica_of=primary.port)
    replica.wait_link_up()
    service = parse_catalog(
        {
            "services": [
                {
                    "name": "order-state",
                    "redundancy": "active-standby",
                    "primary": "redis-a",
                    "replicas": [
                        {
                            "name": "redis-a",
                            "region": "ldn",
                            "url": f"redis://127.0.0.1:{primary.port}",
                        },
                        {
                            "name": "redis-b",
                            "region": "nyc",
                            "url": f"redis://127.0.0.1:{replica.port}",
                        },
                    ],
                }
            ]
        }
    ).services[0]
    state = RedisReplicator()
    try:
        yield service, StateActions(state)
    finally:
        await state.close()
        replica.stop()
        primary.stop()


async def run(service: Service, fn: object, action: str, **args: object) -> str:
    inp = ActionInput(
        action=action, args=dict(args), service=service, supervisor_url="", allowed_commands=[]
    )
    result = await ActivityEnvironment().run(fn, inp)  # type: ignore[arg-type]
    return str(result.summary)


def port(service: Service, name: str) -> int:
    replica = service.replica(name)
    assert replica is not None and replica.url.port is not None
    return replica.url.port


async def test_caught_up_passes_for_a_replica_in_sync(pair: tuple[Service, StateActions]) -> None:
    service, actions = pair
    said = await run(
        service,
        actions.caught_up,
        "state.caught_up",
        replica="redis-b",
        from_replica="redis-a",
        max_lag_ms=0,
    )
    assert said.startswith("redis-b has everything redis-a has (offset ")


async def test_caught_up_refuses_a_replica_that_is_behind(
    pair: tuple[Service, StateActions],
) -> None:
    service, actions = pair
    replica = aioredis.Redis(port=port(service, "redis-b"))
    await replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    await replica.aclose()
    primary = aioredis.Redis(port=port(service, "redis-a"))
    await primary.set("order:1", "acknowledged?")
    await primary.aclose()
    with pytest.raises(ApplicationError) as refused:
        await run(
            service,
            actions.caught_up,
            "state.caught_up",
            replica="redis-b",
            from_replica="redis-a",
            max_lag_ms=0,
        )
    assert refused.value.type == "GuardFailed" and refused.value.non_retryable
    assert refused.value.message.startswith(
        "redis-b is not caught up with redis-a (max_lag_on_failover 0 ms): "
    )
    forced = await run(
        service,
        actions.caught_up,
        "state.caught_up",
        replica="redis-b",
        from_replica="redis-a",
        max_lag_ms=-1,
    )
    assert forced == "redis-b not checked: forced by the operator"


async def test_fence_then_promote_then_follow(pair: tuple[Service, StateActions]) -> None:
    service, actions = pair
    await run(service, actions.fence, "state.fence", replica="redis-a")
    old = aioredis.Redis(port=port(service, "redis-a"))
    with pytest.raises(ResponseError, match="NOREPLICAS"):
        await old.set("after-fence", "refused")
    await run(service, actions.promote, "state.promote", replica="redis-b")
    await run(
        service,
        actions.replicate_from,
        "state.replicate_from",
        replica="redis-a",
        primary="redis-b",
    )
    await run(
        service,
        actions.wait_in_sync,
        "state.wait_in_sync",
        replica="redis-a",
        primary="redis-b",
        timeout_s=10,
    )
    new = aioredis.Redis(port=port(service, "redis-b"))
    await new.set("on-new-primary", "1")
    assert await new.get("on-new-primary") == b"1"
    await new.aclose()
    await old.aclose()


async def test_fencing_a_dead_primary_counts_as_fenced(pair: tuple[Service, StateActions]) -> None:
    service, actions = pair
    dead = service.model_copy(
        update={
            "replicas": (
                service.replicas[0].model_copy(
                    update={"url": AnyUrl(f"redis://127.0.0.1:{free_port()}")}
                ),
                service.replicas[1],
            )
        }
    )
    said = await run(dead, actions.fence, "state.fence", replica="redis-a")
    assert "does not answer, so takes no write" in said
