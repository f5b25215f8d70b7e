"""One activity watches a whole group of services (design notes §2, at scale).

Every watch activity heartbeats the Temporal server on its own: at 1,000 services that was
250 heartbeat RPCs a second and as much of a core on the server as on the worker
(bench/worker_scale.py). A group's activity runs one ``ServiceWatch`` per member, each on its
own ticker (spread over the interval), heartbeats once for all of them, and sends each member's
transitions to that member's monitor as a ``watch_report`` signal. It learns of new, changed
and removed members from its group workflow's memo version (a describe a second) and the
``members`` query. Reports are delivered at least once (an outbox that rides on the heartbeat;
the monitor drops a report it already applied).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass, field, replace

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.probes.ticker import ticks
from activities.service_watch import ServiceWatch
from activities.watch import WatchActivities, log_transition
from activities.watch_metrics import NO_METRICS, WatchMetrics
from drc.names import WATCH_GROUP
from drc.watch import (
    GroupProgress,
    MemberProgress,
    WatchGroupInput,
    WatchInput,
    WatchProgress,
    WatchReport,
    WatchSpec,
)

log = logging.getLogger("drc.watch_group")

_GROUP_PROGRESS = TypeAdapter(GroupProgress)
SPEC_POLL_S = 1.0
HEARTBEAT_EVERY_S = 2.0  # the SDK sends one every 4 s (0.8 x the 5 s timeout) at most


def start_seq() -> int:
    """Where a (re)started member numbers its reports from: now, in microseconds.

    An earlier attempt of the group's activity may have sent reports after its last heartbeat
    (or before its first): numbered from its own, earlier start, one per tick at most, they
    stay below this, so the monitor applies this attempt's reports instead of dropping them as
    ones it already has (and acting on a replica's stale state). Below 2**53 until 2255.
    """
    return int(time.time() * 1_000_000)


@dataclass
class _Member:
    spec: WatchSpec
    seq: int
    watch: ServiceWatch | None = None
    task: asyncio.Task[None] | None = None

    def progress(self) -> MemberProgress:
        w = self.watch
        return MemberProgress(
            generation=self.spec.generation,
            seq=self.seq,
            tracks=w.tracks if w else self.spec.tracks,
            sync=w.sync if w else self.spec.sync,
            ticks=w.ticks if w else 0,
            skipped_ticks=w.skipped_ticks if w else 0,
            max_lateness_ms=w.max_lateness_ms if w else 0.0,
            tilt=w.tilt if w else None,
        )


@dataclass
class _Run:
    """One run of a group's activity: its members, their tasks, the outbox."""

    watches: WatchActivities
    client: Client
    group_workflow_id: str
    metrics: WatchMetrics = NO_METRICS
    members: dict[str, _Member] = field(default_factory=dict)
    outbox: list[WatchReport] = field(default_factory=list)
    version: int = 0
    _wake_sender: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, specs: dict[str, WatchSpec], resumed: GroupProgress) -> None:
        """Start, restart or stop member watches to match ``specs``."""
        for name in [n for n in self.members if n not in specs]:
            self._stop(self.members.pop(name))
        for name, spec in specs.items():
            member = self.members.get(name)
            if member is not None and member.spec.generation >= spec.generation:
                continue
            if member is not None:
                self._stop(member)
            kept = resumed.members.get(name)
            same = kept is not None and kept.generation == spec.generation
            seq = max(kept.seq if kept and same else 0, spec.seq_floor, start_seq())
            member = _Member(spec, seq)
            self.members[name] = member
            if not spec.paused:
                self._start(member, kept if same else None)

    def _start(self, member: _Member, kept: MemberProgress | None) -> None:
        spec = member.spec
        resumed = WatchProgress(kept.tracks, kept.sync) if kept is not None else None
        member.watch = self.watches.service_watch(
            WatchInput(spec.service, spec.tracks, 0, spec.primary, spec.sync, spec.supervisor_url),
            resumed,
            self.metrics,
        )
        member.task = asyncio.create_task(self._watch(member))

    @staticmethod
    def _stop(member: _Member) -> None:
        if member.task is not None:
            member.task.cancel()
        if member.watch is not None:
            member.watch.close()

    async def _watch(self, member: _Member) -> None:
        watch, interval = member.watch, member.spec.service.probe.interval_ms / 1000
        assert watch is not None
        # Spread the members' ticks over the interval: probes that start together finish late.
        offset = (zlib.crc32(member.spec.service.name.encode()) % 1000) / 1000 * interval
        async for tick in ticks(interval, offset_s=offset):
            try:
                transitions, events = await watch.tick(tick)
            except Exception:  # a bug must not end the watch of 49 other services
                log.exception("watch of %s failed a tick", member.spec.service.name)
                continue
            if transitions or events:
                member.seq += 1
                self.outbox.append(
                    WatchReport(
                        member.spec.service.name,
                        member.spec.generation,
                        member.seq,
                        transitions,
                        watch.tracks,
                        events,
                        watch.sync,
                    )
                )
                self._wake_sender.set()
                for transition in transitions:
                    log_transition(member.spec.service.name, transition)

    def progress(self) -> GroupProgress:
        """Every member's spec and progress, and the undelivered reports."""
        members = {n: m.progress() for n, m in self.members.items()}
        specs = {n: replace(m.spec, tracks={}, sync={}) for n, m in self.members.items()}
        return GroupProgress(members, list(self.outbox), specs, self.version)

    async def send(self) -> None:
        """Deliver the outbox in order, forever; a report is removed once its monitor has it."""
        backoff = 0.1
        while True:
            if not self.outbox:
                self._wake_sender.clear()
                await self._wake_sender.wait()
                continue
            report = self.outbox[0]
            member = self.members.get(report.service)
            target = member.spec.monitor_id if member else None
            try:
                if target is not None:
                    handle = self.client.get_workflow_handle(target)
                    await handle.signal("watch_report", report)
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:  # the monitor is gone: drop it
                    log.warning("report to %s not delivered (%s); retrying", target, exc.message)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            backoff = 0.1
            if self.outbox and self.outbox[0] is report:
                self.outbox.pop(0)

    async def follow_specs(self, resumed: GroupProgress) -> None:
        """Apply the group's member specs whenever its memo version moves."""
        handle = self.client.get_workflow_handle(self.group_workflow_id)
        while True:
            await asyncio.sleep(SPEC_POLL_S)
            try:
                desc = await handle.describe()
                version = (await desc.memo()).get("version", 0)
                if version == self.version:
                    continue
                latest = await handle.query("members", result_type=WatchGroupInput)
            except RPCError as exc:
                log.warning("cannot read the members of %s: %s", self.group_workflow_id, exc)
                continue
            self.version = latest.version
            self.apply(latest.members, resumed)


