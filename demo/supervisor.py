"""Start and stop the supervisord that runs the demo's replicas."""

from __future__ import annotations

import base64
import configparser
import subprocess
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from drc.credentials import Credentials
from drc.process import spawn_logged, stop_child, venv_bin


def start_supervisord(
    config: Path, supervisor_url: str, timeout: float = 30
) -> subprocess.Popen[bytes]:
    """Start ``supervisord -c config`` and wait until it and every autostart program run.

    supervisord's own output goes to ``supervisord.out`` beside the config. Raises
    RuntimeError (after stopping supervisord) if it exits, a program fails to start, or
    ``timeout`` passes; the message carries the reason. It logs in as supervisorctl does,
    with the config's ``[supervisorctl]`` username and password.
    """
    out = config.parent / "supervisord.out"
    credentials = config_credentials(config)
    proc = spawn_logged([venv_bin("supervisord"), "-c", str(config)], out)
    try:
        _wait_running(proc, supervisor_url, credentials, timeout, out)
    except BaseException:
        stop_supervisord(proc)
        raise
    return proc


def stop_supervisord(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM supervisord (which stops its programs), wait, and SIGKILL if it lingers."""
    stop_child(proc, timeout)


def supervisor_proxy(supervisor_url: str, credentials: Credentials | None) -> Any:
    """An XML-RPC client of supervisord at ``supervisor_url``, logged in with ``credentials``.

    The login goes in a header, never in the URL, so that no error message shows it.
    """
    headers: list[tuple[str, str]] = []
    if credentials is not None:
        pair = f"{credentials.username}:{credentials.password}".encode()
        headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode("ascii")))
    transport = xmlrpc.client.Transport(headers=headers)
    return xmlrpc.client.ServerProxy(supervisor_url, transport=transport)


def config_credentials(config: Path) -> Credentials | None:
    """The login in ``config``'s ``[supervisorctl]`` section (as supervisorctl reads it)."""
    parser = configparser.RawConfigParser()
    parser.read(config, encoding="utf-8")
    if not parser.has_option("supervisorctl", "username"):
        return None
    # supervisord expands %(name)s in values: a literal % is written %% (demo.platform).
    username = parser.get("supervisorctl", "username").replace("%%", "%")
    password = parser.get("supervisorctl", "password", fallback="").replace("%%", "%")
    return Credentials(username, password)


def _wait_running(
    proc: subprocess.Popen[bytes],
    supervisor_url: str,
    credentials: Credentials | None,
    timeout: float,
    out: Path,
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"supervisord exited with status {proc.returncode}: {_tail(out)}")
        try:
            last = _not_ready_reason(supervisor_proxy(supervisor_url, credentials), proc.pid)
        except (OSError, xmlrpc.client.Error) as exc:
            last = f"XML-RPC at {supervisor_url}: {exc}"
        if not last:
            return
        time.sleep(0.1)
    raise RuntimeError(f"supervisord not ready after {timeout}s: {last}")


def _not_ready_reason(server: Any, pid: int) -> str:
    """Empty when supervisord and every autostart program are RUNNING; else why not.

    Raises RuntimeError when an autostart program already ended: waiting will not help.
    """
    # Another supervisord may hold the port (ours then exits with "already listening"):
    # never take its answers, or its programs, for ours.
    other = server.supervisor.getPID()
    if other != pid:
        return f"the supervisord answering is pid {other}, not ours ({pid})"
    state = server.supervisor.getState()["statename"]
    if state != "RUNNING":
        return f"supervisord is {state}"
    autostart = {c["name"] for c in server.supervisor.getAllConfigInfo() if c["autostart"]}
    waiting = []
    for info in server.supervisor.getAllProcessInfo():
        if info["name"] not in autostart or info["statename"] == "RUNNING":
            continue
        if info["statename"] in ("EXITED", "FATAL", "STOPPED") and info["start"]:
            raise RuntimeError(
                f"program {info['name']} is {info['statename']} "
                f"(exit status {info['exitstatus']}, {info['description']})"
            )
        waiting.append(f"{info['name']} {info['statename']}")
    return "waiting for " + ", ".join(waiting) if waiting else ""


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
