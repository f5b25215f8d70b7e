"""What is wrong with a replica: its conditions, their severity, and the error-rate window.

A replica that answers can be slow, fail part of its probes and fail its /health at once; a
transition names one condition, the most important (``RANK``), and its severity. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Condition(StrEnum):
    """What a transition is about (``Transition.condition``); None for a recovery."""

    DOWN = "down"
    ERROR_RATE = "error_rate_increase"
    HEALTH = "health_check_failing"
    LATENCY = "latency_degradation"


class Severity(StrEnum):
    """How urgently an operator should look (``Transition.severity``)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"


SEVERITY = {
    Condition.DOWN: Severity.CRITICAL,
    Condition.ERROR_RATE: Severity.HIGH,
    Condition.HEALTH: Severity.MEDIUM,
    Condition.LATENCY: Severity.MEDIUM,
}
"""Down is an outage; an error rate is harm measured on the replica's own answers. A failing
/health is the replica's own verdict, usually about a dependency: when one is down, every
dependent's /health fails, and the dependency is the incident that pages, not each of them."""

RANK = {Condition.LATENCY: 1, Condition.HEALTH: 2, Condition.ERROR_RATE: 3, Condition.DOWN: 4}
"""Which condition a degradation is reported as when several hold, and when a degraded
replica is reported again: an error rate is harm measured on the replica's own answers; a
failing /health is its own verdict, often about a dependency; slowness hurts least. A replica
that fails 30 % of all requests also fails some /health checks: it is reported as erring."""


def rank(condition: str | None) -> int:
    """``RANK`` of a condition as stored in a track (0 for none)."""
    return RANK.get(Condition(condition), 0) if condition is not None else 0


def severity(condition: str | None) -> str | None:
    """The severity of a condition, None for none."""
    return SEVERITY[Condition(condition)].value if condition is not None else None


FAILED_PROBE = "1"
PASSED_PROBE = "0"


def record(window: str, failures: Iterable[bool], size: int) -> str:
    """The window with one probe outcome per item of ``failures`` appended, the oldest dropped.

    A window is a string of at most ``size`` characters, oldest first: ``FAILED_PROBE`` or
    ``PASSED_PROBE``. A string, not a list: it travels in every watch heartbeat.
    """
    added = "".join(FAILED_PROBE if failed else PASSED_PROBE for failed in failures)
    return (window + added)[-size:]


def failed_share(window: str, size: int) -> tuple[int, int] | None:
    """(failed, probes) over the last ``size`` probes, or None until the window holds ``size``.

    A share needs a full window: two misses among the first five probes are a blip, not 40 %.
    """
    if len(window) < size:
        return None
    return window[-size:].count(FAILED_PROBE), size
