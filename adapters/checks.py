"""`reviewrelay check`: can the bot reach what its settings point at? One row per check.

Plain HTTP calls (Slack `auth.test`, Discord `users/@me`) with the configured tokens, so the check
needs neither SDK's start-up and never logs a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.settings import Settings

TIMEOUT = aiohttp.ClientTimeout(total=10)
_OK = 200


@dataclass(frozen=True, slots=True)
class CheckRow:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def _call(method: str, url: str, authorization: str) -> tuple[int, dict[str, Any]] | str:
    """(status, JSON body) of one call, or why it could not be made."""
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.request(method, url, headers={"Authorization": authorization}) as response,
        ):
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return f"cannot reach {url}: {type(exc).__name__}"


async def check_slack(settings: Settings) -> CheckRow:
    if settings.slack_bot_token is None:
        return CheckRow("slack", True, "not configured (SLACK_BOT_TOKEN unset)")
    url = settings.slack_api_url.rstrip("/") + "/auth.test"
    answer = await _call("POST", url, f"Bearer {settings.slack_bot_token.get_secret_value()}")
    if isinstance(answer, str):
        return CheckRow("slack", False, answer, "check SLACK_API_URL and the network")
    status, body = answer
    if not body.get("ok"):
        return CheckRow(
            "slack",
            False,
            f"auth.test said {body.get('error', f'HTTP {status}')}",
            "copy the Bot User OAuth Token (xoxb-...) into SLACK_BOT_TOKEN",
        )
    return CheckRow("slack", True, f"workspace {body.get('team')} as {body.get('user')}")


async def check_discord(settings: Settings) -> CheckRow:
    if settings.discord_bot_token is None:
        return CheckRow("discord", True, "not configured (DISCORD_BOT_TOKEN unset)")
    url = settings.discord_api_url.rstrip("/") + "/users/@me"
    answer = await _call("GET", url, f"Bot {settings.discord_bot_token.get_secret_value()}")
    if isinstance(answer, str):
        return CheckRow("discord", False, answer, "check DISCORD_API_URL and the network")
    status, body = answer
    if status != _OK:
        return CheckRow(
            "discord",
            False,
            f"users/@me answered {status}",
            "reset the bot token in the Developer Portal and set DISCORD_BOT_TOKEN",
        )
    return CheckRow("discord", True, f"logged in as {body.get('username')}")
