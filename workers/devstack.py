"""The embedded dev stack: Temporal dev server (SQLite, WAL), supervisord with the demo, worker.

Each part is a child process in its own session, with its log under ``$DRC_HOME/logs``;
``workers.supervision`` keeps them running and stops them in reverse order. Temporal state
persists in ``$DRC_HOME/temporal.db``, so a second ``drc up`` resumes the same monitors.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from drc.names import SEARCH_ATTRIBUTES
from drc.process import die_with_parent, venv_bin


@dataclass
class Child:
    """A child process of the stack, with its name and log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what outlives ``timeout``."""
        if self.proc.poll() is not None:
            return
        _signal_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc, signal.SIGKILL)
            self.proc.wait(5)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own session: reach its children too
    except ProcessLookupError:
        try:
            proc.send_signal(sig)  # not a group leader: signal the process alone
        except ProcessLookupError:
            pass


def spawn(name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None) -> Child:
    """Start ``argv`` in its own session with stdout and stderr appended to ``logs/<name>.log``."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            preexec_fn=die_with_parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    return Child(name, proc, log)


def temporal_dev_server_argv(home: Path, port: int, ui_port: int | None) -> list[str]:
    """The ``temporal server start-dev`` command line drc uses (persistent SQLite in WAL mode)."""
    argv = [
        venv_bin("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--db-filename",
        str(home / "temporal.db"),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--log-level",
        "warn",
    ]
    argv += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    return argv


async def wait_temporal_ready(
    address: str, namespace: str, child: Child | None = None, timeout: float = 60.0
) -> Client:
    """Connect once the server answers and drc's search attributes are registered."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if child is not None and child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited ({child.proc.returncode}); see {child.log}")
        try:
            client = await Client.connect(address, namespace=namespace)
            found = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            if set(SEARCH_ATTRIBUTES) <= set(found.custom_attributes):
                return client
            last = RuntimeError(f"search attributes not registered yet: {found.custom_attributes}")
        except RuntimeError as exc:
            last = exc
        await asyncio.sleep(0.2)
    raise TimeoutError(f"Temporal at {address} not ready after {timeout:g} s: {last}")


def start_temporal(home: Path, port: int, ui_port: int | None = None) -> Child:
    """Start the dev server; the caller waits with ``wait_temporal_ready``."""
    home.mkdir(parents=True, exist_ok=True)
    return spawn("temporal", temporal_dev_server_argv(home, port, ui_port), home / "logs")
