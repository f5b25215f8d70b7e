"""Bearer tokens for the API's mutating endpoints; a token's name is the operator on record.

The token is ``DRC_API_TOKEN`` (``NAME:SECRET``, or a bare secret named ``api``), else the
one in ``$DRC_HOME/api-token``, generated there at first start (mode 0600, printed once).
A token file that other users could read is refused, as ssh refuses such a key.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from drc.credentials import CredentialsError, read_private
from drc.errors import DrcError
from drc.settings import Settings

TOKEN_FILE = "api-token"
GENERATED_NAME = "local-admin"


class TokenError(DrcError):
    """The API token cannot be read or created safely."""


@dataclass(frozen=True)
class ApiToken:
    """A named secret: who presents it is recorded as ``name``."""

    name: str
    secret: str = ""

    def matches(self, presented: str) -> bool:
        """Constant-time comparison with a presented secret (or the whole ``NAME:SECRET``)."""
        if not presented:
            return False
        whole = f"{self.name}:{self.secret}".encode()
        return hmac.compare_digest(presented.encode(), self.secret.encode()) | hmac.compare_digest(
            presented.encode(), whole
        )

    def __repr__(self) -> str:  # never print the secret by accident
        return f"ApiToken(name={self.name!r})"


def parse_token(text: str, origin: str) -> ApiToken:
    """``NAME:SECRET`` or a bare ``SECRET`` (named ``api``); too short a secret is refused."""
    text = text.strip()
    name, sep, secret = text.partition(":")
    if not sep:
        name, secret = "api", text
    if not name.strip() or len(secret) < 16:
        raise TokenError(f"{origin}: a token is NAME:SECRET with a secret of 16 characters or more")
    return ApiToken(name.strip(), secret)


def load_token(settings: Settings) -> tuple[ApiToken, bool]:
    """The API's token, and whether it was generated just now (print it once then)."""
    if settings.api_token is not None:
        return parse_token(settings.api_token.get_secret_value(), "DRC_API_TOKEN"), False
    path = settings.home.resolve() / TOKEN_FILE
    if path.exists():
        return parse_token(_read_private(path), str(path)), False
    token = ApiToken(GENERATED_NAME, secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process made it first: take that one
        return parse_token(_read_private(path), str(path)), False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"{token.name}:{token.secret}\n")
    return token, True


def _read_private(path: Path) -> str:
    try:
        text = read_private(path)
    except CredentialsError as exc:
        raise TokenError(f"{exc}; or remove it to have a new token generated") from None
    if text is None:
        raise TokenError(f"{path} vanished while it was read")
    return text
