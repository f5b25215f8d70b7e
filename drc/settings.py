"""Connection settings, read from the environment (``DRC_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = REPO_ROOT / "demo" / "catalog.yaml"


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
    watch_group_size: int = Field(
        50,
        ge=0,
        description="Services watched by one watch activity (a WatchGroup workflow); 0 gives "
        "every service a watch activity of its own.",
    )
