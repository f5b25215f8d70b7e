"""The production deployment (docker-compose.yml, Dockerfile) checked without a Docker engine.

Two real validators read the compose file: Debian's ``docker-compose`` (``config``, which parses,
interpolates, merges and validates it without a daemon) and the Compose specification's JSON
schema (``tests/fixtures/compose-spec.json``, vendored from compose-spec/compose-spec,
``schema/compose-spec.json`` at 00655e2222608fa6eaecdf12ac5195889ca2244a). The rest checks what
Compose would hand drc's containers against drc itself: every command parses with drc's CLI,
every ``DRC_*`` variable is a setting and parses, addresses name services that exist, and the
metrics drc serves are the ones Prometheus scrapes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from sqlalchemy.engine import make_url

from drc.catalog_loader import load_catalog
from drc.names import SEARCH_ATTRIBUTES
from drc.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).resolve().parent / "fixtures" / "compose-spec.json"

# What an operator must supply (no default password, token or site configuration); the
# reference catalog stands in for the site's.
REQUIRED = {
    "POSTGRES_PASSWORD": "pg-secret",
    "DRC_API_TOKEN": "api-secret",
    "DRC_CONFIG_DIR": str(ROOT / "demo"),
}
# Variables a drc container may get besides DRC_* settings, and why.
NOT_SETTINGS = {"PGPASSWORD": "libpq reads the store's password from it"}

Compose = dict[str, Any]


def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.skip(
            "needs Debian's docker-compose: apt-get install --no-install-recommends docker-compose"
        )
    return path


def _run_compose(env: dict[str, str], tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` on the file, with exactly ``env`` for interpolation."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRC_", "POSTGRES_", "COMPOSE_", "DOCKER_"))
    }
    no_env_file = tmp / "empty.env"  # never a developer's .env
    no_env_file.touch()
    return subprocess.run(
        [_docker_compose(), "--env-file", str(no_env_file), "-f", str(COMPOSE_FILE), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    """The file as Compose resolves it (interpolated, anchors merged, paths made absolute)."""
    done = _run_compose(REQUIRED, tmp_path_factory.mktemp("compose"), "config")
    assert done.returncode == 0, done.stderr
    resolved: Compose = yaml.safe_load(done.stdout)
    return resolved


def _services(compose: Compose) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _drc_services(compose: Compose) -> dict[str, dict[str, Any]]:
    """The containers of drc's own image: the ones built from this repository."""
    return {name: s for name, s in _services(compose).items() if "build" in s}


def _by_command(compose: Compose, command: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _drc_services(compose).items() if s["command"][0] == command}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a host path or a volume name), from the short syntax."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """Where a path inside ``service`` comes from on the host (through a bind mount)."""
    for target, source in _mounts(service).items():
        if container_path == target or container_path.startswith(target + "/"):
            return Path(source) / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted from the host")


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# --- the file is valid Compose ------------------------------------------------------------------


def test_a_compose_parser_accepts_the_file(tmp_path: Path) -> None:
    done = _run_compose(REQUIRED, tmp_path, "config", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # not even a warning


def test_the_file_is_valid_under_the_compose_specification() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    # The schema does constrain: a misspelt condition is refused.
    document["services"]["drc-api"]["depends_on"]["temporal"] = {"conditon": "service_healthy"}
    assert not validator.is_valid(document)


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_secrets_and_the_site_configuration_have_no_default(tmp_path: Path, variable: str) -> None:
    missing = {k: v for k, v in REQUIRED.items() if k != variable}
    done = _run_compose(missing, tmp_path, "config", "-q")
    assert done.returncode != 0 and variable in done.stderr, done.stderr


# --- what Compose hands drc matches drc ---------------------------------------------------------


def _drc_cli() -> Any:
    """drc's command line as the ``drc`` console script builds it (``workers.cli.main``)."""
    from workers.cli import app
    from workers.cli_chaos import chaos_app
    from workers.cli_incidents import register

    root = typer.Typer()
    root.registered_commands = [*app.registered_commands]
    root.registered_groups = [*app.registered_groups]
    register(root)
    root.add_typer(chaos_app, name="chaos")
    return typer.main.get_command(root)


