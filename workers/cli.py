"""The ``drc`` command line: validate, up, worker, status, restart, failover, incidents, report."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from drc.catalog import Catalog, Service
from drc.catalog_loader import load_catalog
from drc.errors import CatalogError, DrcError, RunbookError, UnknownServiceError
from drc.names import monitor_id
from drc.operator import FailoverRequest, PauseRequest, Plan, ReprotectRequest, RestartRequest
from drc.settings import Settings
from runbooks.runbook import Runbook, load_builtin_runbooks
from workers.connect import connect

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False
)

CatalogOption = Annotated[
    Path | None, typer.Option("--catalog", "-c", help="Catalog YAML (default: $DRC_CATALOG).")
]


def _settings(catalog: Path | None = None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"catalog": catalog}) if catalog else settings


def _load(settings: Settings) -> Catalog:
    try:
        return load_catalog(settings.catalog)
    except CatalogError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def validate(path: Annotated[Path | None, typer.Argument(help="Catalog to check.")] = None) -> None:
    """Check a catalog; print every error with its location and exit non-zero on any."""
    settings = _settings(path)
    catalog = _load(settings)
    replicas = sum(len(s.replicas) for s in catalog.services)
    typer.echo(f"{settings.catalog}: ok ({len(catalog.services)} services, {replicas} replicas)")
    runbooks = _check_runbooks()
    typer.echo(f"runbooks: ok ({', '.join(sorted(runbooks))})")


def _check_runbooks() -> dict[str, Runbook]:
    try:
        return load_builtin_runbooks()
    except RunbookError as exc:
        typer.echo(str(exc), err=True)  # names each runbook problem with its location
        raise typer.Exit(2) from None


@app.command()
def worker(
    catalog: CatalogOption = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Run as the catalog's vantage point REGION instead: only its probes, on task "
            "queue drc-probes-REGION, from its source address.",
        ),
    ] = None,
) -> None:
    """Run a drc worker alone against any Temporal server ($DRC_TEMPORAL_ADDRESS)."""
    from workers.worker import serve

    settings = _settings(catalog)
    catalog_model = _load(settings)
    if region is not None and catalog_model.vantage(region) is None:
        known = ", ".join(v.name for v in catalog_model.vantage_points) or "none"
        typer.echo(f"error: {region!r} is not a vantage point of the catalog ({known})", err=True)
        raise typer.Exit(2)
    try:
        serve(settings, catalog_model, region)
    except DrcError as exc:  # settings that cannot be used (TLS files, supervisord's login)
        typer.echo(f"error: {exc}", err=True)
        sys.stderr.flush()
        os._exit(2)
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: temporalio 1.35 was seen to crash there


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also run the demo trading platform.")
    ] = False,
    catalog: CatalogOption = None,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
) -> None:
    """Run the dev stack in the foreground: Temporal, (demo), worker. Ctrl-C stops it all."""
    from workers.stack import run_stack

    settings = _settings(catalog)
    catalog_model = _load(settings)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Started in the background by a non-interactive shell, SIGINT arrives ignored (SIG_IGN is
    # inherited and Python keeps it): Ctrl-C's signal must stop the stack however it started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = run_stack(settings, catalog_model, demo=demo, ui_port=ui_port)
    raise typer.Exit(code)


@app.command()
def api(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default $DRC_API_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default $DRC_API_PORT, 8000).", min=1, max=65535)
    ] = None,
    catalog: CatalogOption = None,
) -> None:
    """Serve the recovery API and dashboard (Ctrl-C stops it); a first start makes a token."""
    from api.serve import serve_api
    from drc.logs import configure_logging

    settings = _settings(catalog)
    update: dict[str, Any] = {}
    if host is not None:
        update["api_host"] = host
    if port is not None:
        update["api_port"] = port
    settings = settings.model_copy(update=update)
    catalog_model = _load(settings)
    configure_logging()
    _run(serve_api(settings, catalog_model))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see README).")] = False,
    catalog: CatalogOption = None,
) -> None:
    """System health on top, then every service and replica with its state and last error."""
    from workers.fleet_view import fleet_json, fleet_lines, read_fleet
    from workers.status import read_status, status_json, status_table

    settings = _settings(catalog)
    catalog_model = _load(settings)

    async def main() -> None:
        client = await connect(settings)
        fleet = await read_fleet(client)
        entries = await read_status(client, catalog_model, settings.home)
        if as_json:
            typer.echo(json.dumps({"fleet": fleet_json(fleet), **status_json(entries)}, indent=2))
        else:
            typer.echo(f"{fleet_lines(fleet)}\n\n{status_table(entries)}")

    _run(main())


@app.command()
def sync(
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see README).")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Replication of every replicated-state service: lag p50/p99, offsets, consistency."""
    from workers.status import sync_json, sync_table

    _show(catalog, sync_json if as_json else sync_table)


def _show(catalog: Path | None, render: Callable[[list[Any]], Any]) -> None:
    """Read every monitor's status and print it rendered (JSON for a dict, else as text)."""
    from workers.status import read_status

    settings = _settings(catalog)
    catalog_model = _load(settings)

    async def main() -> None:
        client = await connect(settings)
        shown = render(await read_status(client, catalog_model, settings.home))
        typer.echo(json.dumps(shown, indent=2) if isinstance(shown, dict) else shown)

    _run(main())


DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Print the plan and every guard evaluated now; change nothing."),
]


