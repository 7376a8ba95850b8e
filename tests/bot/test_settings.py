"""Settings read from `.env` and the environment: what counts as set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import console_mode
from bot.settings import load_settings

SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DISCORD_BOT_TOKEN")


@pytest.fixture(autouse=True)
def no_secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)


def test_empty_tokens_in_env_file_leave_console_mode(tmp_path: Path) -> None:
    """`NAME=` lines, as in a copied .env.example, mean unset: no platform starts."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}=\n" for name in SECRETS) + "DISCORD_GUILD_ID=\n")
    settings = load_settings(env_file)
    assert console_mode(settings)
    assert settings.secrets() == []
    assert settings.discord_guild_id is None


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_tokens_in_environment_leave_console_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """An empty or whitespace-only token in the environment is unset, not a token."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", value)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", value)
    assert console_mode(load_settings(tmp_path / "absent.env"))


def test_a_token_still_enables_its_platform(tmp_path: Path) -> None:
    """A real value next to empty ones still starts that platform."""
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_BOT_TOKEN=abc\nSLACK_BOT_TOKEN=\n")
    settings = load_settings(env_file)
    assert not console_mode(settings)
    assert (settings.discord_enabled, settings.slack_enabled) == (True, False)
