"""A replica's role (primary or standby), persisted in a file so a restart keeps it.

Promotion and demotion are how drc's failover runbook hands the primary role over; a standby
order gateway refuses orders, so a fenced old primary and a not-yet-promoted standby can never
both accept writes. A file named by ``--promote-fail-marker`` makes promotion fail (HTTP 500),
which is how tests force a failover to roll back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

PRIMARY = "primary"
STANDBY = "standby"


@dataclass
class Role:
    """The role, where it is kept, and what can make a promotion fail."""

    current: str
    path: Path | None = None
    promote_fail_marker: Path | None = None

    @classmethod
    def load(cls, default: str, path: Path | None, promote_fail_marker: Path | None) -> Role:
        """The role stored at ``path`` if there is one, else ``default``."""
        stored = path.read_text().strip() if path is not None and path.exists() else ""
        current = stored if stored in (PRIMARY, STANDBY) else default
        return cls(current, path, promote_fail_marker)

    def set(self, role: str) -> None:
        """Change role and persist it atomically (write, then rename)."""
        self.current = role
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(role)
            os.replace(tmp, self.path)


ROLE = web.AppKey("role", Role)


def add_routes(app: web.Application, role: Role) -> None:
    """Serve ``POST /admin/promote`` and ``POST /admin/demote`` (both idempotent)."""
    app[ROLE] = role
    app.router.add_post("/admin/promote", promote)
    app.router.add_post("/admin/demote", demote)


async def promote(request: web.Request) -> web.Response:
    """Become the primary; 200 with the previous role, or 500 when forced to fail."""
    role = request.app[ROLE]
    marker = role.promote_fail_marker
    if marker is not None and marker.exists():
        return web.json_response({"error": f"promotion refused: {marker} exists"}, status=500)
    previous = role.current
    role.set(PRIMARY)
    return web.json_response({"role": PRIMARY, "previous": previous})


async def demote(request: web.Request) -> web.Response:
    """Become a standby; 200 with the previous role."""
    role = request.app[ROLE]
    previous = role.current
    role.set(STANDBY)
    return web.json_response({"role": STANDBY, "previous": previous})
