"""The state runbook actions on a real Redis primary/replica pair."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import AnyUrl
from redis.exceptions import ResponseError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.state import RedisReplicator
from activities.state_actions import StateActions
from drc.catalog import Service
from drc.catalog_loader import parse_catalog
from drc.repair import ActionInput
from runbooks.runbook import load_builtin_runbooks
from tests.support.net import free_port
from tests.support.redis_server import RedisServer, start_redis


@dataclass
class Store:
    service: Service
    actions: StateActions
    primary: RedisServer
    replica: RedisServer


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
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
        yield Store(service, StateActions(state), primary, replica)
    finally:
        await state.close()
        replica.stop()
        primary.stop()


@pytest.fixture
def pair(store: Store) -> tuple[Service, StateActions]:
    return store.service, store.actions


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


# --- the caught-up guard with the old primary dead ------------------------------------------


@dataclass
class Evidence:
    """What the monitor passes: its last sample of redis-a while redis-a answered."""

    primary_last_seen: str
    min_offset: str
    replid: str


async def last_seen_alive(store: Store) -> Evidence:
    primary = aioredis.Redis(port=store.primary.port)
    try:
        info = await primary.info("replication")
    finally:
        await primary.aclose()
    return Evidence(f"{time.time():.3f}", str(info["master_repl_offset"]), info["master_replid"])


async def replica_info(store: Store) -> dict[str, Any]:
    replica = aioredis.Redis(port=store.replica.port)
    try:
        info: dict[str, Any] = await replica.info("replication")
    finally:
        await replica.aclose()
    return info


async def replica_until(
    store: Store, holds: Callable[[dict[str, Any]], bool], timeout_s: float = 20.0
) -> dict[str, Any]:
    """Poll the replica's INFO until ``holds``; a generous timeout fails instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while not holds(info := await replica_info(store)):
        assert time.monotonic() < deadline, f"condition never held; last: {info}"
        await asyncio.sleep(0.05)
    return info


async def kill_primary(store: Store) -> None:
    """SIGKILL redis-a, then wait until redis-b has noticed (its link reported down)."""
    store.primary.process.kill()
    store.primary.process.wait()
    await replica_until(store, lambda i: i["master_link_status"] == "down")


async def write_orders(store: Store, n: int) -> None:
    primary = aioredis.Redis(port=store.primary.port)
    try:
        for i in range(n):
            await primary.set(f"order:{i}", f"acknowledged-{i}")
        # As the gateway does: the replica has them. Generous: Redis 7.0 streams to a freshly
        # synced replica only after its first ACK, up to a second after the link came up.
        assert await primary.wait(1, 20_000) == 1
    finally:
        await primary.aclose()


async def guard(store: Store, **args: object) -> str:
    return await run(
        store.service,
        store.actions.caught_up,
        "state.caught_up",
        replica="redis-b",
        from_replica="redis-a",
        **args,
    )


async def refusal(store: Store, **args: object) -> str:
    with pytest.raises(ApplicationError) as refused:
        await guard(store, **args)
    assert refused.value.type == "GuardFailed" and refused.value.non_retryable
    return refused.value.message


async def test_dead_primary_a_replica_whose_link_broke_with_it_and_has_every_byte_passes(
    store: Store,
) -> None:
    await write_orders(store, 20)
    seen = await last_seen_alive(store)
    await kill_primary(store)

    said = await guard(store, max_lag_ms="0", **vars(seen))

    assert said.startswith("redis-a does not answer; redis-b's link went down "), said
    assert "after redis-a was last seen at " in said
    offset = (await replica_info(store))["slave_repl_offset"]
    assert said.endswith(
        f"; offset {offset} ≥ {seen.min_offset} last seen on redis-a in replication id "
        f"{seen.replid}"
    )


async def test_dead_primary_a_replica_whose_link_broke_long_before_is_refused(
    store: Store,
) -> None:
    await write_orders(store, 5)
    replica = aioredis.Redis(port=store.replica.port)
    await replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # link broken
    await replica.aclose()
    # Long enough to be measured in Redis's whole seconds, well beyond the slack.
    await replica_until(store, lambda i: int(i.get("master_link_down_since_seconds", -1)) >= 3)
    seen = await last_seen_alive(store)  # redis-a still answered just now
    await kill_primary(store)

    why = await refusal(store, max_lag_ms="0", **vars(seen))

    assert why.startswith("redis-b's link to redis-a has been down "), why
    assert "longer than the " in why and "stopped replicating before redis-a died" in why


async def test_dead_primary_a_replica_behind_the_last_offset_seen_is_refused(
    store: Store,
) -> None:
    await write_orders(store, 5)
    # redis-b's link breaks just before redis-a's last sample: redis-a takes orders redis-b
    # never receives, is seen alive once more, then dies.
    replica = aioredis.Redis(port=store.replica.port)
    await replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    await replica.aclose()
    primary = aioredis.Redis(port=store.primary.port)
    await primary.set("order:not-replicated", "never acknowledged")
    await primary.aclose()
    seen = await last_seen_alive(store)
    await kill_primary(store)
    behind = int((await replica_info(store))["slave_repl_offset"])
    assert 0 < behind < int(seen.min_offset)

    why = await refusal(store, max_lag_ms="0", **vars(seen))

    assert why == (
        f"redis-b holds offset {behind}, below the {seen.min_offset} last seen on redis-a: "
        f"{int(seen.min_offset) - behind} bytes redis-a had are missing"
    )


@pytest.mark.parametrize("evidence", [{}, {"primary_last_seen": "0", "min_offset": "-1"}])
async def test_dead_primary_without_evidence_is_refused_unless_forced(
    store: Store, evidence: dict[str, str]
) -> None:
    await write_orders(store, 5)
    await kill_primary(store)

    why = await refusal(store, max_lag_ms="0", **evidence)
    forced = await guard(store, max_lag_ms="-1", **evidence)

    assert why.startswith(
        "redis-a does not answer and was never seen answering (no primary_last_seen): redis-b "
    )
    assert forced == "redis-b not checked: forced by the operator"


async def test_dead_primary_a_replica_already_promoted_is_accepted(store: Store) -> None:
    await write_orders(store, 5)
    seen = await last_seen_alive(store)
    await kill_primary(store)
    replica = aioredis.Redis(port=store.replica.port)
    await replica.execute_command("REPLICAOF", "NO", "ONE")  # a half-finished earlier failover
    await replica.aclose()

    said = await guard(store, max_lag_ms="0", **vars(seen))

    assert said.startswith("redis-a does not answer; redis-b already reports itself primary")


def test_failover_state_passes_the_evidence_to_the_guard() -> None:
    runbook = load_builtin_runbooks()["failover-state"]
    step = next(s for s in runbook.steps if s.name == "caught-up")
    assert {"primary_last_seen", "min_offset"} <= set(runbook.params)
    assert step.args["primary_last_seen"] == "{primary_last_seen}"
    assert step.args["min_offset"] == "{min_offset}"


async def test_with_the_primary_answering_the_evidence_changes_nothing(store: Store) -> None:
    await write_orders(store, 5)
    seen = await last_seen_alive(store)

    said = await guard(store, max_lag_ms="0", **vars(seen))

    assert said.startswith("redis-b has everything redis-a has (offset ")


async def test_a_malformed_number_is_a_non_retryable_error(store: Store) -> None:
    with pytest.raises(ApplicationError) as bad:
        await guard(store, max_lag_ms="soon")
    assert bad.value.type == "BadArgument" and bad.value.non_retryable
    assert bad.value.message == "state.caught_up needs a number for max_lag_ms, not 'soon'"
