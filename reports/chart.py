"""Lay the timeline out as an SVG chart: one lane per workflow run, one mark per row.

The page scales the SVG to its width (``viewBox``), so it never overflows; coordinates are
written with one decimal, so the same rows give the same bytes.
"""

from __future__ import annotations

from reports.fmt import clip, iso_ns
from reports.model import Chart, Lane, Mark, Tick, TimelineRow

WIDTH = 1000
LABEL_WIDTH = 260
RIGHT = 40
TOP = 14
LANE_HEIGHT = 26
AXIS_HEIGHT = 36
TICKS = 5
# Failures drawn last, so a cluster of routine events never hides one.
_LAYER = {"info": 0, "ok": 1, "warn": 2, "fail": 3}


def chart(rows: list[TimelineRow]) -> Chart:
    """The chart of ``rows`` (sorted by time); lanes in the order their first row appears."""
    lanes: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        lanes.setdefault((row.workflow_id, row.run_id), []).append(row.at_ns)
    order = {key: i for i, key in enumerate(lanes)}
    start = rows[0].at_ns if rows else 0
    span = max((rows[-1].at_ns - start) if rows else 0, 1_000_000)  # at least 1 ms
    left, right = LABEL_WIDTH, WIDTH - RIGHT
    axis = TOP + LANE_HEIGHT * max(len(lanes), 1)
    times = [start + span * i // (TICKS - 1) for i in range(TICKS)] if rows else []

    def x(at: int) -> str:
        return f"{left + (at - start) / span * (right - left):.1f}"

    def y(lane: int) -> str:
        return f"{TOP + LANE_HEIGHT * lane + LANE_HEIGHT / 2:.1f}"

    layered = sorted(rows, key=lambda r: (_LAYER.get(r.tone, 0), r.at_ns, r.workflow_id))
    return Chart(
        width=str(WIDTH),
        height=str(axis + AXIS_HEIGHT),
        plot_left=str(left),
        plot_right=str(right),
        axis_y=str(axis),
        tick_y=str(axis + 5),
        label_y=str(axis + 20),
        lanes=[
            Lane(
                label=clip(f"{wid} · {run_id[:8]}", 42),
                title=f"{wid} run {run_id}",
                y=y(i),
                text_y=f"{TOP + LANE_HEIGHT * i + LANE_HEIGHT / 2 + 4:.1f}",
                x1=x(min(times_of)),
                x2=x(max(times_of)),
            )
            for ((wid, run_id), times_of), i in zip(lanes.items(), order.values(), strict=True)
        ],
        marks=[
            Mark(
                x=x(row.at_ns),
                y=y(order[(row.workflow_id, row.run_id)]),
                tone=row.tone,
                title=f"{row.time} {row.workflow_id} #{row.event_id}: {row.what}",
            )
            for row in layered
        ],
        ticks=[Tick(x=x(at), label=iso_ns(at)[11:23]) for at in times],
    )
