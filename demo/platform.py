"""The supervisord configuration that runs every replica of a catalog as its own program.

Programs have ``autorestart=false``: restarting a replica is drc's decision and drc's record,
so supervisord must never do it behind drc's back. Its XML-RPC asks for a login, kept in
``$DRC_HOME/supervisor-credentials`` (mode 0600), so that no other local user drives it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from drc.catalog import Catalog, Redundancy, Replica, Service
from drc.credentials import SUPERVISOR_CREDENTIALS_FILE, Credentials, ensure_credentials

REPO_ROOT = Path(__file__).resolve().parent.parent


def demo_dir(home: Path) -> Path:
    """Where the demo keeps its supervisord config, logs and fail markers under ``home``."""
    return home / "demo"


def marker_path(home: Path, replica: str) -> Path:
    """The fail-marker file of ``replica``: while it exists, the replica exits 3 on start.

    ``marker_path(home, f"{replica}.promote-fail")`` makes its promotion fail (HTTP 500), and
    ``marker_path(home, f"{replica}.slow-start")`` keeps it from listening after a start, and
    ``marker_path(home, f"{replica}.admin-hang")`` holds its ``/admin/promote`` and
    ``/admin/demote`` until the file is removed (tests catch a repair mid-way with it).
    The fault switch (demo/services/faults.py): ``marker_path(home, f"{replica}.latency")``
    holding ``200`` adds 200 ms to every response, heartbeat included, and
    ``marker_path(home, f"{replica}.errors")`` holding ``0.3`` answers 30 % of requests with
    500, spread evenly; removing the file ends the fault.
    """
    return demo_dir(home) / "markers" / replica


def haproxy_config_path(home: Path) -> Path:
    """Where ``demo.haproxy.write_haproxy_config`` puts HAProxy's configuration under ``home``."""
    return demo_dir(home) / "haproxy.cfg"


def haproxy_executable() -> str:
    """``haproxy`` on PATH, else Debian's ``/usr/sbin/haproxy`` (sbin is often off PATH)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("haproxy is not installed (apt-get install haproxy)")
    return found


def supervisor_port(catalog: Catalog) -> int:
    """The port of the catalog's ``process_control.supervisor_url``."""
    port = urlsplit(str(catalog.process_control.supervisor_url)).port
    if port is None:
        raise ValueError("process_control.supervisor_url must name a port")
    return port


def supervisor_config(
    catalog: Catalog,
    home: Path,
    python: str = sys.executable,
    port: int | None = None,
    autostart: bool = True,
    credentials: Credentials | None = None,
) -> str:
    """Render a supervisord.conf running one program per replica that has a ``process``.

    supervisord listens on 127.0.0.1 at ``port``, or the port of the catalog's supervisor_url.
    The catalog's traffic manager replica (``traffic_control.haproxy_service``) is HAProxy on
    ``haproxy_config_path(home)``, which the caller writes first. ``autostart=False`` starts
    no program: see ``write_supervisor_config``. With ``credentials`` its XML-RPC asks for
    them (the password as a SHA-1 hash), and the ``[supervisorctl]`` section holds them in
    clear, as supervisorctl must send them: such a config is for its owner's eyes only.
    """
    base = demo_dir(home)
    port = supervisor_port(catalog) if port is None else port
    server = {"port": f"127.0.0.1:{port}"}
    client = {"serverurl": f"http://127.0.0.1:{port}"}
    if credentials is not None:
        server |= {"username": credentials.username, "password": credentials.sha1_password()}
        client |= {"username": credentials.username, "password": credentials.password}
    sections: list[tuple[str, dict[str, str]]] = [
        (
            "supervisord",
            {
                "nodaemon": "true",
                "logfile": str(base / "supervisord.log"),
                "pidfile": str(base / "supervisord.pid"),
                "childlogdir": str(base / "logs"),
            },
        ),
        ("inet_http_server", server),
        (
            "rpcinterface:supervisor",
            {
                "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface",
            },
        ),
        ("supervisorctl", client),
    ]
    for service, replica in _replicas(catalog):
        program = _program(catalog, service, replica, home, python)
        program["autostart"] = str(autostart).lower()
        sections.append((f"program:{replica.process}", program))
    return "\n".join(_render(name, values) for name, values in sections)


