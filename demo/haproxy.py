"""The HAProxy configuration that fronts every service with a ``frontend``, and its process.

Each such service gets ``frontend fe_<service>`` on its ``frontend`` address and
``backend be_<service>`` with one server per replica. An active/standby service's
non-primary replicas are ``backup`` servers, so HAProxy sends traffic to the primary alone
and to a standby only once the primary is down or in maintenance. drc switches traffic
through the runtime API on the admin-level stats socket; the names it uses come from
``backend_name`` and ``server_name``, the same functions that write this file.

When the catalog names a traffic-manager service (``traffic_control.haproxy_service``), HAProxy
also serves that service's replica URL itself (``/health/heartbeat`` and ``/health``), so drc
probes HAProxy like any replica. When it names a state file (``haproxy_state_file``), HAProxy
loads it at start (``server-state-file``, ``load-server-state-from-file global``): drc rewrites
that file after each traffic change it makes, so a restarted HAProxy resumes the admin states
drc set (drain, maint) and the weights, not the config's. Measured on HAProxy 2.6 (Debian 12):
it restores forced drain and maintenance, weights and the operational state (a server saved
down stays down until ``rise`` checks pass); it restores nothing of sessions, counters or
stick tables, and nothing set after the file was last written. It matches rows by backend
and server name (ids may change), keeps the config's address but takes the *port* from the
file, hence ``write_haproxy_config`` drops rows whose port no longer matches the catalog.

Why the config's ``backup`` flags (from the catalog's initial primary) can stay as they are:
after a failover og-b (a ``backup``) is ready and og-a (not one) is drained; a drained server
has weight 0 and counts as unavailable, so HAProxy sends every client to og-b, and the state
file brings back exactly that pair after a restart.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from demo.platform import demo_dir, haproxy_config_path, haproxy_executable
from drc.catalog import Catalog, Redundancy, Replica, Service
from drc.names import backend_name, frontend_name, server_name
from drc.process import spawn_logged, stop_child

_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes, one of them the terminating NUL


def haproxy_socket_path(home: Path) -> Path:
    """The default runtime-API socket under ``home``."""
    return demo_dir(home) / "haproxy.sock"


def haproxy_config(catalog: Catalog, home: Path, socket_path: Path | None = None) -> str:
    """Render haproxy.cfg: an admin stats socket and a frontend/backend per fronted service.

    Services without ``frontend`` are left out. The socket is ``socket_path`` or
    ``haproxy_socket_path(home)``; raises ValueError if that path is too long for a UNIX
    socket (108 bytes), which HAProxy would otherwise reject at start. With a state file in
    the catalog, HAProxy loads it at start; with a traffic-manager service, HAProxy answers
    that service's heartbeat and health paths on its replica's address.
    """
    socket_path = haproxy_socket_path(home) if socket_path is None else socket_path
    if len(str(socket_path).encode()) > _UNIX_PATH_MAX:
        raise ValueError(f"UNIX socket path longer than {_UNIX_PATH_MAX} bytes: {socket_path}")
    state_file = catalog.traffic_control.state_file_path(home)
    sections = [
        [
            "global",
            f"    stats socket {socket_path} mode 600 level admin",
            *([f"    server-state-file {state_file}"] if state_file is not None else []),
        ],
        [
            "defaults",
            "    mode http",
            "    timeout connect 200ms",
            "    timeout client 5s",
            "    timeout server 5s",
            # A request whose server fails to connect is retried once on another server.
            "    option redispatch",
            "    retries 1",
            *(["    load-server-state-from-file global"] if state_file is not None else []),
        ],
    ]
    if (health := _health_frontend(catalog)) is not None:
        sections.append(health)
    for service in catalog.services:
        if service.frontend is not None:
            sections.append(_frontend(service, service.frontend))
            sections.append(_backend(service))
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def write_haproxy_config(catalog: Catalog, home: Path, socket_path: Path | None = None) -> Path:
    """Write ``haproxy_config`` to ``home/demo/haproxy.cfg`` and return its path.

    Rewriting an existing config is harmless; a running HAProxy keeps its old one. The
    catalog's state file is created (empty) if missing, since HAProxy must find one at start;
    an existing one keeps the states drc saved, less the rows that no longer fit this catalog
    (see ``fit_server_state``).
    """
    path = haproxy_config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(haproxy_config(catalog, home, socket_path), encoding="utf-8")
    if (state_file := catalog.traffic_control.state_file_path(home)) is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        saved = state_file.read_text(encoding="utf-8") if state_file.exists() else ""
        tmp = state_file.with_name(state_file.name + ".fit")
        tmp.write_text(fit_server_state(saved, catalog), encoding="utf-8")
        os.replace(tmp, state_file)
    return path


def fit_server_state(saved: str, catalog: Catalog) -> str:
    """``saved`` (a ``show servers state`` dump) without the rows this catalog's config lacks.

    A row is kept only if its backend and server exist and its port is the replica's port:
    HAProxy 2.6 would otherwise load a stale port over the config's (it keeps the config's
    address but takes the file's port), and a server moved in the catalog would be sent
    traffic at its old port. Anything unreadable yields an empty state (the config's).
    """
    ports = {
        (backend_name(s.name), server_name(r.name)): str(r.url.port)
        for s in catalog.services
        if s.frontend is not None
        for r in s.replicas
    }
    lines = saved.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("#")), None)
    if header is None:
        return ""
    columns = lines[header].lstrip("#").split()
    if not {"be_name", "srv_name", "srv_port"} <= set(columns):
        return ""
    kept = lines[: header + 1]
    for line in lines[header + 1 :]:
        row = dict(zip(columns, line.split(), strict=False))
        if ports.get((row.get("be_name", ""), row.get("srv_name", ""))) == row.get("srv_port"):
            kept.append(line)
    return "\n".join(kept) + "\n"


def _health_frontend(catalog: Catalog) -> list[str] | None:
    """HAProxy answering the traffic manager replica's heartbeat and health paths itself.

    Served by HAProxy alone (no backend), so it answers exactly while HAProxy runs; the body
    mirrors a demo replica's heartbeat (service, replica, pid).
    """
    replica = catalog.traffic_manager_replica()
    name = catalog.traffic_control.haproxy_service
    if replica is None or name is None:
        return None
    body = json.dumps({"service": name, "replica": replica.name}, separators=(",", ":"))
    body = body[:-1] + ',"pid":%pid}'  # %pid: HAProxy's log-format variable for its own pid
    quoted = body.replace('"', '\\"')
    paths = " || ".join(f"{{ path {p} }}" for p in (replica.heartbeat_path, replica.health_path))
    return [
        f"frontend {frontend_name(name)}",
        f"    bind {_address(replica)}",
        "    http-request return status 200 content-type application/json "
        f'lf-string "{quoted}" if {paths}',
        '    http-request return status 404 content-type text/plain string "not found"',
    ]


def _is_tcp(service: Service) -> bool:
    return any(r.protocol == "redis" for r in service.replicas)


def _frontend(service: Service, address: str) -> list[str]:
    lines = [f"frontend {frontend_name(service.name)}", f"    bind {address}"]
    if _is_tcp(service):  # Redis: plain TCP; long client timeouts for pooled connections
        lines += ["    mode tcp", "    timeout client 1h"]
    return [*lines, f"    default_backend {backend_name(service.name)}"]


def _backend(service: Service) -> list[str]:
    lines = [f"backend {backend_name(service.name)}", "    balance roundrobin"]
    if _is_tcp(service):
        # No role check here on purpose: HAProxy must not fail over the state store by itself;
        # drc fences and promotes, and sets which server takes traffic.
        lines += [
            "    mode tcp",
            "    timeout server 1h",
            "    option tcp-check",
            "    tcp-check send PING\\r\\n",
            "    tcp-check expect string +PONG",
        ]
    for replica in service.replicas:
        line = f"    server {server_name(replica.name)} {_address(replica)} "
        line += "check inter 200ms fall 2 rise 2"
        if service.redundancy is Redundancy.ACTIVE_STANDBY and replica.name != service.primary:
            line += " backup"
            if _is_tcp(service):
                # A state standby starts in maintenance: a pooled client connection must never
                # land on a read-only replica, even while a failover has the new primary held
                # (with three replicas, the third would otherwise take every connection then).
                # The failover's switch makes the promoted one ready.
                line += " disabled"
        lines.append(line)
    return lines


def _address(replica: Replica) -> str:
    host, port = replica.url.host, replica.url.port
    if host is None or port is None:
        raise ValueError(f"replica {replica.name}: url {replica.url} names no host and port")
    return f"{host}:{port}"


def check_haproxy_config(config: Path) -> None:
    """Run ``haproxy -c -f config``; raise RuntimeError quoting HAProxy if it is invalid."""
    run = subprocess.run(
        [haproxy_executable(), "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"invalid HAProxy config {config}:\n{run.stdout}{run.stderr}")


def start_haproxy(config: Path, socket_path: Path, timeout: float = 10) -> subprocess.Popen[bytes]:
    """Validate ``config``, start ``haproxy -f config -db`` as a child, wait for its socket.

    Returns once the runtime socket at ``socket_path`` answers ``show info`` from this very
    process. HAProxy's output goes to ``haproxy.out`` beside the config. Raises RuntimeError
    (after stopping HAProxy) if the config is invalid, HAProxy exits, or ``timeout`` passes.
    """
    check_haproxy_config(config)
    out = config.parent / "haproxy.out"
    proc = spawn_logged([haproxy_executable(), "-f", str(config), "-db"], out)
    try:
        _wait_ready(proc, socket_path, timeout, out)
    except BaseException:
        stop_haproxy(proc)
        raise
    return proc


def stop_haproxy(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM HAProxy (an immediate stop), wait, and SIGKILL it if it lingers."""
    stop_child(proc, timeout)


def _wait_ready(
    proc: subprocess.Popen[bytes], socket_path: Path, timeout: float, out: Path
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with status {proc.returncode}: {_tail(out)}")
        try:
            info = _ask(socket_path, "show info")
        except OSError as exc:
            last = f"socket {socket_path}: {exc}"
        else:
            # -db keeps HAProxy in the foreground as one process, so its Pid is our child's;
            # anything else answering is a leftover HAProxy we must not drive.
            if f"\nPid: {proc.pid}\n" in info:
                return
            last = f"the HAProxy answering on {socket_path} is not pid {proc.pid}"
        time.sleep(0.05)
    raise RuntimeError(f"haproxy not ready after {timeout}s: {last}; {_tail(out)}")


def _ask(socket_path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(str(socket_path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no output)"
