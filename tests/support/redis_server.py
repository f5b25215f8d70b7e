"""A real redis-server on a free port in a temporary directory (never 6379)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.net import free_port, wait_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class RedisServer:
    """A running redis-server process."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Terminate the server and wait for it; safe to call twice, and after ``pause``."""
        if self.process.poll() is None:
            self.resume()  # a stopped process only acts on SIGTERM once continued
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its sockets (connects succeed) but answers nothing."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the server after ``pause``; harmless when it is not paused."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def wait_link_up(self, timeout: float = 10.0) -> None:
        """For a replica: block until its link to the primary is up."""
        client = redis.Redis(port=self.port)
        try:
            deadline = time.monotonic() + timeout
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica on {self.port} never linked to its primary")
                time.sleep(0.05)
        finally:
            client.close()


def start_redis(
    tmp_path: Path, port: int | None = None, replica_of: int | None = None
) -> RedisServer:
    """Start redis-server without persistence; ``replica_of`` makes it replicate that port."""
    port = port or free_port()
    if port == 6379:
        raise ValueError("port 6379 belongs to someone else's Redis")
    workdir = tmp_path / f"redis-{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        REDIS_SERVER,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        # The default waits 5 s for more replicas before a full sync; tests have one.
        "--repl-diskless-sync-delay",
        "0",
    ]
    if replica_of is not None:
        args += ["--replicaof", "127.0.0.1", str(replica_of)]
    log = workdir / "redis.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = RedisServer(port=port, process=process, log=log)
    try:
        wait_port(port, timeout=10)
    except TimeoutError:
        server.stop()
        raise
    return server
