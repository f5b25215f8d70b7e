"""A replica's role (primary or standby), persisted in a file so a restart keeps it.

Promotion and demotion are how drc's failover runbook hands the primary role over; a standby
order gateway refuses orders, so a fenced old primary and a not-yet-promoted standby can never
both accept writes. A file named by ``--promote-fail-marker`` makes promotion fail (HTTP 500),
which is how tests force a failover to roll back; while a file named by ``--admin-hang-marker``
exists, promotion and demotion wait (then proceed), which is how tests catch a failover in the
middle of its ``promote`` step.
"""

from __future__ import annotations

import asyncio
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
    hang_marker: Path | None = None

    @classmethod
    def load(
        cls,
        default: str,
        path: Path | None,
        promote_fail_marker: Path | None,
        hang_marker: Path | None = None,
    ) -> Role:
        """The role stored at ``path`` if there is one, else ``default``."""
        stored = path.read_text().strip() if path is not None and path.exists() else ""
        current = stored if stored in (PRIMARY, STANDBY) else default
        return cls(current, path, promote_fail_marker, hang_marker)

    async def hold(self) -> None:
        """Wait while the hang marker exists (a test holding a role change mid-way)."""
        while self.hang_marker is not None and self.hang_marker.exists():
            await asyncio.sleep(0.05)

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
    await role.hold()
    marker = role.promote_fail_marker
    if marker is not None and marker.exists():
        return web.json_response({"error": f"promotion refused: {marker} exists"}, status=500)
    previous = role.current
    role.set(PRIMARY)
    return web.json_response({"role": PRIMARY, "previous": previous})


async def demote(request: web.Request) -> web.Response:
    """Become a standby; 200 with the previous role."""
    role = request.app[ROLE]
    await role.hold()
    previous = role.current
    role.set(STANDBY)
    return web.json_response({"role": STANDBY, "previous": previous})
