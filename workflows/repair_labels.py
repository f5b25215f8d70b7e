"""How a repair run explains itself in the Web UI: search attributes, summary, details.

The ``incident`` attribute lists every run of an incident with one filter
(``incident = "<id>"``); the details say what the run does, on whose word or which detection,
and why.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from drc.incident import Incident
    from drc.names import SA_INCIDENT, SA_KIND, SA_SERVICE, SA_SEVERITY
from workflows.monitor_types import RunningRepair


def repair_attributes(
    service: str,
    kind: str,
    repair: RunningRepair,
    severity: str,
    incident: str | None,
    now: float,
) -> TypedSearchAttributes:
    """Service, kind, severity and incident of a repair run."""
    if incident is None:  # a monitor from before incidents: the older, per-repair string
        incident = f"{service}/{repair.replica or kind}/{int(now)}"
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_SERVICE, service),
            SearchAttributePair(SA_KIND, kind),
            SearchAttributePair(SA_SEVERITY, severity),
            SearchAttributePair(SA_INCIDENT, incident),
        ]
    )


def repair_details(service: str, repair: RunningRepair, incident: Incident | None) -> str:
    """The Web UI's details of a repair run (Markdown): what, on whose word, why."""
    lines = [f"**{repair.kind}** of {service}", "", repair.trigger]
    if repair.forced:
        lines += ["", "**FORCED** by an operator: replication guards skipped."]
    if incident is not None:
        lines += [
            "",
            f"Incident `{incident.id}` ({incident.severity}, {incident.type.replace('_', ' ')})",
            f"Detected: {incident.cause}",
        ]
    return "\n".join(lines)
