"""What a post-incident report holds: every sentence and number, computed, ready to print.

``reports.build`` fills these from the incident record and the workflow histories; the
templates only lay them out (they compute nothing), so everything a report says is here and
can be asserted in tests. Strings are raw text: escaping is the renderer's job, per format.
Times are already UTC ISO-8601 strings with milliseconds and a ``Z``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Tone = str
"""``ok``, ``fail``, ``warn`` or ``info``: how a row or mark is coloured."""


@dataclass(frozen=True)
class Item:
    """One labelled value (a summary line, a probe setting, a restart's field)."""

    label: str
    value: str


@dataclass(frozen=True)
class Metric:
    """A time metric with the formula that gives it and the moments it is anchored to."""

    name: str
    formula: str
    """``detected − started``."""
    value: str
    """``0.410 s``, or why there is none (``not mitigated``)."""
    anchor: str
    """``started: first failed probe 2026-11-26T09:35:33.725Z; detected: ...``."""


@dataclass(frozen=True)
class Interval:
    """A stretch of time the service spent in one availability state."""

    state: str
    start: str
    end: str
    duration: str
    reason: str


@dataclass(frozen=True)
class Guard:
    """The zero-data-loss guard: whether it held, the sentence it gave, what it checked."""

    status: str
    """``held``, ``refused``, ``skipped (forced)``, ``not reached``, ``did not apply``,
    ``unknown``."""
    sentence: str
    checked: str
    link: str = ""

    @property
    def tone(self) -> Tone:
        """Green when it held, red when it refused, amber when forced past or not reached."""
        if self.status == "held":
            return "ok"
        if self.status == "refused":
            return "fail"
        amber = ("skipped (forced)", "not reached", "not answered")
        return "warn" if self.status in amber else "info"


@dataclass(frozen=True)
class Impact:
    """How long the service was down and degraded, and whether data was safe."""

    down_total: str
    down_formula: str
    degraded_total: str
    degraded_formula: str
    intervals: list[Interval]
    guard: Guard


@dataclass(frozen=True)
class Note:
    """A decision the monitor took, as the incident record keeps it."""

    time: str
    action: str
    replica: str
    reason: str


@dataclass(frozen=True)
class Detection:
    """Which probe saw the failure, by which rule and thresholds, and what the monitor did."""

    probe: str
    rule: str
    settings: list[Item]
    notes: list[Note]


@dataclass(frozen=True)
class StepRow:
    """One runbook step (or one activity of a non-runbook repair) and how it ended."""

    name: str
    action: str
    status: str
    started: str
    finished: str
    duration: str
    attempts: str
    summary: str
    tone: Tone


@dataclass(frozen=True)
class CompensationRow:
    """One compensation, in the order it ran."""

    order: int
    step: str
    call: str
    status: str
    time: str
    result: str
    tone: Tone


@dataclass(frozen=True)
class Repair:
    """One repair run: what started it, what each step did, how it ended."""

    workflow_id: str
    run_id: str
    kind: str
    link: str
    started: str
    ended: str
    status: str
    """How the workflow ended: completed, failed, terminated, ... or ``history missing``."""
    outcome: str
    """The runbook's outcome or the restart's verdict, when known."""
    trigger: str
    reason: str
    steps: list[StepRow]
    compensations: list[CompensationRow]
    details: list[Item]
    tone: Tone


@dataclass(frozen=True)
class Fact:
    """A machine fact drafted into went well / went wrong / got lucky, with its source."""

    text: str
    source: str
    """``failover/order-gateway #31`` (workflow id and event id), or ``incident record``."""
    link: str


@dataclass(frozen=True)
class TimelineRow:
    """One selected history event (see ``reports.timeline.timeline_rows``)."""

    at_ns: int
    """Event time in Unix nanoseconds: sorting and the chart use it, the text uses ``time``."""
    time: str
    workflow_id: str
    run_id: str
    run_short: str
    """The run id's first 8 characters, as a link text."""
    event_id: int
    event_type: str
    """``ActivityTaskFailed``: the event type without its prefix."""
    what: str
    detail: str
    link: str
    tone: Tone


@dataclass(frozen=True)
class Lane:
    """A workflow run's row in the timeline chart."""

    label: str
    title: str
    y: str
    text_y: str
    x1: str
    """Where the run's first row is drawn (its lane's bar starts)."""
    x2: str


@dataclass(frozen=True)
class Mark:
    """One timeline row drawn in its lane."""

    x: str
    y: str
    tone: Tone
    title: str


@dataclass(frozen=True)
class Tick:
    """A time label on the chart's axis."""

    x: str
    label: str


@dataclass(frozen=True)
class Chart:
    """The inline SVG timeline, laid out: coordinates are strings, ready to print."""

    width: str
    height: str
    plot_left: str
    plot_right: str
    axis_y: str
    tick_y: str
    label_y: str
    lanes: list[Lane]
    marks: list[Mark]
    ticks: list[Tick]


@dataclass(frozen=True)
class Report:
    """A post-incident report after the SRE book's postmortem template, ready to render."""

    title: str
    incident_id: str
    service: str
    summary: list[Item]
    badges: list[Item]
    """The few summary items shown at the top of the HTML page."""
    forced: list[Item]
    """Empty unless the failover was forced: by whom, the trigger, why."""
    metrics: list[Metric]
    impact: Impact
    cause: str
    triggers: list[Item]
    detection: Detection
    repairs: list[Repair]
    milestones: list[Fact]
    timeline: list[TimelineRow]
    chart: Chart
    went_well: list[Fact]
    went_wrong: list[Fact]
    lucky: list[Fact]
    action_item_columns: list[str]
    missing: list[str] = field(default_factory=list)
    """The runs whose history is gone (retention): ``<workflow id> run <run id>``."""
    sources: str = ""
    """What the report was made from: the record and N histories of M events."""
