"""Every workflow class drc runs: the worker registers them, the replay tests replay them.

Kept apart from ``workers.worker`` so that importing the list loads no activity module (the
workflow sandbox warns about modules imported after it started).
"""

from __future__ import annotations

from workflows.chaos import ChaosExperimentWorkflow
from workflows.evacuation import EvacuateRegionWorkflow, EvacuateServiceWorkflow
from workflows.fleet import FleetWorkflow
from workflows.monitor import ServiceMonitorWorkflow
from workflows.report import IncidentReportWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.switchover import ScheduledSwitchoverWorkflow
from workflows.watch_group import WatchGroupWorkflow

WORKFLOWS: tuple[type, ...] = (
    ServiceMonitorWorkflow,
    RestartReplicaWorkflow,
    RunbookWorkflow,
    WatchGroupWorkflow,
    IncidentReportWorkflow,
    FleetWorkflow,
    EvacuateRegionWorkflow,
    EvacuateServiceWorkflow,
    ChaosExperimentWorkflow,
    ScheduledSwitchoverWorkflow,
)
"""Every workflow drc runs: the worker registers them, the replay tests replay with them."""