@app.command()
def restart(
    service: str,
    replica: str,
    reason: Annotated[str, typer.Option(help="Why; recorded with the restart.")] = "manual restart",
    dry_run: DryRun = False,
    catalog: CatalogOption = None,
) -> None:
    """Restart a replica now (clears a crash loop and a freeze); the Web UI's update too."""
    request = RestartRequest(replica=replica, reason=reason, operator=_operator())
    if dry_run:
        _dry_run(catalog, service, "plan_restart", request)
    else:
        _update(catalog, service, "request_restart", request)


@app.command()
def failover(
    service: str,
    to: Annotated[str | None, typer.Option("--to", help="The standby to promote.")] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why; recorded with the failover (needed with --force).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Skip the replication guards: promote a standby that may lack acknowledged "
            "writes. Needs --reason; recorded as forced.",
        ),
    ] = False,
    dry_run: DryRun = False,
    catalog: CatalogOption = None,
) -> None:
    """Fail an active/standby service over; a refusal says why and what overrides it."""
    if force and not (reason or "").strip():
        typer.echo(
            'error: --force needs --reason "..." (it is recorded with the failover)', err=True
        )
        raise typer.Exit(2)
    request = FailoverRequest(
        to=to, reason=reason or "manual failover", operator=_operator(), force=force
    )
    if dry_run:
        _dry_run(catalog, service, "plan_failover", request)
    else:
        _update(catalog, service, "failover", request)


@app.command()
def reprotect(
    service: str,
    replica: Annotated[
        str | None, typer.Option(help="The former primary (default: the one left unprotected).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why; recorded.")] = "manual re-protection",
    catalog: CatalogOption = None,
) -> None:
    """Bring a former primary back as the standby of the current one."""
    request = ReprotectRequest(replica=replica, reason=reason, operator=_operator())
    _update(catalog, service, "reprotect", request)


@app.command()
def reload(catalog: CatalogOption = None) -> None:
    """Apply a changed catalog to the running monitors; remove those of removed services.

    The catalog and the runbooks are validated first: on any error nothing is applied.
    """
    from workers.monitors import ensure_monitors

    settings = _settings(catalog)
    catalog_model = _load(settings)
    _check_runbooks()

    async def main() -> None:
        client = await connect(settings)
        applied = await ensure_monitors(
            client, catalog_model, settings.task_queue, group_size=settings.watch_group_size
        )
        typer.echo(f"reloaded {settings.catalog}: {applied}")

    _run(main())


@app.command()
def pause(
    service: str,
    reason: Annotated[str, typer.Option(help="Why; recorded.")] = "maintenance",
    catalog: CatalogOption = None,
) -> None:
    """Stop watching and repairing a service until resumed."""
    _update(catalog, service, "pause", PauseRequest(reason=reason, operator=_operator()))


@app.command()
def resume(
    service: str,
    reason: Annotated[str, typer.Option(help="Why; recorded.")] = "maintenance over",
    catalog: CatalogOption = None,
) -> None:
    """Watch and repair a paused service again, and lift its freezes (flapping replicas)."""
    _update(catalog, service, "resume", PauseRequest(reason=reason, operator=_operator()))


def _operator() -> str:
    return os.environ.get("DRC_OPERATOR") or getpass.getuser()


def _known(catalog: Catalog, service: str) -> Service:
    found = catalog.service(service)
    if found is None:
        known = ", ".join(s.name for s in catalog.services)
        raise UnknownServiceError(f"unknown service {service!r} (known: {known})")
    return found


def _dry_run(catalog: Path | None, service: str, query: str, arg: Any) -> None:
    from drc.credentials import supervisor_credentials
    from workers.plan import live_checks, render_plan

    settings = _settings(catalog)
    catalog_model = _load(settings)

    async def main() -> None:
        spec = _known(catalog_model, service)
        login = supervisor_credentials(settings)
        client = await connect(settings)
        handle = client.get_workflow_handle(monitor_id(service))
        plan = await handle.query(query, arg, result_type=Plan)
        typer.echo(render_plan(plan, await live_checks(catalog_model, spec, plan, login)))
        if plan.refusal:
            raise typer.Exit(1)

    _run(main())


def _update(catalog: Path | None, service: str, name: str, arg: Any) -> None:
    settings = _settings(catalog)
    catalog_model = _load(settings)

    async def main() -> None:
        _known(catalog_model, service)
        client = await connect(settings)
        handle = client.get_workflow_handle(monitor_id(service))
        answer = await handle.execute_update(name, arg, result_type=str)
        typer.echo(answer)

    _run(main())


def _run(coro: Any) -> None:
    """Run a client coroutine and exit with its verdict, skipping interpreter teardown.

    temporalio 1.35 on CPython 3.11 was seen to crash while finalizing after a client was used;
    leaving through ``os._exit`` keeps that crash from replacing our exit code.
    """
    code = 0
    try:
        asyncio.run(coro)
    except WorkflowUpdateFailedError as exc:
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        typer.echo(f"refused: {cause}", err=True)
        code = 1
    except typer.Exit as exit_:  # before RuntimeError: click's Exit is one
        code = exit_.exit_code
    except (DrcError, RPCError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    """Entry point of the ``drc`` console script."""
    from workers.cli_chaos import chaos_app
    from workers.cli_incidents import register

    register(app)
    app.add_typer(chaos_app, name="chaos")
    app()


if __name__ == "__main__":
    main()
