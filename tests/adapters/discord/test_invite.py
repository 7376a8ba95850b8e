"""`reviewrelay discord-invite`: least permissions, application id from an HTTP-only login."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from adapters.discord.invite import PERMISSIONS, discord_invite, invite_url
from bot import cli
from bot.errors import ConfigError
from tests.adapters.discord.conftest import TOKEN, discord_settings
from tests.fakes.discord_payloads import FakeGuild
from tests.fakes.fake_discord import FakeDiscord
from tests.logcapture import root_logging_kept


def test_invite_asks_for_exactly_what_the_bot_uses() -> None:
    """Bot and commands scopes; read, send, embed, read history, use commands; nothing more."""
    url = invite_url(1234)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://discord.com/oauth2/authorize"
    assert "scope=bot+applications.commands" in url
    query = parse_qs(parts.query)
    assert query["client_id"] == ["1234"]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted == PERMISSIONS
    assert {name for name, on in granted if on} == {
        "read_messages",  # discord.py's name for View Channel
        "send_messages",
        "embed_links",
        "read_message_history",
        "use_application_commands",
    }
    assert not granted.mention_everyone
    assert not granted.administrator


async def test_application_id_comes_from_login(
    tmp_path: Path, fake: FakeDiscord, guild: FakeGuild
) -> None:
    """The id is read over REST (users/@me, applications/@me); no gateway session is opened."""
    url = await discord_invite(discord_settings(tmp_path, fake, guild))
    assert f"client_id={fake.application_id}" in url
    assert fake.hits("GET /oauth2/applications/@me") == 1
    assert fake.identify_count == 0
    assert fake.gateway_connections == []


async def test_bad_token_names_the_setting(
    tmp_path: Path, fake: FakeDiscord, guild: FakeGuild
) -> None:
    """A rejected token is a configuration error, not a traceback."""
    settings = discord_settings(tmp_path, fake, guild, discord_bot_token="nope")
    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN"):
        await discord_invite(settings)


def test_cli_prints_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reviewrelay discord-invite` prints the URL (the id fetched as above)."""

    async def app_id(settings: object) -> int:
        return 42

    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    monkeypatch.setattr("adapters.discord.invite.fetch_application_id", app_id)
    with root_logging_kept():  # main configures logging as `reviewrelay` does
        assert cli.main(["discord-invite"]) == 0
    assert capsys.readouterr().out.strip() == invite_url(42)


def test_cli_without_token_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No DISCORD_BOT_TOKEN: one line naming it, exit status 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    with root_logging_kept():
        assert cli.main(["discord-invite"]) == 2
    assert "DISCORD_BOT_TOKEN" in capsys.readouterr().err
