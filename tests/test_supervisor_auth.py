"""supervisord's XML-RPC asks for a login (kept in $DRC_HOME, mode 0600): a real supervisord."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import xmlrpc.client
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from activities.process_control import (
    SupervisorAuthError,
    SupervisorController,
    to_application_error,
)
from demo.platform import supervisor_config
from demo.supervisor import config_credentials, supervisor_proxy
from drc.credentials import (
    SUPERVISOR_CREDENTIALS_FILE,
    Credentials,
    CredentialsError,
    ensure_credentials,
    read_credentials,
    supervisor_credentials,
)
from drc.settings import Settings
from tests.support.supervisor import Platform, running_platform, small_catalog


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with running_platform(tmp_path, small_catalog(("market-data",))) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_call_without_the_login_is_refused_and_changes_nothing(
    platform: Platform, http: httpx.AsyncClient
):
    before = platform.rpc().getProcessInfo("md-a")
    body = xmlrpc.client.dumps(("md-a", True), methodname="supervisor.stopProcess")
    resp = await http.post(platform.supervisor_url, content=body.encode())
    assert resp.status_code == 401
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        supervisor_proxy(platform.supervisor_url, None).supervisor.stopProcess("md-a")
    assert caught.value.errcode == 401

    with pytest.raises(SupervisorAuthError) as refused:
        await SupervisorController(http).stop(platform.supervisor_url, "md-a")
    assert str(refused.value) == (
        f"supervisord at {platform.supervisor_url} requires credentials (HTTP 401) and drc "
        "has none: set DRC_SUPERVISOR_CREDENTIALS (a mode-0600 file holding user:password)"
    )
    after = platform.rpc().getProcessInfo("md-a")
    assert (after["statename"], after["pid"]) == ("RUNNING", before["pid"])


async def test_a_wrong_password_is_refused_for_good(platform: Platform, http: httpx.AsyncClient):
    wrong = Credentials(platform.credentials.username, "not-the-password")
    control = SupervisorController(http, credentials=wrong)
    with pytest.raises(SupervisorAuthError) as caught:
        await control.stop(platform.supervisor_url, "md-b")
    assert str(caught.value) == (
        f"supervisord at {platform.supervisor_url} refused the credentials (HTTP 401): "
        "check DRC_SUPERVISOR_CREDENTIALS"
    )
    assert "not-the-password" not in str(caught.value)
    error = to_application_error(caught.value)
    assert error.type == "ProcessControl" and error.non_retryable  # a retry cannot cure it
    with pytest.raises(xmlrpc.client.ProtocolError, match="401"):
        supervisor_proxy(platform.supervisor_url, wrong).supervisor.getState()
    assert platform.rpc().getProcessInfo("md-b")["statename"] == "RUNNING"


async def test_with_the_login_the_controller_stops_and_starts(
    platform: Platform, http: httpx.AsyncClient
):
    control = SupervisorController(http, credentials=platform.credentials)
    stopped = await control.stop(platform.supervisor_url, "md-a")
    assert (stopped.action, stopped.state_after) == ("stop", "STOPPED")
    started = await control.start(platform.supervisor_url, "md-a")
    assert (started.action, started.state_after) == ("start", "RUNNING")


def test_the_login_and_the_config_are_for_their_owner_alone(platform: Platform):
    credentials = platform.home / SUPERVISOR_CREDENTIALS_FILE
    config = platform.home / "demo" / "supervisord.conf"
    assert mode(credentials) == 0o600 and mode(config) == 0o600
    login = platform.credentials
    assert login.username == "drc" and len(login.password) >= 40
    text = config.read_text()
    server = text.split("[inet_http_server]", 1)[1].split("\n[", 1)[0]
    assert f"username={login.username}" in server
    assert f"password={login.sha1_password()}" in server  # only the hash where it is checked
    assert login.password not in server
    assert config_credentials(config) == login  # supervisorctl -c <config> logs in with it


def test_a_config_written_again_keeps_the_login_and_becomes_private(tmp_path: Path):
    from demo.platform import write_supervisor_config

    catalog = small_catalog(("market-data",))
    config = write_supervisor_config(catalog, tmp_path)
    first = read_credentials(tmp_path / SUPERVISOR_CREDENTIALS_FILE)
    config.chmod(0o644)  # as a config written before it held a password was
    assert write_supervisor_config(catalog, tmp_path) == config
    assert read_credentials(tmp_path / SUPERVISOR_CREDENTIALS_FILE) == first
    assert mode(config) == 0o600


def test_without_a_login_the_config_asks_for_none(tmp_path: Path):
    config = supervisor_config(small_catalog(("market-data",)), tmp_path)
    assert "username=" not in config and "password=" not in config


def test_a_login_file_others_may_read_is_refused(tmp_path: Path):
    path = tmp_path / SUPERVISOR_CREDENTIALS_FILE
    ensure_credentials(path)
    path.chmod(0o640)
    with pytest.raises(CredentialsError) as caught:
        read_credentials(path)
    assert str(caught.value) == (
        f"{path} has mode 0640: credentials must be readable by their owner alone "
        f"(chmod 600 {path})"
    )
    with pytest.raises(CredentialsError, match=f"^{re.escape(str(path))} has mode 0640"):
        supervisor_credentials(Settings(home=tmp_path))
    named = Settings(home=tmp_path / "elsewhere", supervisor_credentials=path)
    with pytest.raises(CredentialsError) as env:
        supervisor_credentials(named)
    assert str(env.value).startswith(f"DRC_SUPERVISOR_CREDENTIALS: {path} has mode 0640")


def test_drc_worker_refuses_a_login_file_others_may_read_at_startup(tmp_path: Path):
    path = tmp_path / SUPERVISOR_CREDENTIALS_FILE
    ensure_credentials(path)
    path.chmod(0o644)
    env = {**os.environ, "DRC_HOME": str(tmp_path)}
    env.pop("DRC_SUPERVISOR_CREDENTIALS", None)
    argv = [sys.executable, "-m", "workers.cli", "worker"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: {path} has mode 0644: credentials must be readable by their owner alone "
        f"(chmod 600 {path})\n"
    )


def test_where_drc_finds_its_login(tmp_path: Path):
    assert supervisor_credentials(Settings(home=tmp_path)) is None  # none: no login sent
    written = ensure_credentials(tmp_path / SUPERVISOR_CREDENTIALS_FILE)
    assert supervisor_credentials(Settings(home=tmp_path)) == written
    own = tmp_path / "own"
    own.write_text("ops:s3cret\n")
    own.chmod(0o600)
    assert supervisor_credentials(Settings(home=tmp_path, supervisor_credentials=own)) == (
        Credentials("ops", "s3cret")
    )
    missing = Settings(home=tmp_path, supervisor_credentials=tmp_path / "nope")
    with pytest.raises(CredentialsError) as caught:
        supervisor_credentials(missing)
    assert str(caught.value) == f"DRC_SUPERVISOR_CREDENTIALS: {tmp_path / 'nope'} does not exist"


def test_a_login_file_is_created_private_and_kept(tmp_path: Path):
    path = tmp_path / "home" / SUPERVISOR_CREDENTIALS_FILE
    old = os.umask(0)  # the file's mode must not depend on the umask
    try:
        first = ensure_credentials(path)
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert ensure_credentials(path) == first
    assert sorted(p.name for p in path.parent.iterdir()) == [SUPERVISOR_CREDENTIALS_FILE]
    assert first.password not in repr(first)


@pytest.mark.parametrize(
    "text", ["", "no-colon\n", ":password\n", "user:\n", "a:b\nc:d\n", "a\nb:c\n"]
)
def test_a_login_file_that_is_not_user_colon_password_is_refused(tmp_path: Path, text: str):
    path = tmp_path / "credentials"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(CredentialsError) as caught:
        read_credentials(path)
    assert str(caught.value) == f"{path} must hold one line 'user:password'"
