"""Replicated state: read, measure, promote, fence and check a Redis primary/replica pair.

``StateReplicator`` (``base``) is the backend interface (design notes §5: guard on lag, fence
the old primary, promote the standby, re-protect); ``RedisReplicator`` (``redis_replicator``,
with ``redis_lag``, ``redis_consistency`` and ``redis_info``) implements it over Redis
replication. Every operation either only reads or converges on a target state (a role, a
setting), so Temporal may retry any of them after a lost answer. Workflows reach them through
actions that convert ``StateError`` with ``to_application_error`` (``errors``).
``dead_primary`` judges a standby whose primary no longer answers (pure).

Everything other modules use is importable from ``activities.state`` itself.
"""

from activities.state.base import (
    FENCED_MIN_REPLICAS,
    HEARTBEAT_KEY,
    NEVER_UP,
    ConsistencyResult,
    Endpoint,
    LagSample,
    ReplicationInfo,
    StateReplicator,
)
from activities.state.dead_primary import LINK_DOWN_SLACK_S, LastSeen, Verdict, judge_standby
from activities.state.errors import StateError, StateUnreachableError, to_application_error
from activities.state.redis_replicator import RedisReplicator

__all__ = [
    "FENCED_MIN_REPLICAS",
    "HEARTBEAT_KEY",
    "LINK_DOWN_SLACK_S",
    "NEVER_UP",
    "ConsistencyResult",
    "Endpoint",
    "LagSample",
    "LastSeen",
    "RedisReplicator",
    "ReplicationInfo",
    "StateError",
    "StateReplicator",
    "StateUnreachableError",
    "Verdict",
    "judge_standby",
    "to_application_error",
]
