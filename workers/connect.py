"""One way to reach Temporal, with the project's data converter (pydantic, on both sides).

In production the client speaks TLS: mutual TLS with a client certificate and key, a CA of
the cluster's own, and a server name (``DRC_TEMPORAL_TLS_*``), and/or an API key
(``DRC_TEMPORAL_API_KEY``, Temporal Cloud), which implies TLS with the system's CAs.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from drc.credentials import CredentialsError
from drc.settings import Settings

CERT_ENV = "DRC_TEMPORAL_TLS_CERT"
KEY_ENV = "DRC_TEMPORAL_TLS_KEY"
CA_ENV = "DRC_TEMPORAL_TLS_CA"


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for drc's namespace; raises RuntimeError naming the address if none answers.

    ``runtime``: the SDK runtime to use (a worker's, with its metrics exporter); default the
    SDK's own. Raises ``CredentialsError`` before any connection when the TLS settings cannot
    be used (see ``tls_config``).
    """
    tls = tls_config(settings)
    api_key = settings.temporal_api_key
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            runtime=runtime,
            tls=tls,
            api_key=api_key.get_secret_value() if api_key is not None else None,
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}, {'with' if tls else 'without'} TLS): "
            f"{exc}"
        ) from exc


def tls_config(settings: Settings) -> TLSConfig | bool | None:
    """The client's TLS from the settings: a ``TLSConfig``, True (TLS, system CAs) or None.

    Any ``DRC_TEMPORAL_TLS_*`` setting gives a ``TLSConfig`` with the PEM files read now; an
    API key alone gives True (Temporal Cloud); nothing gives None (plain, the dev server).
    Raises ``CredentialsError`` naming the variables when a certificate comes without its key
    (or a key without its certificate), and naming the variable and path of a file that
    cannot be read or holds no PEM.
    """
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        given, missing = (CERT_ENV, KEY_ENV) if key is None else (KEY_ENV, CERT_ENV)
        raise CredentialsError(
            f"{CERT_ENV} and {KEY_ENV} go together (mutual TLS needs the client certificate "
            f"and its private key): {given} is set, {missing} is not"
        )
    ca, server_name = settings.temporal_tls_ca, settings.temporal_tls_server_name
    if cert is None and ca is None and server_name is None:
        return True if settings.temporal_api_key is not None else None
    return TLSConfig(
        client_cert=_pem(CERT_ENV, cert),
        client_private_key=_pem(KEY_ENV, key),
        server_root_ca_cert=_pem(CA_ENV, ca),
        domain=server_name,
    )


def _pem(variable: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialsError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data:
        raise CredentialsError(f"{variable}: {path} holds no PEM block (-----BEGIN ...)")
    return data
