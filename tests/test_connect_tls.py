"""The Temporal client's TLS and API key, from the environment.

The mapping from settings to the SDK's ``TLSConfig`` is tested directly; an end-to-end test
connects through a mutual-TLS proxy (Python's ``ssl``, certificates made by ``openssl``) in
front of the dev server, which has no TLS of its own, and checks the handshake happened with
drc's client certificate and server name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig

from drc.credentials import CredentialsError
from drc.settings import Settings
from tests.support.temporal import DevServer
from workers.connect import connect, tls_config

CERT = b"-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"
CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    files = {"cert": CERT, "key": KEY, "ca": CA}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {name: tmp_path / f"{name}.pem" for name in files}


def test_no_tls_setting_is_plain():
    assert tls_config(Settings()) is None


def test_an_api_key_alone_turns_tls_on_with_the_system_cas():
    assert tls_config(Settings(temporal_api_key=SecretStr("k"))) is True


def test_mutual_tls_reads_every_file_and_the_server_name(pems: dict[str, Path]):
    settings = Settings(
        temporal_tls_cert=pems["cert"],
        temporal_tls_key=pems["key"],
        temporal_tls_ca=pems["ca"],
        temporal_tls_server_name="temporal.example",
        temporal_api_key=SecretStr("k"),
    )
    assert tls_config(settings) == TLSConfig(
        client_cert=CERT, client_private_key=KEY, server_root_ca_cert=CA, domain="temporal.example"
    )


def test_a_ca_or_a_server_name_alone_is_tls_without_a_client_certificate(pems: dict[str, Path]):
    assert tls_config(Settings(temporal_tls_ca=pems["ca"])) == TLSConfig(server_root_ca_cert=CA)
    assert tls_config(Settings(temporal_tls_server_name="t.example")) == TLSConfig(
        domain="t.example"
    )


def test_the_settings_come_from_the_environment(
    pems: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DRC_TEMPORAL_TLS_CERT", str(pems["cert"]))
    monkeypatch.setenv("DRC_TEMPORAL_TLS_KEY", str(pems["key"]))
    monkeypatch.setenv("DRC_TEMPORAL_TLS_CA", str(pems["ca"]))
    monkeypatch.setenv("DRC_TEMPORAL_TLS_SERVER_NAME", "env.example")
    monkeypatch.setenv("DRC_TEMPORAL_API_KEY", "from-env")
    settings = Settings()
    assert tls_config(settings) == TLSConfig(
        client_cert=CERT, client_private_key=KEY, server_root_ca_cert=CA, domain="env.example"
    )
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("given", "missing"),
    [("cert", "DRC_TEMPORAL_TLS_KEY"), ("key", "DRC_TEMPORAL_TLS_CERT")],
)
def test_half_a_client_pair_is_refused_naming_both(pems: dict[str, Path], given: str, missing: str):
    settings = Settings(**{f"temporal_tls_{given}": pems[given]})
    with pytest.raises(CredentialsError) as caught:
        tls_config(settings)
    message = str(caught.value)
    assert "DRC_TEMPORAL_TLS_CERT" in message and "DRC_TEMPORAL_TLS_KEY" in message
    assert message.endswith(f"{missing} is not")


def test_a_file_that_cannot_be_read_is_named_with_its_variable(pems: dict[str, Path]):
    gone = pems["ca"].parent / "gone.pem"
    settings = Settings(temporal_tls_ca=gone)
    with pytest.raises(CredentialsError) as caught:
        tls_config(settings)
    assert (
        str(caught.value) == f"DRC_TEMPORAL_TLS_CA: cannot read {gone}: No such file or directory"
    )


def test_a_file_without_pem_is_refused(pems: dict[str, Path]):
    pems["key"].write_bytes(b"not a key")
    settings = Settings(temporal_tls_cert=pems["cert"], temporal_tls_key=pems["key"])
    with pytest.raises(CredentialsError) as caught:
        tls_config(settings)
    assert (
        str(caught.value)
        == f"DRC_TEMPORAL_TLS_KEY: {pems['key']} holds no PEM block (-----BEGIN ...)"
    )


async def test_connect_refuses_unusable_settings_before_dialing(pems: dict[str, Path]):
    # Port 1: were it dialed, the error would be "cannot reach Temporal", not this one.
    settings = Settings(temporal_address="127.0.0.1:1", temporal_tls_key=pems["key"])
    with pytest.raises(CredentialsError, match="DRC_TEMPORAL_TLS_CERT and DRC_TEMPORAL_TLS_KEY"):
        await connect(settings)


def test_drc_worker_refuses_half_a_pair_at_startup(pems: dict[str, Path], tmp_path: Path):
    env = {**os.environ, "DRC_HOME": str(tmp_path), "DRC_TEMPORAL_TLS_CERT": str(pems["cert"])}
    env.pop("DRC_TEMPORAL_TLS_KEY", None)
    argv = [sys.executable, "-m", "workers.cli", "worker"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: DRC_TEMPORAL_TLS_CERT and DRC_TEMPORAL_TLS_KEY go")
    assert "Traceback" not in done.stderr


# --- end to end: a mutual-TLS proxy in front of the dev server -----------------------------

SERVER_NAME = "temporal.drc.test"


EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def _issue(ca: Path, name: str, serial: int, extensions: str) -> tuple[Path, Path]:
    """A P-256 key and a certificate for it signed by ``ca``; returns (cert, key)."""
    base = ca.parent
    key, csr, ext, cert = (base / f"{name}.{suffix}" for suffix in ("key", "csr", "ext", "pem"))
    _openssl("req", "-new", *EC_KEY, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    ext.write_text(extensions)
    signed_by = ("-CA", ca, "-CAkey", base / "ca.key", "-set_serial", str(serial))
    _openssl("x509", "-req", "-in", csr, *signed_by, "-days", "2", "-out", cert, "-extfile", ext)
    return cert, key


@dataclass
class Certificates:
    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]


def _certificates(home: Path) -> Certificates:
    home.mkdir()
    ca = home / "ca.pem"
    as_ca = ("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign")
    extensions = [arg for ext in as_ca for arg in ("-addext", ext)]
    out = ("-keyout", home / "ca.key", "-out", ca, "-days", "2")
    _openssl("req", "-x509", *EC_KEY, "-subj", "/CN=drc test CA", *extensions, *out)
    server = _issue(
        ca,
        SERVER_NAME,
        2,
        f"subjectAltName=DNS:{SERVER_NAME}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    client = _issue(
        ca,
        "drc-worker",
        3,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n",
    )
    return Certificates(ca, server, client)


@dataclass
class TlsProxy:
    """Terminates mutual TLS and forwards the bytes (gRPC, HTTP/2) to a plain server."""

    port: int
    server_names: list[str | None] = field(default_factory=list)
    """The SNI of every handshake begun."""
    clients: list[str] = field(default_factory=list)
    """The CN of the client certificate of every handshake completed."""


@contextlib.asynccontextmanager
async def tls_proxy(certs: Certificates, upstream: str) -> AsyncIterator[TlsProxy]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca))
    context.load_cert_chain(*map(str, certs.server))
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no entry
    context.set_alpn_protocols(["h2"])  # gRPC insists on HTTP/2 being negotiated
    host, port = upstream.rsplit(":", 1)
    proxy = TlsProxy(0)
    context.sni_callback = lambda _sock, name, _ctx: proxy.server_names.append(name)
    connections: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        subject = dict(pair for rdn in peer.get("subject", ()) for pair in rdn)
        proxy.clients.append(subject.get("commonName", "?"))
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_a_mutual_tls_handshake_with_drcs_certificate(dev_server: DevServer, tmp_path: Path):
    certs = _certificates(tmp_path / "pki")
    upstream = dev_server.client.service_client.config.target_host
    async with tls_proxy(certs, upstream) as proxy:
        settings = Settings(
            temporal_address=f"127.0.0.1:{proxy.port}",
            temporal_tls_cert=certs.client[0],
            temporal_tls_key=certs.client[1],
            temporal_tls_ca=certs.ca,
            temporal_tls_server_name=SERVER_NAME,
        )
        client = await connect(settings)
        assert await client.service_client.check_health()
        assert proxy.clients and set(proxy.clients) == {"drc-worker"}
        assert set(proxy.server_names) == {SERVER_NAME}

        # Each setting counts: without the client certificate the proxy refuses the
        # handshake; without the server name the certificate does not match 127.0.0.1; without
        # the CA its issuer is unknown; without any, plain HTTP/2 meets a TLS server.
        cert_and_key = {"temporal_tls_cert": None, "temporal_tls_key": None}
        for left_out in (
            cert_and_key,
            {"temporal_tls_server_name": None},
            {"temporal_tls_ca": None},
            {**cert_and_key, "temporal_tls_ca": None, "temporal_tls_server_name": None},
        ):
            without = settings.model_copy(update=left_out)
            with pytest.raises(
                RuntimeError, match=f"cannot reach Temporal at {without.temporal_address}"
            ):
                await asyncio.wait_for(connect(without), timeout=60)
        assert set(proxy.clients) == {"drc-worker"}  # no other handshake got through