def parse_drc(args: list[str]) -> Any:
    """Parse ``drc ARGS`` as the console script would and return the command's context, running
    nothing; AssertionError with click's message for what drc would refuse with a usage error
    (an unknown command or option, a bad value).

    Duck-typed on click's interface: typer may bring its own copy of click.
    """
    command, name, parent, words = _drc_cli(), "drc", None, list(args)
    try:
        while hasattr(command, "list_commands"):  # a group: the next word names a command
            parent = command.context_class(command, info_name=name, parent=parent)
            assert words, f"drc {' '.join(args)}: no command given"
            name = words.pop(0)
            sub = command.get_command(parent, name)
            known = ", ".join(command.list_commands(parent))
            assert sub is not None, f"drc has no command {name!r} (it has: {known})"
            command = sub
        return command.make_context(name, words, parent=parent)
    except Exception as exc:
        if getattr(exc, "exit_code", None) != 2 or not hasattr(exc, "format_message"):
            raise
        raise AssertionError(f"drc {' '.join(args)}: {exc.format_message()}") from exc


def test_every_drc_command_parses_with_drcs_own_cli(compose: Compose) -> None:
    drc = _drc_services(compose)
    assert drc, "no drc container"
    for service in drc.values():
        parse_drc(service["command"])


def test_parsing_refuses_what_drc_would_refuse() -> None:
    with pytest.raises(AssertionError, match="--colour"):
        parse_drc(["worker", "--colour", "red"])
    with pytest.raises(AssertionError, match="--port"):
        parse_drc(["api", "--port", "0"])
    with pytest.raises(AssertionError, match="no command 'wrker'"):
        parse_drc(["wrker"])
    assert parse_drc(["worker", "--region", "nyc"]).params["region"] == "nyc"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in list(os.environ):
        if key.startswith("DRC_"):
            monkeypatch.delenv(key)
    yield monkeypatch


def test_every_drc_variable_is_a_setting_and_parses(
    compose: Compose, clean_environment: pytest.MonkeyPatch
) -> None:
    fields = {f"DRC_{name.upper()}": name for name in Settings.model_fields}
    for name, service in _drc_services(compose).items():
        environment: dict[str, str] = service["environment"]
        unknown = {
            k for k in environment if k not in fields and k not in NOT_SETTINGS
        }  # Settings ignores unknown DRC_* variables: a typo would pass silently
        assert not unknown, f"{name}: not drc settings: {sorted(unknown)}"
        with pytest.MonkeyPatch.context() as env:
            for key, value in environment.items():
                env.setenv(key, value)
            settings = Settings()  # raises ValidationError on a value that does not parse
        for key, value in environment.items():
            parsed = getattr(settings, fields[key]) if key in fields else None
            if isinstance(parsed, str | int | Path):  # the others: lists, secrets
                assert str(parsed) == value, f"{name}: {key}={value!r} read as {parsed!r}"


def test_drcs_addresses_name_services_of_the_file(compose: Compose) -> None:
    services = _services(compose)
    for name, service in _drc_services(compose).items():
        environment = service["environment"]
        host, port = environment["DRC_TEMPORAL_ADDRESS"].rsplit(":", 1)
        assert host in services and port == "7233", f"{name}: {host}:{port}"
        url = make_url(environment["DRC_DATABASE_URL"])
        assert url.drivername == "postgresql+psycopg", f"{name}: the store is {url.drivername}"
        assert url.host in services and url.password is None, f"{name}: {url!r}"
        postgres = services[url.host]["environment"]
        assert (url.username, url.database) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
        assert environment["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"]


def test_every_drc_container_has_a_health_check_on_what_it_serves(compose: Compose) -> None:
    workers = _by_command(compose, "worker")
    assert len(workers) >= 2, "at least two drc workers"
    for name, service in workers.items():
        port = _port(service["environment"]["DRC_METRICS_ADDRESS"])
        assert f"http://127.0.0.1:{port}/metrics" in " ".join(service["healthcheck"]["test"]), name
    for name, service in _by_command(compose, "api").items():
        port = parse_drc(service["command"]).params["port"] or Settings().api_port
        assert f"http://127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"]), name


def test_two_main_workers_share_the_drc_queue(compose: Compose) -> None:
    main = [
        n
        for n, s in _by_command(compose, "worker").items()
        if parse_drc(s["command"]).params["region"] is None
    ]
    assert len(main) >= 2, main


