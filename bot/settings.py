"""Settings from the environment and `.env` (pydantic-settings), validated at start.

`load_settings` turns a validation failure into one ConfigError line naming the variable, which
the CLI prints before exiting with status 2.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.dispatcher import Rules
from bot.errors import ConfigError
from bot.reminders import ReminderRules

_SQLITE_PREFIX = "sqlite:///"


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"'{value}' is not a time zone name like Europe/Berlin"
        raise ValueError(msg) from exc
    return value


def _clock_time(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        msg = f"'{value}' is not a time like 09:00"
        raise ValueError(msg)
    return value


def _database_url(value: str) -> str:
    if not value.startswith(_SQLITE_PREFIX) or value == _SQLITE_PREFIX:
        msg = f"'{value}' is not a SQLite URL like sqlite:///reviewrelay.db"
        raise ValueError(msg)
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^(https?|wss?)://[^/\s]+", value):
        msg = f"'{value}' is not an http(s):// or ws(s):// URL"
        raise ValueError(msg)
    return value


def _blank_is_unset(value: object) -> object:
    # env_ignore_empty drops `NAME=`; this catches `NAME="  "` too.
    return None if isinstance(value, str) and not value.strip() else value


Url = Annotated[str, AfterValidator(_http_url)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_unset)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_unset)]


class Settings(BaseSettings):
    # An empty `NAME=` (as a copied .env.example may have) means unset, in .env and environment.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: Annotated[str, AfterValidator(_database_url)] = "sqlite:///reviewrelay.db"
    http_host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    http_port: int = Field(default=3000, ge=0, le=65535)

    slack_bot_token: OptionalSecret = None
    slack_signing_secret: OptionalSecret = None
    slack_app_token: OptionalSecret = None
    slack_api_url: Url = "https://slack.com/api/"
    slack_review_channel: OptionalText = None

    discord_bot_token: OptionalSecret = None
    discord_api_url: Url = "https://discord.com/api/v10"
    discord_gateway_url: Url = "wss://gateway.discord.gg/"
    discord_review_channel_id: OptionalText = None
    discord_guild_id: OptionalText = None

    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    reminder_time: Annotated[str, AfterValidator(_clock_time)] = "09:00"
    stale_after_hours: float = Field(default=24, ge=0)
    stale_business_days: bool = False  # count a request's age on weekdays only
    claim_nudge_after_days: float = Field(default=3, ge=0)
    expire_after_days: float = Field(default=14, gt=0)
    claim_emoji: str = Field(default="eyes", min_length=1)
    done_emoji: str = Field(default="white_check_mark", min_length=1)
    thanks_emoji: str = Field(default="pray", min_length=1)
    reciprocity: Literal["off", "soft"] = "soft"
    notify_limit: int = Field(default=3, ge=0, le=50)
    requests_per_hour: int = Field(default=10, ge=1)
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: Literal["text", "json"] = "text"
    log_user_text: bool = False  # let links, notes and names into the logs: local debugging only

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log redactor."""
        found = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.discord_bot_token,
        )
        return [s.get_secret_value() for s in found if s is not None]

    @property
    def database_path(self) -> Path | str:
        path = self.database_url.removeprefix(_SQLITE_PREFIX)
        return path if path == ":memory:" else Path(path)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def discord_enabled(self) -> bool:
        return self.discord_bot_token is not None

    @property
    def stale_after(self) -> timedelta:
        return timedelta(hours=self.stale_after_hours)

    def reminder_rules(self) -> ReminderRules:
        return ReminderRules(
            stale_after=self.stale_after,
            nudge_after=timedelta(days=self.claim_nudge_after_days),
            expire_after=timedelta(days=self.expire_after_days),
            business_days=self.stale_business_days,
            timezone=self.timezone,
            reminder_time=self.reminder_time,
            reciprocity=self.reciprocity == "soft",
        )

    def rules(self) -> Rules:
        return Rules(
            notify_limit=self.notify_limit,
            requests_per_hour=self.requests_per_hour,
            claim_emoji=self.claim_emoji,
            done_emoji=self.done_emoji,
            thanks_emoji=self.thanks_emoji,
            reciprocity=self.reciprocity == "soft",
            timezone=self.timezone,
            reminder_time=self.reminder_time,
        )


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read settings; a bad value raises ConfigError naming the variable."""
    try:
        settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        msg = f"{name}: {message}"
        raise ConfigError(msg) from None
    if (
        settings.slack_enabled
        and settings.slack_signing_secret is None
        and settings.slack_app_token is None
    ):
        msg = (
            "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN in HTTP mode "
            "(or set SLACK_APP_TOKEN for Socket Mode)"
        )
        raise ConfigError(msg)
    return settings
