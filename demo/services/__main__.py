"""Run one replica of one demo service: ``python -m demo.services --service NAME ...``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from demo.services import market_data, order_gateway, risk_engine
from demo.services.app import ReplicaConfig, create_app
from demo.services.faults import Faults
from demo.services.orders import RedisOrderStore
from demo.services.role import PRIMARY, STANDBY, Role
from demo.services.role import add_routes as add_role_routes

EXIT_FAIL_MARKER = 3

SERVICES: dict[str, Callable[..., None]] = {
    "market-data": market_data.add_routes,
    "risk-engine": risk_engine.add_routes,
    "order-gateway": order_gateway.add_routes,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of one replica."""
    parser = argparse.ArgumentParser(prog="python -m demo.services", description=__doc__)
    parser.add_argument("--service", required=True, choices=sorted(SERVICES))
    parser.add_argument("--replica", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument(
        "--depends",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a dependency's base URL; repeat the flag for each URL, tried in order",
    )
    parser.add_argument(
        "--fail-marker",
        type=Path,
        metavar="PATH",
        help="exit with status 3 at start while this file exists (a replica that always crashes)",
    )
    parser.add_argument(
        "--role",
        choices=[PRIMARY, STANDBY],
        default=PRIMARY,
        help="the role at first start (a --role-file, once written, wins)",
    )
    parser.add_argument(
        "--role-file",
        type=Path,
        metavar="PATH",
        help="where promotions and demotions persist the role",
    )
    parser.add_argument(
        "--promote-fail-marker",
        type=Path,
        metavar="PATH",
        help="refuse promotion (HTTP 500) while this file exists",
    )
    parser.add_argument(
        "--admin-hang-marker",
        type=Path,
        metavar="PATH",
        help="hold /admin/promote and /admin/demote while this file exists, then proceed",
    )
    parser.add_argument(
        "--slow-start-marker",
        type=Path,
        metavar="PATH",
        help="wait before listening while this file exists (a replica still loading)",
    )
    parser.add_argument(
        "--latency-marker",
        type=Path,
        metavar="PATH",
        help="while this file exists, add the milliseconds it holds to every response",
    )
    parser.add_argument(
        "--error-marker",
        type=Path,
        metavar="PATH",
        help="while this file exists, answer the share of requests it holds (0-1) with 500",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="order-gateway: keep orders in Redis at URL (acknowledged after WAIT 1)",
    )
    return parser.parse_args(argv)


def parse_depends(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["risk-engine=http://h:1", ...]`` → ``{"risk-engine": ("http://h:1",)}``, order kept."""
    depends: dict[str, tuple[str, ...]] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise SystemExit(f"--depends expects NAME=URL, not {value!r}")
        depends[name] = (*depends.get(name, ()), url.rstrip("/"))
    return depends


def build_app(
    service: str,
    replica: str,
    depends: dict[str, tuple[str, ...]],
    role: Role | None = None,
    redis_url: str | None = None,
    faults: Faults | None = None,
) -> web.Application:
    """The aiohttp application of one replica of ``service``."""
    app = create_app(ReplicaConfig(service, replica, depends), faults)
    add_role_routes(app, role or Role(PRIMARY))
    if service == "order-gateway" and redis_url is not None:
        SERVICES[service](app, RedisOrderStore(redis_url))
    else:
        SERVICES[service](app)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one replica until SIGTERM/SIGINT."""
    args = parse_args(argv)
    if args.fail_marker is not None and args.fail_marker.exists():
        print(
            f"{args.replica}: fail marker {args.fail_marker} exists; exiting with status "
            f"{EXIT_FAIL_MARKER} (simulated crash on start)",
            file=sys.stderr,
        )
        sys.exit(EXIT_FAIL_MARKER)
    while args.slow_start_marker is not None and args.slow_start_marker.exists():
        time.sleep(0.05)  # loading: running, but not listening yet
    role = Role.load(args.role, args.role_file, args.promote_fail_marker, args.admin_hang_marker)
    faults = Faults(args.latency_marker, args.error_marker)
    depends = parse_depends(args.depends)
    app = build_app(args.service, args.replica, depends, role, args.redis, faults)
    print(
        f"{args.service}/{args.replica} listening on http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    # No access log: probes hit every replica several times a second.
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
