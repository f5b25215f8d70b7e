"""The API token: from DRC_API_TOKEN, or generated once into $DRC_HOME (0600) and printed once;
a token file others can read is refused; a presented token is compared in constant time."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.auth import GENERATED_NAME, TOKEN_FILE, ApiToken, TokenError, load_token, parse_token
from api.serve import announce_token, is_loopback
from drc.settings import Settings


def _settings(home: Path, token: str | None = None) -> Settings:
    return Settings(home=home, api_token=SecretStr(token) if token else None)


def test_the_environment_token_names_its_operator() -> None:
    assert parse_token("alice:0123456789abcdef", "DRC_API_TOKEN") == ApiToken(
        "alice", "0123456789abcdef"
    )
    assert parse_token("0123456789abcdefXYZ", "DRC_API_TOKEN").name == "api"


@pytest.mark.parametrize("text", ["short", "alice:short", ":0123456789abcdefgh"])
def test_a_weak_or_nameless_token_is_refused_naming_its_origin(text: str) -> None:
    with pytest.raises(TokenError, match="DRC_API_TOKEN: a token is NAME:SECRET"):
        parse_token(text, "DRC_API_TOKEN")


def test_a_token_is_generated_once_with_mode_0600_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    announce_token(settings)
    first = capsys.readouterr().out
    path = tmp_path / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token, created = load_token(settings)
    assert not created and token.name == GENERATED_NAME
    assert token.secret in first and str(path) in first
    announce_token(settings)
    assert capsys.readouterr().out == ""  # printed once, at its creation


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("ops:0123456789abcdefgh\n")
    path.chmod(0o644)
    with pytest.raises(TokenError, match=r"has mode 0644: .*owner alone.*remove it"):
        load_token(_settings(tmp_path))


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    load_token(_settings(tmp_path))
    token, created = load_token(_settings(tmp_path, "ci:abcdefghijklmnop1234"))
    assert (token.name, created) == ("ci", False)


def test_matching_takes_the_secret_or_the_whole_line_and_nothing_else() -> None:
    token = ApiToken("ops", "0123456789abcdefgh")
    assert token.matches("0123456789abcdefgh") and token.matches("ops:0123456789abcdefgh")
    for wrong in ("", "0123456789abcdefg", "ops:", "other:0123456789abcdefgh"):
        assert not token.matches(wrong)
    assert "0123456789" not in repr(token)


def test_loopback_is_told_from_an_open_address() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
