"""Credentials drc keeps in files: its login to supervisord's XML-RPC, kept under ``$DRC_HOME``.

A credentials file holds ``user:password`` on one line and must be readable by its owner
alone (mode 0600): one that group or others may read is refused, as ssh refuses such a private
key, since any local user could then drive every process drc drives.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from drc.errors import DrcError
from drc.settings import Settings

SUPERVISOR_CREDENTIALS_FILE = "supervisor-credentials"
"""supervisord's credentials under ``$DRC_HOME`` (the demo writes them there)."""

SUPERVISOR_CREDENTIALS_ENV = "DRC_SUPERVISOR_CREDENTIALS"


class CredentialsError(DrcError, ValueError):
    """A credential (a file or a setting) cannot be used; the message names it and why.

    Also a ``ValueError`` (a setting's value is wrong), which ``drc up`` reports as such.
    """


@dataclass(frozen=True)
class Credentials:
    """A user name and its password; the password stays out of ``repr`` (and so of logs)."""

    username: str
    password: str = field(repr=False)

    def sha1_password(self) -> str:
        """The password as supervisord's ``{SHA}<sha1 hex>``, so its config need not hold it."""
        return "{SHA}" + hashlib.sha1(self.password.encode()).hexdigest()


def read_private(path: Path) -> str | None:
    """The text of ``path``, a file for its owner's eyes only; None when there is no such file.

    Raises ``CredentialsError`` naming the path when group or others may read it (with its
    mode), or when it cannot be read.
    """
    try:
        with path.open(encoding="utf-8") as file:
            # The mode of the file opened, not of whatever the path names a moment later.
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
            if mode & 0o077:
                raise CredentialsError(
                    f"{path} has mode {mode:04o}: credentials must be readable by their owner "
                    f"alone (chmod 600 {path})"
                )
            return file.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read credentials from {path}: {exc}") from exc


def read_credentials(path: Path) -> Credentials | None:
    """The ``user:password`` held in ``path``; None when there is no such file.

    Raises ``CredentialsError`` naming the path when group or others may read it (with its
    mode), when it cannot be read, or when it does not hold one line ``user:password``.
    """
    text = read_private(path)
    if text is None:
        return None
    line = text.strip()
    username, colon, password = line.partition(":")
    if not colon or not username or not password or "\n" in line:
        raise CredentialsError(f"{path} must hold one line 'user:password'")
    return Credentials(username, password)


def ensure_credentials(path: Path, username: str = "drc") -> Credentials:
    """The credentials in ``path``, generated first (a random password) if there are none.

    Idempotent: an existing file is kept. A new one is written whole under a temporary name
    with mode 0600 from its creation, then linked into place, so a concurrent reader sees no
    file or the whole of it, and of two concurrent writers the first one's file is kept.
    """
    found = read_credentials(path)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = Credentials(username, secrets.token_urlsafe(32))
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(f"{fresh.username}:{fresh.password}\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)  # unlike a rename, never replaces a file already there
        except FileExistsError:
            pass  # another writer came first: its credentials are the ones in use
    finally:
        temporary.unlink(missing_ok=True)
    written = read_credentials(path)
    if written is None:  # removed in the moment since: nothing sensible to do but say so
        raise CredentialsError(f"{path} disappeared right after it was written")
    return written


def supervisor_credentials(settings: Settings) -> Credentials | None:
    """Drc's login to supervisord, or None to call it without one.

    From the file ``DRC_SUPERVISOR_CREDENTIALS`` names (which must exist), else from
    ``$DRC_HOME/supervisor-credentials`` when it exists. Either must be mode 0600.
    """
    if settings.supervisor_credentials is None:
        return read_credentials(settings.home / SUPERVISOR_CREDENTIALS_FILE)
    path = settings.supervisor_credentials
    try:
        found = read_credentials(path)
    except CredentialsError as exc:
        raise CredentialsError(f"{SUPERVISOR_CREDENTIALS_ENV}: {exc}") from exc
    if found is None:
        raise CredentialsError(f"{SUPERVISOR_CREDENTIALS_ENV}: {path} does not exist")
    return found