def write_supervisor_config(
    catalog: Catalog,
    home: Path,
    python: str = sys.executable,
    port: int | None = None,
    autostart: bool = True,
    credentials_file: Path | None = None,
) -> Path:
    """Write ``supervisor_config`` to ``home/demo/supervisord.conf`` and return its path.

    Creates ``logs/`` and ``markers/`` beside it; rewriting an existing config is harmless.
    ``autostart=False`` is for a supervisord started again after it died: its programs may
    still run as orphans holding their ports, and starting them again would only make
    duplicates that fail to bind (see ``workers.stack``). The XML-RPC login is
    ``credentials_file`` (DRC_SUPERVISOR_CREDENTIALS; default ``home/supervisor-credentials``),
    generated the first time (mode 0600) and kept after; the config holds its password (for
    supervisorctl), so it is mode 0600 too.
    """
    base = demo_dir(home)
    (base / "logs").mkdir(parents=True, exist_ok=True)
    (base / "markers").mkdir(parents=True, exist_ok=True)
    (base / "roles").mkdir(parents=True, exist_ok=True)
    _write_redis_configs(catalog, home)
    credentials = ensure_credentials(credentials_file or home / SUPERVISOR_CREDENTIALS_FILE)
    text = supervisor_config(catalog, home, python, port, autostart, credentials)
    path = base / "supervisord.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # one written before it held a password may be world-readable
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def replica_command(
    catalog: Catalog, service: Service, replica: Replica, home: Path, python: str = sys.executable
) -> list[str]:
    """The argv that runs ``replica``, with every replica of every dependency as ``--depends``.

    A Redis replica runs ``redis-server`` on its own config file (see ``redis_config``), through
    a shell that first honours the replica's fail marker as the demo services do (exit 3), so a
    lost region's order store cannot start either; ``exec`` leaves supervisord the server's own
    pid. An HTTP replica whose service depends on a Redis service keeps its orders there
    (``--redis``, through the state store's front end when it has one). The traffic manager
    replica runs HAProxy in the foreground (``-db``) on ``haproxy_config_path(home)``.
    """
    if replica.protocol == "redis":
        return [
            "/bin/sh",
            "-c",
            REDIS_WITH_MARKER,
            replica.name,
            str(marker_path(home, replica.name)),
            redis_server(),
            str(redis_config_path(home, replica.name)),
        ]
    if service.name == catalog.traffic_control.haproxy_service:
        return [haproxy_executable(), "-f", str(haproxy_config_path(home)), "-db"]
    port = urlsplit(str(replica.url)).port
    if port is None:
        raise ValueError(f"replica {replica.name}: url {replica.url} must name a port")
    argv = [
        python,
        "-m",
        "demo.services",
        "--service",
        service.name,
        "--replica",
        replica.name,
        "--port",
        str(port),
    ]
    for dep_name in service.depends_on:
        dep = catalog.service(dep_name)
        if dep is not None and any(r.protocol == "redis" for r in dep.replicas):
            argv += ["--redis", _state_url(dep)]
            continue
        for dep_replica in dep.replicas if dep is not None else ():
            argv += ["--depends", f"{dep_name}={str(dep_replica.url).rstrip('/')}"]
    standby = service.redundancy is Redundancy.ACTIVE_STANDBY and service.primary != replica.name
    return [
        *argv,
        "--fail-marker",
        str(marker_path(home, replica.name)),
        "--role",
        "standby" if standby else "primary",
        "--role-file",
        str(demo_dir(home) / "roles" / replica.name),
        "--promote-fail-marker",
        str(marker_path(home, f"{replica.name}.promote-fail")),
        "--admin-hang-marker",
        str(marker_path(home, f"{replica.name}.admin-hang")),
        "--slow-start-marker",
        str(marker_path(home, f"{replica.name}.slow-start")),
        "--latency-marker",
        str(marker_path(home, f"{replica.name}.latency")),
        "--error-marker",
        str(marker_path(home, f"{replica.name}.errors")),
    ]