def test_vantage_workers_are_vantage_points_of_the_mounted_catalog(compose: Compose) -> None:
    for name, service in _by_command(compose, "worker").items():
        region = parse_drc(service["command"]).params["region"]
        if region is None:
            continue
        catalog = load_catalog(_host_path(service, service["environment"]["DRC_CATALOG"]))
        known = [v.name for v in catalog.vantage_points]
        assert region in known, f"{name}: --region {region} is not in {known}"


def test_prometheus_scrapes_the_api_and_every_worker(compose: Compose) -> None:
    prometheus = _services(compose)["prometheus"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in prometheus["command"])
    config = yaml.safe_load(_host_path(prometheus, flags["config.file"]).read_text())
    scraped = {
        (target, job.get("metrics_path", "/metrics"))
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for name, service in _by_command(compose, "worker").items():
        port = _port(service["environment"]["DRC_METRICS_ADDRESS"])
        assert (f"{name}:{port}", "/metrics") in scraped, name
    for name, service in _by_command(compose, "api").items():
        port = parse_drc(service["command"]).params["port"] or Settings().api_port
        assert (f"{name}:{port}", "/metrics") in scraped, name


def test_the_init_job_registers_drcs_search_attributes(compose: Compose) -> None:
    script = "\n".join(_services(compose)["temporal-init"]["command"])
    registered = dict(re.findall(r"^\s*register (\S+) (\S+)\s*$", script, re.MULTILINE))
    assert registered == SEARCH_ATTRIBUTES
    for name in _drc_services(compose):
        condition = _services(compose)[name]["depends_on"]["temporal-init"]["condition"]
        assert condition == "service_completed_successfully", name


# --- production shape ---------------------------------------------------------------------------


def test_every_image_is_pinned_to_a_version(compose: Compose) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in _services(compose).items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} floats"
        if "build" in service:
            assert tag == version, f"{name}: {image} is not drc {version}"


def test_dependencies_wait_for_health_or_completion(compose: Compose) -> None:
    services = _services(compose)
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            expected = (
                "service_healthy"
                if "healthcheck" in services[dependency]
                else "service_completed_successfully"  # a one-shot job
            )
            assert how["condition"] == expected, f"{name} -> {dependency}: {how}"


def test_long_running_services_restart_and_jobs_retry_a_little(compose: Compose) -> None:
    services = _services(compose)
    jobs = {
        dep
        for s in services.values()
        for dep, how in s.get("depends_on", {}).items()
        if how["condition"] == "service_completed_successfully"
    }
    assert jobs == {"temporal-schema", "temporal-init"}
    for name, service in services.items():
        expected = "on-failure:5" if name in jobs else "unless-stopped"
        assert service["restart"] == expected, name


def test_postgresql_keeps_its_data_in_a_named_volume(compose: Compose) -> None:
    source = _mounts(_services(compose)["postgresql"])["/var/lib/postgresql/data"]
    assert source in compose["volumes"], f"{source} is not a named volume"


def test_bind_mounted_files_of_the_repository_exist(compose: Compose) -> None:
    for name, service in _services(compose).items():
        for source in _mounts(service).values():
            if source.startswith(str(ROOT)):
                assert Path(source).exists(), f"{name}: {source}"


def test_temporals_dynamic_config_is_mounted_and_well_formed(compose: Compose) -> None:
    temporal = _services(compose)["temporal"]
    path = _host_path(temporal, temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"])
    config = yaml.safe_load(path.read_text())
    assert config and all(
        isinstance(values, list) and all("value" in v for v in values) for values in config.values()
    ), config


def test_no_development_settings(compose: Compose) -> None:
    for name, service in _services(compose).items():
        words = " ".join(
            [
                service["image"],
                *service.get("command", []),
                *service.get("entrypoint", []),
                *map(str, service.get("environment", {}).values()),
            ]
        )
        for dev in ("auto-setup", "start-dev", "sqlite", "development", "trust"):
            assert dev not in words, f"{name}: {dev}"
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), f"{name}: {published} is not loopback"


def test_the_image_runs_drc_as_a_non_root_user_from_a_pinned_base(compose: Compose) -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", b) for b in bases), bases
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    assert 'ENTRYPOINT ["drc"]' in lines
    for name, service in _drc_services(compose).items():
        assert service["build"]["context"] == str(ROOT), name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".drc", ".git"} <= set(ignored), ignored
