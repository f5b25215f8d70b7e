"""The registry of actions a runbook may call: pure data, importable by workflows.

A runbook step names an action here, never an activity directly, so a runbook cannot reach
anything that is not registered. Each action maps to one Temporal activity type implemented
by ``activities.actions.RunbookActivities``; the argument names and the values an argument
accepts are checked by ``runbooks.runbook.validate_runbook`` before any step runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

TRAFFIC_STATES = ("ready", "drain", "maint")


@dataclass(frozen=True)
class ActionSpec:
    """One registered action: its activity, its arguments, and whether it changes the world."""

    name: str
    """What a runbook writes in ``action:`` (``traffic.set``)."""
    activity: str
    """The Temporal activity type that carries it out (``action_traffic_set``)."""
    required: frozenset[str]
    """Arguments a call must give."""
    optional: frozenset[str]
    """Arguments a call may give; the action has a default for each."""
    description: str
    read_only: bool = False
    """True when the action only looks; only such actions may serve as a step's guard."""
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Arguments restricted to a set of values (checked when written without placeholders)."""
    lists: frozenset[str] = frozenset()
    """Arguments that are lists of strings; every other argument is a single value."""
    numbers: frozenset[str] = frozenset()
    """Arguments that must be numbers (or a placeholder that renders to one)."""

    @property
    def known(self) -> frozenset[str]:
        """Every argument the action accepts."""
        return self.required | self.optional


def _spec(
    name: str,
    description: str,
    required: tuple[str, ...] = (),
    *,
    optional: tuple[str, ...] = (),
    read_only: bool = False,
    choices: Mapping[str, tuple[str, ...]] | None = None,
    lists: tuple[str, ...] = (),
    numbers: tuple[str, ...] = (),
) -> ActionSpec:
    return ActionSpec(
        name=name,
        activity="action_" + name.replace(".", "_"),
        required=frozenset(required),
        optional=frozenset(optional),
        description=description,
        read_only=read_only,
        choices=dict(choices or {}),
        lists=frozenset(lists),
        numbers=frozenset(numbers),
    )


_ALL = (
    _spec(
        "traffic.set",
        "Put a replica's server in the traffic manager in a state (ready, drain or maint).",
        ("server", "state"),
        optional=("backend",),
        choices={"state": TRAFFIC_STATES},
    ),
    _spec(
        "traffic.expect",
        "Read a server's state back and fail unless it is the expected one.",
        ("server", "state"),
        optional=("backend",),
        choices={"state": TRAFFIC_STATES},
        read_only=True,
    ),
    _spec("process.stop", "Stop a replica's process through process control.", ("replica",)),
    _spec("process.start", "Start a replica's process through process control.", ("replica",)),
    _spec(
        "replica.healthy",
        "One health probe of a replica (its /health and checks) must pass.",
        ("replica",),
        read_only=True,
    ),
    _spec(
        "replica.wait_healthy",
        "Probe a replica's health until it passes, failing after timeout_s (default 30).",
        ("replica",),
        optional=("timeout_s",),
        numbers=("timeout_s",),
        read_only=True,
    ),
    _spec("replica.promote", "POST <replica url>/admin/promote; expect 2xx.", ("replica",)),
    _spec("replica.demote", "POST <replica url>/admin/demote; expect 2xx.", ("replica",)),
    _spec(
        "frontend.verify",
        "GET path (default /health/heartbeat) through the service's front end until it answers "
        "200 (and its JSON 'replica' is expect_replica, when given), failing after attempts "
        "(default 10).",
        optional=("path", "expect_replica", "attempts"),
        numbers=("attempts",),
        read_only=True,
    ),
    _spec("state.fence", "Make a Redis primary refuse writes (a dead one counts).", ("replica",)),
    _spec("state.unfence", "Let a fenced Redis server take writes again.", ("replica",)),
    _spec(
        "state.caught_up",
        "The replica has every byte from_replica has, within max_lag_ms (negative: forced); "
        "when from_replica does not answer, judged by primary_last_seen (Unix s it last "
        "answered, 0: unknown, refused), min_offset (its offset then, -1: unknown) and replid "
        "(its replication id then, empty: unknown).",
        ("replica", "from_replica"),
        optional=("max_lag_ms", "primary_last_seen", "min_offset", "replid"),
        numbers=("max_lag_ms", "primary_last_seen", "min_offset"),
        read_only=True,
    ),
    _spec("state.promote", "REPLICAOF NO ONE, unfenced, persisted.", ("replica",)),
    _spec(
        "state.replicate_from",
        "REPLICAOF the primary's address, persisted.",
        ("replica", "primary"),
    ),
    _spec(
        "state.repoint_standbys",
        "Every other Redis replica of the service (not replica, not from_replica) REPLICAOF "
        "replica, persisted; one that does not answer is skipped and said (its re-protection "
        "brings it back).",
        ("replica", "from_replica"),
    ),
    _spec(
        "state.wait_in_sync",
        "Wait until the replica's offset equals its primary's (timeout_s, default 60).",
        ("replica", "primary"),
        optional=("timeout_s",),
        numbers=("timeout_s",),
        read_only=True,
    ),
    _spec(
        "state.verify_frontend",
        "Write and read back a key through the service's front end (it deletes the key: it "
        "leaves the state as it found it, so it counts as read-only).",
        read_only=True,
    ),
    _spec(
        "command",
        "Run argv (a list, never through a shell) if argv[0] is allow-listed; non-zero exit fails.",
        ("argv",),
        lists=("argv",),
    ),
)

ACTIONS: Mapping[str, ActionSpec] = MappingProxyType({spec.name: spec for spec in _ALL})
"""Every action a runbook may call, by name."""
