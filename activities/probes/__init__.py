"""Real network probes: each returns a ``ProbeResult`` and never raises for an unhealthy target."""

from activities.probes.engine import ProbeEngine
from activities.probes.http import HttpProber
from activities.probes.postgres import probe_postgres
from activities.probes.redis import probe_redis
from activities.probes.tcp import probe_tcp
from activities.probes.ticker import Tick, ticks

__all__ = [
    "HttpProber",
    "ProbeEngine",
    "Tick",
    "probe_postgres",
    "probe_redis",
    "probe_tcp",
    "ticks",
]
