"""A real HAProxy fronting a catalog's services, for one test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from activities.traffic import HAProxyRuntime
from demo.haproxy import start_haproxy, stop_haproxy, write_haproxy_config
from drc.catalog import Catalog


@dataclass
class RunningHAProxy:
    """A running HAProxy, its config and its admin socket."""

    catalog: Catalog
    config: Path
    socket_path: Path
    proc: Popen[bytes] = field(repr=False)

    def runtime(self, timeout_s: float = 5.0) -> HAProxyRuntime:
        return HAProxyRuntime(self.socket_path, timeout_s)

    def frontend_url(self, service: str, path: str = "/") -> str:
        found = self.catalog.service(service)
        assert found is not None and found.frontend is not None, service
        return f"http://{found.frontend}{path}"

    def stop(self) -> None:
        stop_haproxy(self.proc)

    def kill_and_restart(self) -> None:
        """SIGKILL HAProxy (no goodbye, as in a crash), then start it again on the same config."""
        self.proc.kill()
        self.proc.wait()
        self.proc = start_haproxy(self.config, self.socket_path)


@contextmanager
def running_haproxy(tmp_path: Path, catalog: Catalog) -> Iterator[RunningHAProxy]:
    """Write the config under ``tmp_path``, start HAProxy, stop it on exit."""
    # pytest's tmp_path can exceed the 107 bytes a UNIX socket path may have.
    sock_dir = Path(tempfile.mkdtemp(prefix="drc-hx-"))
    socket_path = sock_dir / "haproxy.sock"
    config = write_haproxy_config(catalog, tmp_path, socket_path)
    try:
        proc = start_haproxy(config, socket_path)
        running = RunningHAProxy(catalog, config, socket_path, proc)
        try:
            yield running
        finally:
            running.stop()
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
