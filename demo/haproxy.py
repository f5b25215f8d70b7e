"""The HAProxy configuration that fronts every service with a ``frontend``, and its process.

Each such service gets ``frontend fe_<service>`` on its ``frontend`` address and
``backend be_<service>`` with one server per replica. An active/standby service's
non-primary replicas are ``backup`` servers, so HAProxy sends traffic to the primary alone
and to a standby only once the primary is down or in maintenance. drc switches traffic
through the runtime API on the admin-level stats socket; the names it uses come from
``backend_name`` and ``server_name``, the same functions that write this file.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from demo.platform import demo_dir
from drc.catalog import Catalog, Redundancy, Replica, Service
from drc.names import backend_name, frontend_name, server_name
from drc.process import spawn_logged, stop_child

_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes, one of them the terminating NUL


def haproxy_config_path(home: Path) -> Path:
    """Where ``write_haproxy_config`` puts the configuration under ``home``."""
    return demo_dir(home) / "haproxy.cfg"


def haproxy_socket_path(home: Path) -> Path:
    """The default runtime-API socket under ``home``."""
    return demo_dir(home) / "haproxy.sock"


def haproxy_config(catalog: Catalog, home: Path, socket_path: Path | None = None) -> str:
    """Render haproxy.cfg: an admin stats socket and a frontend/backend per fronted service.

    Services without ``frontend`` are left out. The socket is ``socket_path`` or
    ``haproxy_socket_path(home)``; raises ValueError if that path is too long for a UNIX
    socket (108 bytes), which HAProxy would otherwise reject at start.
    """
    socket_path = haproxy_socket_path(home) if socket_path is None else socket_path
    if len(str(socket_path).encode()) > _UNIX_PATH_MAX:
        raise ValueError(f"UNIX socket path longer than {_UNIX_PATH_MAX} bytes: {socket_path}")
    sections = [
        [
            "global",
            f"    stats socket {socket_path} mode 600 level admin",
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
        ],
    ]
    for service in catalog.services:
        if service.frontend is not None:
            sections.append(_frontend(service, service.frontend))
            sections.append(_backend(service))
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def write_haproxy_config(catalog: Catalog, home: Path, socket_path: Path | None = None) -> Path:
    """Write ``haproxy_config`` to ``home/demo/haproxy.cfg`` and return its path.

    Rewriting an existing config is harmless; a running HAProxy keeps its old one.
    """
    path = haproxy_config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(haproxy_config(catalog, home, socket_path), encoding="utf-8")
    return path


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
        lines.append(line)
    return lines


def _address(replica: Replica) -> str:
    host, port = replica.url.host, replica.url.port
    if host is None or port is None:
        raise ValueError(f"replica {replica.name}: url {replica.url} names no host and port")
    return f"{host}:{port}"


def haproxy_executable() -> str:
    """``haproxy`` on PATH, else Debian's ``/usr/sbin/haproxy`` (sbin is often off PATH)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("haproxy is not installed (apt-get install haproxy)")
    return found


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
