"""How a report writes times and durations: UTC ISO-8601 with milliseconds, seconds to 3 places.

Only times from the incident record (Unix seconds) and history events (Unix nanoseconds) are
written; the local clock never is, so a report rendered twice is the same byte for byte.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_of(seconds: float) -> int:
    """Unix seconds (the incident record's unit) as Unix nanoseconds, to the microsecond."""
    return round(seconds * 1_000_000) * 1000


def iso_ns(ns: int) -> str:
    """``2026-11-26T09:35:33.737Z``: milliseconds truncated, as the Temporal Web UI shows them."""
    ms = ns // 1_000_000
    moment = _EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def iso_s(moment: float | datetime | None, none: str = "") -> str:
    """A time (Unix seconds, or an aware datetime) as ``iso_ns`` writes it; ``none`` if None."""
    return none if moment is None else iso_ns(ns_of(seconds_of(moment)))


def seconds_of(moment: float | datetime) -> float:
    """Unix seconds of ``moment`` (results carry datetimes, older histories floats)."""
    return moment.timestamp() if isinstance(moment, datetime) else moment


def duration(seconds: float) -> str:
    """``0.410 s``; from a minute on also ``(2 min 3.4 s)``, from an hour ``(1 h 2 min)``."""
    text = f"{seconds:.3f} s"
    whole = abs(seconds)
    if not math.isfinite(whole):
        return text
    if whole >= 3600:
        text += f" ({int(whole // 3600)} h {int(whole % 3600 // 60)} min)"
    elif whole >= 60:
        text += f" ({int(whole // 60)} min {whole % 60:.1f} s)"
    return text


def duration_ns(start_ns: int, end_ns: int) -> str:
    """The time between two event times, as ``duration`` writes it."""
    return duration((end_ns - start_ns) / 1e9)


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