REDIS_WITH_MARKER = (
    'if [ -e "$1" ]; then echo "fail marker $1 exists" >&2; exit 3; fi; exec "$2" "$3"'
)
"""``sh -c`` script: $0 the replica, $1 its fail marker, $2 redis-server, $3 its config."""


def redis_server() -> str:
    """Debian's ``redis-server``."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if found is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    return found


def redis_config_path(home: Path, replica: str) -> Path:
    """Where a Redis replica's config lives; ``CONFIG REWRITE`` keeps its role there."""
    return demo_dir(home) / "redis" / f"{replica}.conf"


def redis_config(service: Service, replica: Replica, home: Path) -> str:
    """A Redis config: its own port and dir, AOF on, and ``replicaof`` the primary if a standby.

    drc's state runbooks change the role at run time and persist it with ``CONFIG REWRITE``,
    so a restarted replica keeps the role drc gave it; this file only seeds the first start.
    """
    data = demo_dir(home) / "redis" / replica.name
    lines = [
        "bind 127.0.0.1",
        f"port {replica.url.port}",
        f'dir "{data}"',
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        "protected-mode no",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        # A standby reports its link to a hung primary down after this: until then drc takes
        # the primary for unreachable, not dead (Orchestrator's rule), and does not fail over.
        "repl-timeout 5",
    ]
    primary = service.replica(service.primary) if service.primary else None
    if primary is not None and primary.name != replica.name:
        lines.append(f"replicaof {primary.url.host} {primary.url.port}")
    return "\n".join(lines) + "\n"


def _write_redis_configs(catalog: Catalog, home: Path) -> None:
    for service, replica in _replicas(catalog):
        if replica.protocol != "redis":
            continue
        path = redis_config_path(home, replica.name)
        (path.parent / replica.name).mkdir(parents=True, exist_ok=True)
        if not path.exists():  # never undo a role drc gave it (CONFIG REWRITE)
            path.write_text(redis_config(service, replica, home), encoding="utf-8")


def _state_url(service: Service) -> str:
    if service.frontend is not None:
        return f"redis://{service.frontend}"
    primary = service.replica(service.primary) if service.primary else service.replicas[0]
    assert primary is not None
    return f"redis://{primary.url.host}:{primary.url.port}"


def _replicas(catalog: Catalog) -> Iterator[tuple[Service, Replica]]:
    for service in catalog.services:
        for replica in service.replicas:
            if replica.process is not None:
                yield service, replica


def _program(
    catalog: Catalog, service: Service, replica: Replica, home: Path, python: str
) -> dict[str, str]:
    logs = demo_dir(home) / "logs"
    return {
        "command": shlex.join(replica_command(catalog, service, replica, home, python)),
        "directory": str(REPO_ROOT),  # so that `python -m demo.services` finds the package
        "autorestart": "false",  # drc restarts, and records why
        "startsecs": "0",
        "startretries": "0",
        "stopsignal": "TERM",
        "stopwaitsecs": "2",  # then SIGKILL: a hung replica must not hold up a failover
        "stopasgroup": "true",
        "killasgroup": "true",
        "environment": 'PYTHONUNBUFFERED="1"',
        "stdout_logfile": str(logs / f"{replica.name}.out.log"),
        "stderr_logfile": str(logs / f"{replica.name}.err.log"),
    }


def _render(name: str, values: dict[str, str]) -> str:
    # supervisord expands %(name)s in its values, so a literal % must be doubled.
    lines = [f"[{name}]"] + [f"{key}={value.replace('%', '%%')}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
