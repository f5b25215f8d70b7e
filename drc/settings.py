"""Connection settings, read from the environment (``DRC_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = REPO_ROOT / "demo" / "catalog.yaml"
DEFAULT_CHAOS_DIR = REPO_ROOT / "runbooks" / "chaos"


class Settings(BaseSettings):
    """Where drc finds Temporal, its state directory and its catalog."""

    model_config = SettingsConfigDict(env_prefix="DRC_", extra="ignore")

    temporal_address: str = Field(
        "127.0.0.1:7233", description="host:port of the Temporal frontend."
    )
    temporal_namespace: str = Field("default", description="Temporal namespace drc runs in.")
    home: Path = Field(Path(".drc"), description="State directory: Temporal DB, logs, demo files.")
    catalog: Path = Field(DEFAULT_CATALOG, description="The service catalog (YAML).")
    task_queue: str = Field("drc", description="Task queue of drc's workflows and activities.")
    chaos_dir: Path = Field(
        DEFAULT_CHAOS_DIR, description="Where chaos experiments are read from (<name>.yaml)."
    )
    watch_group_size: int = Field(
        50,
        ge=0,
        description="Services watched by one watch activity (a WatchGroup workflow); 0 gives "
        "every service a watch activity of its own.",
    )
    database_url: str | None = Field(
        None,
        description="The incident store (SQLAlchemy URL, e.g. postgresql+psycopg://host/db); "
        "unset: SQLite at $DRC_HOME/drc.db.",
    )
    webhooks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated http(s) URLs that receive every notification as JSON "
        "(with a Slack-compatible 'text' field).",
    )
    web_ui: str = Field(
        "http://127.0.0.1:8233", description="Base URL of the Temporal Web UI, for links."
    )
    # --- production: Temporal Cloud or a TLS cluster -------------------------------------------
    temporal_tls_cert: Path | None = Field(
        None, description="Client certificate (PEM) for mutual TLS to Temporal."
    )
    temporal_tls_key: Path | None = Field(
        None, description="Private key (PEM) of temporal_tls_cert; needed with it."
    )
    temporal_tls_ca: Path | None = Field(
        None, description="CA bundle (PEM) that signs the Temporal frontend's certificate."
    )
    temporal_tls_server_name: str | None = Field(
        None, description="Server name to verify the frontend's certificate against (SNI)."
    )
    temporal_api_key: SecretStr | None = Field(
        None, description="API key sent to Temporal (Temporal Cloud); implies TLS."
    )
    # --- the recovery API and metrics -----------------------------------------------------------
    api_host: str = Field(
        "127.0.0.1", description="Address the recovery API binds to (loopback unless set)."
    )
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the recovery API.")
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token for the API's mutating endpoints; unset: one is generated "
        "into $DRC_HOME/api-token (mode 0600) at first start and printed once.",
    )
    metrics_address: str | None = Field(
        None,
        description="host:port where this worker serves Prometheus metrics (drc_* and the "
        "Temporal SDK's own); unset: none.",
    )
    supervisor_credentials: Path | None = Field(
        None,
        description="File holding 'user:password' for supervisord's XML-RPC (mode 0600); "
        "unset: $DRC_HOME/supervisor-credentials when it exists.",
    )

    @field_validator("webhooks", mode="before")
    @classmethod
    def _split_webhooks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for url in value:
                parts = urlsplit(str(url))
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise ValueError(f"DRC_WEBHOOKS: {url!r} is not an http(s) URL")
        return value
