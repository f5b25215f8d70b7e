"""Task queues, workflow ids and search attributes: every name drc shares, in one place."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MONITOR_PREFIX = "monitor/"
RESTART_PREFIX = "restart/"
MONITOR_WORKFLOW = "ServiceMonitor"

MONITOR_SCHEMA = 2
"""The monitor's input layout, kept in its memo. A worker that finds a monitor of another
schema running (started by an older drc) replaces it (ARCHITECTURE.md, "Changing a workflow")."""

# Activity types by name: workflows call activities by these names and never import the
# activity modules, so the workflow sandbox loads no network library (design notes §1).
WATCH_SERVICE = "watch_service"
STOP_PROCESS = "stop_process"
START_PROCESS = "start_process"
CHECK_RECOVERED = "check_recovered"
NOTIFY = "notify"
AWAIT_REPAIR_END = "await_repair_end"
WATCH_GROUP = "watch_group"
WATCH_GROUP_WORKFLOW = "WatchGroup"
WATCH_GROUP_PREFIX = "watch-group/"
FLEET_WORKFLOW = "Fleet"
FLEET_ID = "fleet"
"""One Fleet workflow per deployment (workflows/fleet.py)."""
VANTAGE_PROBE = "vantage_probe"
RECORD_INCIDENT = "record_incident"
WRITE_REPORT = "write_incident_report"
REPORT_WORKFLOW = "IncidentReport"
REPORT_PREFIX = "report/"
EVACUATION_WORKFLOW = "EvacuateRegion"
EVACUEE_WORKFLOW = "EvacuateService"
EVACUATION_PREFIX = "evacuate-region/"
EVACUATE_SERVICE = "evacuate_service"
RESTORE_SERVICE = "restore_service"
CHAOS_WORKFLOW = "ChaosExperiment"
CHAOS_PREFIX = "chaos/"
CHAOS_PREPARE = "chaos_prepare"
CHAOS_INJECT = "chaos_inject"
CHAOS_UNDO = "chaos_undo"
CHAOS_STEADY_STATE = "chaos_steady_state"
CHAOS_WATCH = "chaos_watch"
CHAOS_JOURNAL = "chaos_write_journal"
CHAOS_SCHEDULE_PREFIX = "chaos-schedule/"
SWITCHOVER_WORKFLOW = "ScheduledSwitchover"
SWITCHOVER_PREFIX = "switchover/"
REQUEST_FAILOVER = "request_failover"


def switchover_id(service: str) -> str:
    """Workflow id of a service's scheduled switchover: one pending at a time per service."""
    return f"{SWITCHOVER_PREFIX}{service}"


def watch_group_id(index: int) -> str:
    """Workflow id of a watch group: one activity probes every service of the group."""
    return f"{WATCH_GROUP_PREFIX}{index}"


SA_SERVICE = SearchAttributeKey.for_keyword("service")
SA_KIND = SearchAttributeKey.for_keyword("kind")
SA_INCIDENT = SearchAttributeKey.for_keyword("incident")
SA_SEVERITY = SearchAttributeKey.for_keyword("severity")

# name -> Temporal type, as `temporal server start-dev --search-attribute` expects them.
SEARCH_ATTRIBUTES: dict[str, str] = {
    SA_SERVICE.name: "Keyword",
    SA_KIND.name: "Keyword",
    SA_INCIDENT.name: "Keyword",
    SA_SEVERITY.name: "Keyword",
}


def monitor_id(service: str) -> str:
    """Workflow id of a service's monitor: one per service, forever."""
    return f"{MONITOR_PREFIX}{service}"


def vantage_queue(vantage: str) -> str:
    """The task queue of a vantage point's probe workers (``drc worker --region``)."""
    return f"drc-probes-{vantage}"


def evacuation_id(region: str) -> str:
    """Workflow id of a region's evacuation: one at a time per region."""
    return f"{EVACUATION_PREFIX}{region}"


def evacuee_id(region: str, service: str) -> str:
    """Workflow id of one service's part in its region's evacuation (a child of it)."""
    return f"{EVACUATION_PREFIX}{region}/{service}"


def report_id(incident_id: str) -> str:
    """Workflow id of an incident's report: written once per incident (again on request)."""
    return f"{REPORT_PREFIX}{incident_id}"


def restart_id(service: str, replica: str) -> str:
    """Workflow id of a replica's restart: at most one runs at a time."""
    return f"{RESTART_PREFIX}{service}/{replica}"


def runbook_id(runbook: str, service: str, subject: str | None = None) -> str:
    """``<runbook>/<service>``: one repair of a kind per service at a time (design notes §4).

    A runbook that acts on one replica of many (drain) is one per replica instead:
    ``<runbook>/<service>/<replica>``.
    """
    return f"{runbook}/{service}" if subject is None else f"{runbook}/{service}/{subject}"


# HAProxy names: the config writer (demo/haproxy.py) and the runbooks both use these.
def backend_name(service_name: str) -> str:
    """The HAProxy backend of a service: ``be_`` + its name (HAProxy accepts ``-``)."""
    return f"be_{service_name}"


def server_name(replica_name: str) -> str:
    """The HAProxy server of a replica inside its service's backend: the replica's name."""
    return replica_name


def frontend_name(service_name: str) -> str:
    """The HAProxy frontend of a service: ``fe_`` + its name."""
    return f"fe_{service_name}"