class GroupWatchActivities:
    """The ``watch_group`` activity, around the worker's watch machinery and client."""

    def __init__(self, watches: WatchActivities, client: Client) -> None:
        self._watches = watches
        self._client = client

    @activity.defn(name=WATCH_GROUP)
    async def watch_group(self, inp: WatchGroupInput) -> GroupProgress:
        """Watch every member for ``max_run_s``, then return the progress to carry on with.

        Safe to retry: it only reads the world and signals reports the monitors de-duplicate;
        a retry resumes every member's tracks and re-sends the undelivered reports from its
        last heartbeat.
        """
        details = activity.info().heartbeat_details
        resumed = _GROUP_PROGRESS.validate_python(details[0]) if details else inp.progress
        run = _Run(
            self._watches,
            self._client,
            activity.info().workflow_id or "",
            WatchMetrics.of_activity(),
        )
        run.outbox = list(resumed.outbox)
        if details and resumed.version >= inp.version:  # a retry: resume every member at once
            run.version = resumed.version
            run.apply(_with_progress(resumed), resumed)
        else:
            run.version = inp.version
            run.apply(inp.members, resumed)
        helpers = [
            asyncio.create_task(run.send()),
            asyncio.create_task(run.follow_specs(resumed)),
        ]
        started = time.monotonic()
        try:
            while time.monotonic() - started < inp.max_run_s:
                activity.heartbeat(run.progress())
                await asyncio.sleep(HEARTBEAT_EVERY_S)
            return run.progress()
        finally:
            for task in helpers:
                task.cancel()
            for member in run.members.values():
                _Run._stop(member)


def _with_progress(resumed: GroupProgress) -> dict[str, WatchSpec]:
    """The heartbeat's specs with the tracks and sync of its members' progress put back."""
    specs = {}
    for name, spec in resumed.specs.items():
        kept = resumed.members.get(name)
        specs[name] = replace(
            spec, tracks=kept.tracks if kept else {}, sync=kept.sync if kept else {}
        )
    return specs


def group_progress_from_details(details: object) -> GroupProgress:
    """Parse a group activity's heartbeat details into its progress."""
    return _GROUP_PROGRESS.validate_python(details)


async def group_progress(client: Client, group: str) -> GroupProgress | None:
    """A watch group's last heartbeat: every member's tracks and sync (one describe)."""
    try:
        desc = await client.get_workflow_handle(group).describe()
    except RPCError:
        return None  # no group: the monitor's own view is what there is
    for pending in desc.raw_description.pending_activities:
        if pending.activity_type.name == WATCH_GROUP and pending.heartbeat_details.payloads:
            values = await client.data_converter.decode(pending.heartbeat_details.payloads)
            return group_progress_from_details(values[0])
    return None
